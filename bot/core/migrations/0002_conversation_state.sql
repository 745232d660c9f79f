-- What the bot knows about each Chatwoot conversation beyond a single event: whether a human has
-- taken over (the bot stays silent until the conversation is pending again) and what it answered last.
CREATE TABLE conversation_state (
    conversation_id      bigint      PRIMARY KEY,     -- Chatwoot display id
    inbox_id             bigint,
    contact_id           bigint,
    human_since          timestamptz,                 -- set when an agent replies or the bot hands off
    human_reason         text,
    last_answered_message_id bigint,                  -- newest guest message covered by an answer
    updated_at           timestamptz NOT NULL DEFAULT now()
);
