-- Guide passages that disagree with the property's Guesty listing (integrations.guesty.staleness owns it).
CREATE TABLE knowledge_conflicts (
    id             bigserial   PRIMARY KEY,
    property_code  text        NOT NULL,
    fact           text        NOT NULL,              -- check_in | check_out | max_guests | pets
    source         text        NOT NULL,              -- the guide file (knowledge source) to fix
    heading        text,
    guide_value    text        NOT NULL,
    listing_value  text        NOT NULL,
    first_seen     timestamptz NOT NULL DEFAULT now(),
    last_seen      timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    UNIQUE (property_code, fact, source, guide_value, listing_value)
);
