-- Quarantined mail from unauthenticated senders waits here for the accountants' next alert digest (one mail per
-- period, not one per spam).
ALTER TABLE messages ADD COLUMN alert_pending boolean NOT NULL DEFAULT false;
CREATE INDEX messages_alert_pending_idx ON messages (id) WHERE alert_pending;
