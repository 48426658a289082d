-- Issue 12 item 6: keep nothing reversible of a refresh token. The successor of a rotated token
-- is recomputed from the presented token with a keyed MAC, so its sealed copy goes; the rotated
-- row keeps only a MAC of the rotating client (user agent + IP prefix), for replays in the grace
-- window.
ALTER TABLE refresh_tokens DROP COLUMN successor_sealed;
ALTER TABLE refresh_tokens ADD COLUMN rotated_client BLOB NULL;  -- HMAC of UA + IP prefix
