-- The reply ledger (bot.core.replies) says "skipped" for a planned post with nowhere to go, instead of
-- overloading "failed" (which a retry may post again).
ALTER TABLE bot_replies DROP CONSTRAINT IF EXISTS bot_replies_status_check;
UPDATE bot_replies SET status = 'skipped' WHERE status = 'failed' AND conversation_id IS NULL
   AND starts_with(reply_key, 'guesty:');
ALTER TABLE bot_replies ADD CONSTRAINT bot_replies_status_check
    CHECK (status IN ('pending', 'posted', 'failed', 'skipped'));
