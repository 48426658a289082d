-- The newest code of a number is read on every verification: serve it from an index.
CREATE INDEX phone_verifications_phone_newest_idx ON phone_verifications (phone_number, id DESC);
