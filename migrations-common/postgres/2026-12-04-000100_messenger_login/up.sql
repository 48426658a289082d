-- Issue 9: sign in with WhatsApp or Telegram.

-- A pending messenger login, in the database of the market it was started in (`X-Market`, else
-- DEFAULT_MARKET). It holds no personal data: keyed hashes of its secrets, a keyed hash of the
-- Telegram user who pressed Start, and the starting app's User-Agent (no IP). The tokens of a completed login are kept sealed until the one
-- poll that takes them.
CREATE TABLE messenger_logins (
    id                TEXT      PRIMARY KEY,               -- login_id, 128 random bits
    channel           TEXT      NOT NULL CHECK (channel IN ('whatsapp', 'telegram')),
    nonce_hash        BYTEA     NOT NULL UNIQUE,           -- HMAC of the nonce
    poll_secret_hash  BYTEA     NOT NULL,                  -- HMAC of the poll secret
    status            TEXT      NOT NULL
        CHECK (status IN ('pending', 'claimed', 'completed', 'consumed', 'failed')),
    telegram_user_hash BYTEA    NULL,                      -- HMAC of the Telegram user id
    result            BYTEA     NULL,                      -- sealed tokens until polled
    error             TEXT      NULL,                      -- error code of a failed login
    user_agent        TEXT      NULL,                      -- the starting app's User-Agent, for the session
    created_at        TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    completed_at      TIMESTAMP NULL
);
CREATE INDEX messenger_logins_expires_idx ON messenger_logins (expires_at);
CREATE INDEX messenger_logins_telegram_idx ON messenger_logins (telegram_user_hash)
    WHERE telegram_user_hash IS NOT NULL;

-- Webhook deliveries already handled (WhatsApp message ids, Telegram update ids), so a replay
-- does nothing.
CREATE TABLE messenger_seen (
    event_id    TEXT      PRIMARY KEY,                     -- `wa:<wamid>`, `tg:<update_id>`
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX messenger_seen_received_idx ON messenger_seen (received_at);

-- Telegram accounts linked to users (by a shared contact), in the user's market database.
CREATE TABLE telegram_links (
    telegram_user_id BIGINT    PRIMARY KEY,
    user_id          BIGINT    NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    linked_at        TIMESTAMP NOT NULL
);
