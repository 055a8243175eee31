-- Sender authentication and fraud signals (the trust-boundary work).

-- An operator who reviewed a quarantined message and sent it through again vouches for its sender.
ALTER TABLE messages ADD COLUMN operator_release boolean NOT NULL DEFAULT false;

-- Signals raised when the invoice was stored (changed IBAN, reused number with another total), as JSON.
ALTER TABLE invoices ADD COLUMN fraud_signals jsonb NOT NULL DEFAULT '[]';
CREATE INDEX invoices_supplier_tax_id_idx ON invoices (supplier_tax_id);
CREATE INDEX invoices_sender_idx ON invoices (sender);
