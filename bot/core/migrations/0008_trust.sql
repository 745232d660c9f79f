-- Who may be told door codes and exact addresses (bot.agent.entitlement): identity checks made in a
-- conversation, and the trail of every release and refusal of gated details.

-- Each attempt at the in-conversation check (confirmation code + last name), one per guest message.
-- Owned by bot.agent.verification_store; failures within VERIFY_WINDOW_HOURS count towards the lock.
CREATE TABLE identity_checks (
    id               bigserial   PRIMARY KEY,
    message_id       bigint      NOT NULL UNIQUE,      -- the guest message that carried the attempt
    conversation_id  bigint      NOT NULL,
    contact_id       bigint,
    guesty_id        text,                             -- the booking whose code was given, when one matched
    succeeded        boolean     NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_checks_contact_idx ON identity_checks (contact_id, created_at) WHERE NOT succeeded;
CREATE INDEX identity_checks_booking_idx ON identity_checks (guesty_id, created_at) WHERE NOT succeeded;

-- A conversation's proven booking, and the question waiting for the check. Owned by the same module.
CREATE TABLE conversation_identity (
    conversation_id      bigint      PRIMARY KEY,      -- Chatwoot display id
    guesty_id            text,                         -- verified for this booking (NULL: not yet)
    contact_id           bigint,
    verified_message_id  bigint,
    verified_at          timestamptz,
    pending_question     text,                         -- the gated question asked before the check
    pending_facts        text[]      NOT NULL DEFAULT '{}',
    pending_since        timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Every release and refusal of gated details. Owned by bot.agent.access_log; `sidecar access log` reads it.
CREATE TABLE access_log (
    id               bigserial   PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    action           text        NOT NULL CHECK (action IN ('release', 'refusal')),
    fact             text        NOT NULL CHECK (fact IN ('access', 'address')),
    conversation_id  bigint,
    message_id       bigint,
    contact_id       bigint,
    booking          text,                             -- confirmation code (else Guesty id) the asker pointed at
    identity         text        NOT NULL CHECK (identity IN ('verified', 'claimed', 'unknown')),
    reason           text        NOT NULL,
    UNIQUE (message_id, fact, action)                  -- a retried job writes its row once
);
CREATE INDEX access_log_contact_idx ON access_log (contact_id, created_at);
CREATE INDEX access_log_booking_idx ON access_log (booking, created_at);
