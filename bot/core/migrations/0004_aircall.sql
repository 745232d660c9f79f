-- Aircall mirror: what 0001's call_records lacks.

ALTER TABLE call_records
    ADD COLUMN ai_transcript  text,           -- Aircall AI transcript (transcription.created), speaker-labelled
    ADD COLUMN ai_summary     text;           -- Aircall AI summary (summary.created)

-- "Is this the contact's latest call?" before writing last_call_* attributes on the contact.
CREATE INDEX call_records_contact_idx ON call_records (chatwoot_contact_id, started_at);
