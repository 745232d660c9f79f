-- What the team teaches the bot (bot.core.learned owns this table) and when agents approve its suggestions.
CREATE TABLE learned_answers (
    id                 bigserial   PRIMARY KEY,
    conversation_id    bigint,
    source_message_id  bigint      UNIQUE,           -- the agent's note (or /send): a redelivery teaches once
    question           text        NOT NULL,
    answer             text        NOT NULL,
    property_code      text,                          -- NULL with shared = true: every property's knowledge
    shared             boolean     NOT NULL DEFAULT false,
    status             text        NOT NULL DEFAULT 'pending'
                                   CHECK (status IN ('pending', 'approved', 'removed')),
    taught_by          bigint,                        -- Chatwoot user id
    indexed            boolean     NOT NULL DEFAULT false,  -- in step with the knowledge store
    created_at         timestamptz NOT NULL DEFAULT now(),
    approved_at        timestamptz,
    removed_at         timestamptz
);
CREATE INDEX learned_answers_sync_idx ON learned_answers (indexed, status);

-- A copilot suggestion sent to the guest by an agent's /send, and how long it waited.
CREATE TABLE suggestion_approvals (
    qa_id            bigint      PRIMARY KEY REFERENCES qa_records (id) ON DELETE CASCADE,
    conversation_id  bigint      NOT NULL,
    note_message_id  bigint      NOT NULL,
    approved_by      bigint,
    edited           boolean     NOT NULL,
    sent_text        text        NOT NULL,
    wait_ms          bigint      NOT NULL,
    approved_at      timestamptz NOT NULL DEFAULT now()
);
