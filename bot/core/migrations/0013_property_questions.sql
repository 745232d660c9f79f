-- A question the bot could not place in a general inbox: it named no booking's property and fit several
-- properties, so the bot asked which one. Owned by bot.agent.property_store; the guest's next message that
-- names a property gets this question answered for it.
CREATE TABLE property_questions (
    conversation_id    bigint      PRIMARY KEY,       -- Chatwoot display id: one waiting question at a time
    contact_id         bigint,
    question           text        NOT NULL,
    candidates         text[]      NOT NULL,          -- the property codes it could mean
    asked_message_id   bigint      NOT NULL,          -- the guest message that was answered with "which one?"
    answered_by        bigint,                        -- the later guest message that named the property
    created_at         timestamptz NOT NULL DEFAULT now()
);
