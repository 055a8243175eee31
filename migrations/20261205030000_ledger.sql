-- The accountants' ledger: one row per invoice (not per file), a review state, corrections with their audit
-- trail, and what corrections taught us about each supplier's layout.

-- Who issued the invoice and its number, normalised (see `ledger::keys`): the tax ID, else the name, else the
-- sender. `variant_key` is the total and the issue date: the same number with another total or date is a
-- separate row on purpose, because it is a fraud signal, not a copy.
ALTER TABLE invoices ADD COLUMN supplier_key text;
ALTER TABLE invoices ADD COLUMN number_key text;
ALTER TABLE invoices ADD COLUMN variant_key text;
-- Two workers storing the same invoice at once: the second INSERT waits for the first and then does nothing.
CREATE UNIQUE INDEX invoices_same_invoice_idx ON invoices (supplier_key, number_key, variant_key)
    WHERE number_key IS NOT NULL;

-- needs_review | auto_ok | approved | corrected, with the reasons for needs_review as a JSON list of sentences.
ALTER TABLE invoices ADD COLUMN review_state text NOT NULL DEFAULT 'needs_review';
ALTER TABLE invoices ADD COLUMN review_reasons jsonb NOT NULL DEFAULT '[]';
CREATE INDEX invoices_review_state_idx ON invoices (review_state);
CREATE INDEX invoices_created_at_idx ON invoices (created_at);

-- Every change an accountant made to an invoice: the value read, the new value, who, when and how.
CREATE TABLE invoice_corrections (
    id           bigserial PRIMARY KEY,
    invoice_ref  bigint NOT NULL REFERENCES invoices (id),
    field        text NOT NULL,
    old_value    text,
    new_value    text NOT NULL,
    corrected_by text NOT NULL,
    via          text NOT NULL,               -- cli | mail
    corrected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoice_corrections_invoice_idx ON invoice_corrections (invoice_ref);

-- Where a supplier prints a field, learnt from a correction, and handed to the extractor as a hint.
CREATE TABLE supplier_memory (
    supplier_key text NOT NULL,
    field        text NOT NULL,
    hint         jsonb NOT NULL,
    learned_from bigint REFERENCES invoices (id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (supplier_key, field)
);
