-- Hardening the two ledgers against faults we cannot see the end of.
--
-- bot_replies: 'unknown' is a post that was sent but whose outcome we never learned (a timeout, a 5xx, a
-- reset connection, a process killed mid-request). Before such a key is posted again, Chatwoot is read
-- back for our own message (bot.core.replies). attempted_at is when the last post of a key started: a
-- 'pending' key with attempted_at set was being posted when its process died, and counts as unknown.
ALTER TABLE bot_replies DROP CONSTRAINT IF EXISTS bot_replies_status_check;
ALTER TABLE bot_replies ADD CONSTRAINT bot_replies_status_check
    CHECK (status IN ('pending', 'posted', 'failed', 'skipped', 'unknown'));
ALTER TABLE bot_replies ADD COLUMN IF NOT EXISTS attempted_at timestamptz;

-- operational_events: how many claims of the event ended with the worker gone (its lease expired while
-- processing). Such runs do not count as attempts; after JOB_MAX_CRASHES of them the event is failed.
ALTER TABLE operational_events ADD COLUMN IF NOT EXISTS crashes integer NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS operational_events_lease_idx ON operational_events (locked_until)
    WHERE status = 'processing';
