-- Guests' voice notes as the bot heard them: one row per voice message, written once, so a retried job or a
-- later message_updated never transcribes (or pays for) the same note twice. Personal data: `sidecar purge`
-- deletes rows older than VOICE_RETENTION_DAYS. The audio itself is never stored.
CREATE TABLE voice_transcripts (
    id               bigserial PRIMARY KEY,
    event_id         bigint      REFERENCES operational_events (id) ON DELETE SET NULL,
    message_id       bigint      NOT NULL UNIQUE,      -- the Chatwoot message holding the audio
    conversation_id  bigint      NOT NULL,             -- Chatwoot display id
    text             text,                             -- NULL when the note could not be transcribed
    language         text,                             -- locale or language the backend reported
    duration_ms      integer,
    backend          text        NOT NULL,             -- azure | local | chatwoot
    confidence       real,
    failure          text,                             -- why there is no text (unintelligible, speech_unavailable ...)
    created_at       timestamptz NOT NULL DEFAULT now(),
    handled_at       timestamptz                       -- answered, suggested or handed off: never again
);
CREATE INDEX voice_transcripts_created_idx ON voice_transcripts (created_at);
