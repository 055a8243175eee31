-- Mail from the accountants: which invoices each confirmation we sent is about, so a reply to it finds them;
-- what they wrote that was not a correction; and the lease that sends the daily digest once per day.

-- One row per invoice a confirmation shows (a batch confirmation shows several), by the confirmation's
-- Message-ID as the outbox stores it (with angle brackets).
CREATE TABLE confirmation_invoices (
    mail_message_id text NOT NULL,
    invoice_ref     bigint NOT NULL REFERENCES invoices (id),
    PRIMARY KEY (mail_message_id, invoice_ref)
);
-- Confirmations queued before this table: one per invoice, and a message with one invoice names it.
INSERT INTO confirmation_invoices (mail_message_id, invoice_ref)
SELECT o.mail_message_id, min(i.id) FROM outbox o JOIN invoices i ON i.message_ref = o.message_ref
WHERE o.kind = 'confirmation'
GROUP BY o.mail_message_id
HAVING count(*) = 1;

-- A note an accountant sent about an invoice (by mail: the lines of a reply that were not corrections).
CREATE TABLE invoice_notes (
    id          bigserial PRIMARY KEY,
    invoice_ref bigint NOT NULL REFERENCES invoices (id),
    message_ref bigint REFERENCES messages (id),
    author      text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoice_notes_invoice_idx ON invoice_notes (invoice_ref);

-- The daily digest's lease: the worker whose INSERT of the day succeeds queues that day's digest, in the same
-- transaction; every other worker finds the row and does nothing. `outbox_ref` is null for a day with no mail.
CREATE TABLE daily_digests (
    day        date PRIMARY KEY,
    taken_by   text NOT NULL,
    taken_at   timestamptz NOT NULL DEFAULT now(),
    outbox_ref bigint REFERENCES outbox (id)
);
