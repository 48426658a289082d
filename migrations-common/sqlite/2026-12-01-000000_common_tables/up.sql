-- Tables alike in every market (this backend's half of the schema; the market trees
-- `migrations-<market>/` add what differs by market: addresses and payment methods).
-- All timestamps are UTC (TIMESTAMP without time zone, written by the application).
-- Folded from the pre-release migrations 2026-01-01 … 2026-03-02; append-only from here on
-- (see ../README.md).

-- Shoppers of the market, identified by their phone number.
CREATE TABLE users (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number      TEXT      NOT NULL UNIQUE,          -- E.164
    full_name         TEXT      NULL,
    profile_image_url TEXT      NULL,
    is_verified       BOOLEAN   NOT NULL DEFAULT FALSE,
    is_active         BOOLEAN   NOT NULL DEFAULT TRUE,
    last_login        TIMESTAMP NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

-- One-time codes (OTP challenges): only an HMAC of each code is kept.
CREATE TABLE phone_verifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number TEXT      NOT NULL,                      -- E.164
    code_hash    BLOB      NOT NULL,                      -- HMAC of the code, never the code
    status       TEXT      NOT NULL
        CHECK (status IN ('active', 'consumed', 'superseded', 'dead', 'expired')),
    attempts     INTEGER   NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    client_ip    TEXT      NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    consumed_at  TIMESTAMP NULL
);
CREATE INDEX phone_verifications_phone_status_idx ON phone_verifications (phone_number, status);

-- The newest code of a number is read on every verification: serve it from an index.
CREATE INDEX phone_verifications_phone_newest_idx ON phone_verifications (phone_number, id DESC);

-- One row per login; logout and revocation act on it, so every instance sees them.
CREATE TABLE sessions (
    id           TEXT      PRIMARY KEY,                   -- UUID v4 as text
    user_id      BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP NULL,
    user_agent   TEXT      NULL,
    client_ip    TEXT      NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Fixed-window rate-limit buckets, shared by every instance.
CREATE TABLE rate_limits (
    bucket            TEXT      PRIMARY KEY,
    window_started_at TIMESTAMP NOT NULL,
    hits              INTEGER   NOT NULL CHECK (hits >= 0),
    last_hit_at       TIMESTAMP NOT NULL
);

-- Messages to deliver, written in the same transaction as their challenge.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT      NOT NULL,
    recipient       TEXT      NOT NULL,
    payload         BLOB      NOT NULL,                   -- sealed body; empty once scrubbed
    status          TEXT      NOT NULL
        CHECK (status IN ('pending', 'sent', 'failed', 'expired')),
    attempts        INTEGER   NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until    TIMESTAMP NULL,
    expires_at      TIMESTAMP NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    sent_at         TIMESTAMP NULL,
    last_error      TEXT      NULL
);
CREATE INDEX outbox_status_next_attempt_idx ON outbox (status, next_attempt_at);

-- Refresh tokens, stored as SHA-256 only and rotated on use.
CREATE TABLE refresh_tokens (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id       TEXT      NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash       BLOB NOT NULL UNIQUE,               -- SHA-256 of the token text
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    rotated_at       TIMESTAMP NULL,                      -- set when exchanged for a successor
    successor_id     BIGINT    NULL,
    successor_sealed BLOB NULL                            -- successor, encrypted, for the grace window
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- One row per deleted account: no phone number, name or other personal data.
CREATE TABLE account_deletions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT    NOT NULL,                        -- id the account had
    deleted_at TIMESTAMP NOT NULL
);

-- Notifications shown to the shopper; they go with the account (ON DELETE CASCADE).
CREATE TABLE user_notifications (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id           BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    notification_type TEXT      NOT NULL
        CHECK (notification_type IN ('order', 'promotion', 'security', 'system')),
    title             TEXT      NOT NULL,
    message           TEXT      NOT NULL,
    order_id          BIGINT    NULL,                     -- the order service's id
    is_read           BOOLEAN   NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMP NOT NULL,
    read_at           TIMESTAMP NULL
);
CREATE INDEX user_notifications_user_id_idx ON user_notifications (user_id);
