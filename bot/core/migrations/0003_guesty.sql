-- Guesty mirror: what 0001 lacks to follow guests and listings and to order listing updates.

ALTER TABLE reservations
    ADD COLUMN guest_id           text,        -- Guesty guest id: guest.updated events find the bookings by it
    ADD COLUMN listing_id         text,        -- Guesty listing id, kept even before the listing is mirrored
    ADD COLUMN planned_arrival    text,        -- "15:00", the guest's planned arrival (local time), if given
    ADD COLUMN planned_departure  text;
CREATE INDEX reservations_guest_idx ON reservations (guest_id);

ALTER TABLE properties
    ADD COLUMN source_updated_at  timestamptz; -- the listing's lastUpdatedAt: older events never overwrite newer
