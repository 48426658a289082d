CREATE INDEX phone_verifications_phone_status_idx ON phone_verifications (phone_number, status);
CREATE INDEX phone_verifications_phone_newest_idx ON phone_verifications (phone_number, id DESC);
