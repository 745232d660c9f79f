-- History import (`sidecar import mongodb|firestore`, `sidecar validate`) and the knowledge change feed.

-- Where each source file's import stands, so an interrupted run resumes after its last committed batch.
-- `source` is "<format>:<file name>"; a file whose size or digest changed starts again from the top.
CREATE TABLE import_checkpoints (
    source       text        PRIMARY KEY,
    file_size    bigint      NOT NULL,
    file_digest  text        NOT NULL,            -- sha256 of the file
    position     integer     NOT NULL DEFAULT 0,  -- records committed so far (0-based index of the next one)
    last_id      text,                            -- source id of the last committed record
    finished     boolean     NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every distinct source record applied, by the fingerprint of its content: a re-run finds each one here
-- and writes nothing; the same content at another place in the sources is a duplicate.
CREATE TABLE import_records (
    kind         text        NOT NULL,            -- call | reservation | listing | room | message
    fingerprint  text        NOT NULL,
    record_key   text        NOT NULL,            -- the target key: call id, reservation id, listing id, room id ...
    source       text        NOT NULL,
    position     integer     NOT NULL,
    outcome      text        NOT NULL,            -- inserted | updated | unchanged | older
    imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, fingerprint)
);
CREATE INDEX import_records_key_idx ON import_records (kind, record_key);

-- Records that failed a rule (unreadable, a malformed date, check-out before check-in, a duplicate ...):
-- kept with the reason and the record itself, never dropped.
CREATE TABLE import_errors (
    id           bigserial   PRIMARY KEY,
    source       text        NOT NULL,
    position     integer     NOT NULL,
    collection   text        NOT NULL,
    kind         text,                            -- NULL when the collection maps to nothing we know
    record_key   text,
    rule         text        NOT NULL,            -- duplicate | unreadable | malformed_date | required | ...
    reason       text        NOT NULL,
    record       jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, position)
);

-- `sidecar validate` compares the stays of one listing (no overlapping confirmed reservations).
CREATE INDEX reservations_listing_idx ON reservations (listing_id, check_in_at);

-- Conversations of the old chat system (RocketChat rooms and their messages), kept as an archive.
CREATE TABLE archived_conversations (
    room_id        text        PRIMARY KEY,
    source_system  text        NOT NULL,          -- rocketchat
    room_type      text,                          -- l (livechat) | d (direct) | c (channel) | p (private)
    name           text,
    contact_name   text,
    contact_email  text,
    contact_phone  text,                          -- E.164
    started_at     timestamptz,
    last_message_at timestamptz,
    closed_at      timestamptz,
    raw            jsonb       NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE archived_messages (
    message_id   text        PRIMARY KEY,
    room_id      text        NOT NULL,            -- no foreign key: messages may be imported before their room
    author       text,
    author_kind  text        NOT NULL,            -- guest | agent | system
    body         text,
    sent_at      timestamptz,
    raw          jsonb       NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archived_messages_room_idx ON archived_messages (room_id, sent_at);

-- The knowledge change feed: a property row that feeds knowledge changed, whoever changed it (a webhook,
-- an import, an UPDATE typed by hand). The worker re-indexes the listed properties and deletes the rows;
-- `version` tells it whether the row changed again while it worked. NOTIFY wakes a listener at once.
CREATE TABLE knowledge_changes (
    property_code  text        PRIMARY KEY,
    listing_id     text,                          -- the listing's knowledge source is guesty:listing:<id>
    version        bigint      NOT NULL DEFAULT 1,
    changed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION note_knowledge_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed properties%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
    IF TG_OP = 'UPDATE' AND OLD.code IS DISTINCT FROM NEW.code AND OLD.guesty_listing_id IS NOT NULL THEN
        INSERT INTO knowledge_changes AS k (property_code, listing_id) VALUES (OLD.code, OLD.guesty_listing_id)
        ON CONFLICT (property_code) DO UPDATE SET listing_id = EXCLUDED.listing_id, version = k.version + 1,
                                                  changed_at = now();
    END IF;
    IF changed.guesty_listing_id IS NULL THEN
        RETURN NULL;  -- folder knowledge: `sidecar ingest` owns it
    END IF;
    INSERT INTO knowledge_changes AS k (property_code, listing_id) VALUES (changed.code, changed.guesty_listing_id)
    ON CONFLICT (property_code) DO UPDATE SET listing_id = EXCLUDED.listing_id, version = k.version + 1,
                                              changed_at = now();
    PERFORM pg_notify('knowledge_changes', changed.code);
    RETURN NULL;
END;
$$;

CREATE TRIGGER properties_knowledge_insert AFTER INSERT OR DELETE ON properties
    FOR EACH ROW EXECUTE FUNCTION note_knowledge_change();
-- Only what a listing's knowledge is made of; updated_at alone (or source_updated_at) changes nothing.
CREATE TRIGGER properties_knowledge_update AFTER UPDATE ON properties
    FOR EACH ROW
    WHEN ((OLD.code, OLD.guesty_listing_id, OLD.name, OLD.nickname, OLD.address, OLD.timezone, OLD.check_in_time,
           OLD.check_out_time, OLD.active, OLD.raw)
          IS DISTINCT FROM
          (NEW.code, NEW.guesty_listing_id, NEW.name, NEW.nickname, NEW.address, NEW.timezone, NEW.check_in_time,
           NEW.check_out_time, NEW.active, NEW.raw))
    EXECUTE FUNCTION note_knowledge_change();
