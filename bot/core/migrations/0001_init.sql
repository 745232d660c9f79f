-- Initial schema. Contacts, conversations and users live in Chatwoot: we keep their ids, not foreign keys.

-- Every inbound webhook, exactly as received, with its processing state.
CREATE TABLE operational_events (
    id             bigserial PRIMARY KEY,
    source         text        NOT NULL,              -- chatwoot | aircall | guesty | internal
    event_type     text        NOT NULL,
    dedupe_key     text        NOT NULL UNIQUE,
    subject        text,                              -- what the event is about: "conversation:57", "call:2187340091"
    payload        jsonb       NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    status         text        NOT NULL DEFAULT 'received'
                   CHECK (status IN ('received', 'processing', 'done', 'failed', 'ignored')),
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text,
    enqueued_at    timestamptz,                       -- last time a job was queued for it
    next_attempt_at timestamptz,                      -- when a failed event is retried; NULL once it gave up
    locked_until   timestamptz,                       -- lease of the worker processing it
    processed_at   timestamptz
);
CREATE INDEX operational_events_status_idx ON operational_events (status, received_at);
CREATE INDEX operational_events_subject_idx ON operational_events (subject, received_at);

-- One row per run of a job over an event: what was tried, when, and how it ended.
CREATE TABLE job_attempts (
    id          bigserial PRIMARY KEY,
    event_id    bigint      NOT NULL REFERENCES operational_events (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text,                                 -- done | failed | ignored | skipped
    error       text
);
CREATE INDEX job_attempts_event_idx ON job_attempts (event_id);

-- Every message the sidecar posts to Chatwoot, keyed so a retried job never posts twice.
CREATE TABLE bot_replies (
    id                   bigserial PRIMARY KEY,
    reply_key            text        NOT NULL UNIQUE,   -- e.g. "answer:9120", "transcript:9120", "call-note:2187340091:call.ended"
    conversation_id      bigint,                        -- Chatwoot display id
    kind                 text        NOT NULL,          -- reply | suggestion | handoff | transcript | audio | note
    content              text,
    chatwoot_message_id  bigint,
    status               text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'posted', 'failed')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    posted_at            timestamptz
);
CREATE INDEX bot_replies_conversation_idx ON bot_replies (conversation_id, created_at);

-- Each question the bot answered (or handed off), for review and later learning.
CREATE TABLE qa_records (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint,
    message_ids      bigint[]    NOT NULL DEFAULT '{}',
    inbox_id         bigint,
    contact_id       bigint,
    property_code    text,
    question         text        NOT NULL,
    answer           text,
    sources          jsonb       NOT NULL DEFAULT '[]',
    mode             text        NOT NULL,             -- autopilot | copilot | ask
    model            text,
    outcome          text        NOT NULL,             -- answered | suggested | handed_off
    handoff_reason   text,
    latency_ms       integer,
    timings          jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX qa_records_conversation_idx ON qa_records (conversation_id, created_at);

-- Rental properties (from Guesty listings or the knowledge folders).
CREATE TABLE properties (
    id                 bigserial PRIMARY KEY,
    code               text        NOT NULL UNIQUE,   -- our key: Guesty listing id or the knowledge folder name
    guesty_listing_id  text        UNIQUE,
    name               text        NOT NULL,
    nickname           text,
    address            text,
    timezone           text,
    check_in_time      text,
    check_out_time     text,
    active             boolean     NOT NULL DEFAULT true,
    raw                jsonb       NOT NULL DEFAULT '{}',
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Bookings, mirrored from Guesty.
CREATE TABLE reservations (
    id                   bigserial PRIMARY KEY,
    guesty_id            text        NOT NULL UNIQUE,
    confirmation_code    text,
    property_code        text        REFERENCES properties (code) ON UPDATE CASCADE,
    status               text        NOT NULL,
    check_in_at          timestamptz,
    check_out_at         timestamptz,
    check_in_local       date,
    check_out_local      date,
    guest_name           text,
    guest_email          text,
    guest_phone          text,                        -- E.164
    guests_count         integer,
    channel              text,
    currency             text,
    total_price          numeric(12, 2),
    chatwoot_contact_id  bigint,
    stay_stage           text,                        -- inquiry | pre-stay | during-stay | post-stay
    source_updated_at    timestamptz,                 -- Guesty's lastUpdatedAt: older events never overwrite newer
    raw                  jsonb       NOT NULL DEFAULT '{}',
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_contact_idx ON reservations (chatwoot_contact_id);
CREATE INDEX reservations_email_idx ON reservations (lower(guest_email));
CREATE INDEX reservations_phone_idx ON reservations (guest_phone);

-- Aircall calls, one row per call, merged from its events whatever their order.
CREATE TABLE call_records (
    id                    bigserial PRIMARY KEY,
    aircall_call_id       bigint      NOT NULL UNIQUE,
    direction             text,
    status                text,
    missed_call_reason    text,
    caller_e164           text,
    started_at            timestamptz,
    answered_at           timestamptz,
    ended_at              timestamptz,
    duration_s            integer,
    agent_name            text,
    recording_asset_url   text,                       -- durable link; direct media URLs expire
    voicemail_asset_url   text,
    voicemail_transcript  text,
    tags                  text[]      NOT NULL DEFAULT '{}',
    chatwoot_contact_id   bigint,
    chatwoot_conversation_id bigint,
    last_event            text,
    last_event_at         timestamptz,
    raw                   jsonb       NOT NULL DEFAULT '{}',
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Phone number or email -> Chatwoot contact id, so lookups and creations happen once.
CREATE TABLE contact_links (
    key                  text        PRIMARY KEY,     -- "phone:+447700900123" or "email:oliver@example.co.uk"
    chatwoot_contact_id  bigint      NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Each chunk of knowledge stored in Qdrant, so ingest is incremental and auditable.
CREATE TABLE vector_references (
    id              bigserial PRIMARY KEY,
    point_id        uuid        NOT NULL UNIQUE,
    collection      text        NOT NULL,
    source          text        NOT NULL,             -- file path relative to the knowledge root, or "guesty:listing:<id>"
    chunk_index     integer     NOT NULL,
    property_code   text,
    language        text,
    heading         text,
    content_hash    text        NOT NULL,
    is_access       boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vector_references_source_idx ON vector_references (collection, source);

-- Small shared key/value state (e.g. the Guesty OAuth token shared by every process).
CREATE TABLE kv_state (
    key         text        PRIMARY KEY,
    value       jsonb       NOT NULL,
    expires_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
