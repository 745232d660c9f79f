-- Payload retention (bot.core.ledger.redact_payloads): finished events older than PAYLOAD_RETENTION_DAYS keep
-- their row, dedupe key and status but lose the payload. redacted_at marks them, and the partial index holds
-- only the rows still waiting for it, so each periodic run reads the few that just came of age, not the table.
ALTER TABLE operational_events ADD COLUMN IF NOT EXISTS redacted_at timestamptz;
CREATE INDEX IF NOT EXISTS operational_events_redact_idx ON operational_events (received_at)
    WHERE redacted_at IS NULL AND status IN ('done', 'ignored');
