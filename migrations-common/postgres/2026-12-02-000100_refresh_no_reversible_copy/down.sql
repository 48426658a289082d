ALTER TABLE refresh_tokens DROP COLUMN rotated_client;
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed BYTEA NULL;
