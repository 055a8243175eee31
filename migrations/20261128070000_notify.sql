-- Wake-ups between worker processes: every process LISTENs, so new mail, new outbox rows and settled
-- messages reach whichever process can act on them at commit time, not at its next poll. pg_notify folds
-- identical notifications of one transaction into one.
CREATE FUNCTION invoice_intake_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$;

-- A fetched message waits for extraction.
CREATE TRIGGER messages_fetched AFTER INSERT ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_intake_notify('invoice_intake_messages');

-- `reprocess` sent a message through again.
CREATE TRIGGER messages_requeued AFTER UPDATE OF state ON messages
    FOR EACH ROW WHEN (OLD.state <> 'received' AND NEW.state = 'received')
    EXECUTE FUNCTION invoice_intake_notify('invoice_intake_messages');

-- A message reached its final state: its IMAP copy can be moved (by the process that holds the session).
CREATE TRIGGER messages_settled AFTER UPDATE OF state ON messages
    FOR EACH ROW WHEN (OLD.state = 'received' AND NEW.state <> 'received')
    EXECUTE FUNCTION invoice_intake_notify('invoice_intake_archive');

-- Replies and confirmations to send.
CREATE TRIGGER outbox_queued AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_intake_notify('invoice_intake_outbox');
