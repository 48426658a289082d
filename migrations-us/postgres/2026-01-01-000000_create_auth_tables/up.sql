-- Authentication tables: users, OTP challenges, sessions, rate-limit buckets, delivery outbox.
-- All timestamps are UTC (TIMESTAMP without time zone, written by the application).

CREATE TABLE users (
    id                BIGSERIAL PRIMARY KEY,
    phone_number      TEXT      NOT NULL UNIQUE,          -- E.164
    full_name         TEXT      NULL,
    profile_image_url TEXT      NULL,
    is_verified       BOOLEAN   NOT NULL DEFAULT FALSE,
    is_active         BOOLEAN   NOT NULL DEFAULT TRUE,
    last_login        TIMESTAMP NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

CREATE TABLE phone_verifications (
    id           BIGSERIAL PRIMARY KEY,
    phone_number TEXT      NOT NULL,                      -- E.164
    code_hash    BYTEA     NOT NULL,                      -- HMAC of the code, never the code
    status       TEXT      NOT NULL
        CHECK (status IN ('active', 'consumed', 'superseded', 'dead', 'expired')),
    attempts     INTEGER   NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    client_ip    TEXT      NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    consumed_at  TIMESTAMP NULL
);
CREATE INDEX phone_verifications_phone_status_idx ON phone_verifications (phone_number, status);

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

CREATE TABLE rate_limits (
    bucket            TEXT      PRIMARY KEY,
    window_started_at TIMESTAMP NOT NULL,
    hits              INTEGER   NOT NULL CHECK (hits >= 0),
    last_hit_at       TIMESTAMP NOT NULL
);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    channel         TEXT      NOT NULL,
    recipient       TEXT      NOT NULL,
    payload         BYTEA     NOT NULL,                   -- sealed body; empty once scrubbed
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
