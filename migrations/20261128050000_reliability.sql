-- Crash safety and retries.

-- A message whose extraction failed transiently waits until this time before it is tried again (bounded
-- backoff); `received` messages are taken in `id` order among those that are due.
ALTER TABLE messages ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX messages_waiting_idx ON messages (id) WHERE state = 'received';

-- After a UIDVALIDITY change every message comes back under a new UID: copies are found by their bytes.
CREATE INDEX messages_raw_sha256_idx ON messages (raw_sha256);

-- Handled messages not yet moved out of the inbox.
CREATE INDEX messages_unarchived_idx ON messages (mailbox, id) WHERE archived_at IS NULL AND state <> 'received';
