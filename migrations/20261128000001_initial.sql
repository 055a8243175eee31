-- The durable states of the pipeline. Each arrow of the flow is a row here, so a crash anywhere resumes from
-- the last committed state.

-- Where we are in each IMAP mailbox. A changed UIDVALIDITY (RFC 3501 2.3.1.1) means every UID we kept is void.
CREATE TABLE mailbox_state (
    mailbox       text PRIMARY KEY,
    uidvalidity   bigint NOT NULL,
    last_uid      bigint NOT NULL DEFAULT 0,
    last_contact  timestamptz NOT NULL DEFAULT now()
);

-- Every message taken from the inbox, with its raw RFC 822 bytes: the original is never lost, whatever happens next.
CREATE TABLE messages (
    id             bigserial PRIMARY KEY,
    mailbox        text NOT NULL,
    uidvalidity    bigint NOT NULL,
    uid            bigint NOT NULL,
    message_id     text,
    sender         text,
    subject        text,
    raw            bytea NOT NULL,
    raw_sha256     text NOT NULL,
    size_bytes     bigint NOT NULL,
    -- received → processed | failed | ignored | quarantined; see store::MessageState.
    state          text NOT NULL DEFAULT 'received',
    reason         text,
    attempts       integer NOT NULL DEFAULT 0,
    -- Which IMAP folder the message belongs in once handled, and whether it has been moved there.
    target_mailbox text,
    archived_at    timestamptz,
    received_at    timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mailbox, uidvalidity, uid)
);
CREATE INDEX messages_state_idx ON messages (state);
CREATE INDEX messages_message_id_idx ON messages (message_id);

-- One row per document found in a message, with what the extractor made of it.
CREATE TABLE attachments (
    id            bigserial PRIMARY KEY,
    message_ref   bigint NOT NULL REFERENCES messages (id),
    position      integer NOT NULL,
    filename      text NOT NULL,
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL,
    sha256        text NOT NULL,
    status        text NOT NULL,
    error_code    text,
    result        jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_ref, position)
);
CREATE INDEX attachments_sha256_idx ON attachments (sha256);

-- The checked records. The same document from the same sender never makes a second row: the unique key below
-- is what makes reprocessing and resent duplicates harmless.
CREATE TABLE invoices (
    id                bigserial PRIMARY KEY,
    message_ref       bigint NOT NULL REFERENCES messages (id),
    attachment_ref    bigint NOT NULL REFERENCES attachments (id),
    message_id        text,
    sender            text NOT NULL,
    attachment_sha256 text NOT NULL,
    -- A Facturae batch holds several invoices in one file; this is the invoice's place in it.
    document_index    integer NOT NULL DEFAULT 0,
    source            text,
    document_type     text,
    invoice_number    text,
    issue_date        date,
    due_date          date,
    currency          text,
    supplier_name     text,
    supplier_tax_id   text,
    supplier_iban     text,
    customer_name     text,
    customer_tax_id   text,
    net_amount        numeric,
    tax_amount        numeric,
    total_amount      numeric,
    amount_due        numeric,
    result            jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sender, attachment_sha256, document_index)
);

-- Mail to send, written in the same transaction as the invoice rows (transactional outbox): a crash can delay a
-- reply but never lose or double it, because the Message-ID is fixed when the row is written.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    message_ref      bigint NOT NULL REFERENCES messages (id),
    kind             text NOT NULL,            -- reply | confirmation
    mail_message_id  text NOT NULL UNIQUE,
    envelope_from    text NOT NULL,
    recipients       text[] NOT NULL,
    body             bytea NOT NULL,
    state            text NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE state = 'pending';
