-- What the bot would have sent to Chatwoot in a shadow-mode inbox (bot.core.shadow_replies owns it).
CREATE TABLE shadow_replies (
    id               bigserial   PRIMARY KEY,
    inbox_id         bigint,
    conversation_id  bigint      NOT NULL,
    message_id       bigint      NOT NULL,              -- the guest message being handled
    action           text        NOT NULL,              -- reply | note | labels | status | typing | attributes ...
    content          text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shadow_replies_message_idx ON shadow_replies (message_id);
CREATE INDEX shadow_replies_created_idx ON shadow_replies (created_at);
