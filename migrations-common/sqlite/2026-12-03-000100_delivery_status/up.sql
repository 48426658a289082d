-- Issue 8: real providers, channel fallback and delivery status.

-- The channel a challenge's code goes out on first (also for test numbers, which send nothing).
ALTER TABLE phone_verifications ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';

-- The challenge a message carries the code of (`GET /api/v1/auth/challenges/{challenge_id}`).
ALTER TABLE outbox ADD COLUMN challenge_id TEXT NULL;
-- Channels still to try, in order, when the current one fails permanently (`telegram,sms`).
ALTER TABLE outbox ADD COLUMN fallback_channels TEXT NOT NULL DEFAULT '';
-- The first channel tried, once the message has fallen back to another.
ALTER TABLE outbox ADD COLUMN fallback_from TEXT NULL;
-- The provider that took the message and its id for it (what delivery reports name).
ALTER TABLE outbox ADD COLUMN provider TEXT NULL;
ALTER TABLE outbox ADD COLUMN provider_message_id TEXT NULL;
-- What the provider reported later: `delivered` or `undelivered`; NULL until a report arrives.
ALTER TABLE outbox ADD COLUMN delivery_status TEXT NULL
    CHECK (delivery_status IN ('delivered', 'undelivered'));
ALTER TABLE outbox ADD COLUMN delivered_at TIMESTAMP NULL;
-- SMS segments billed (GSM-7 or UCS-2, 3GPP TS 23.038); NULL on messenger channels.
ALTER TABLE outbox ADD COLUMN segments INTEGER NULL CHECK (segments >= 1);

CREATE INDEX outbox_challenge_id_idx ON outbox (challenge_id);
CREATE INDEX outbox_provider_message_idx ON outbox (provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
