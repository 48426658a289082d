-- Issue 10: email-and-password accounts.

-- An account made with an email address has no phone number until it adds one.
ALTER TABLE users ALTER COLUMN phone_number DROP NOT NULL;

-- An account's email address and password (at most one per account).
CREATE TABLE email_identities (
    user_id       BIGINT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email         TEXT      NOT NULL,                     -- as typed, domain lower-cased
    email_key     TEXT      NOT NULL UNIQUE,              -- lower-cased: one account per address
    password_hash TEXT      NOT NULL,                     -- Argon2id PHC string
    verified_at   TIMESTAMP NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- Verification and password-reset link tokens: only an HMAC of each token is kept.
CREATE TABLE email_tokens (
    id         BIGSERIAL PRIMARY KEY,
    token_hash BYTEA     NOT NULL UNIQUE,                 -- HMAC of the token, never the token
    purpose    TEXT      NOT NULL CHECK (purpose IN ('verify', 'reset')),
    user_id    BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email_key  TEXT      NOT NULL,                        -- the address the token was sent to
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP NULL                             -- used or retired by a newer token
);
-- A new token retires the account's live ones of its purpose.
CREATE INDEX email_tokens_user_live_idx ON email_tokens (user_id, purpose) WHERE used_at IS NULL;
-- Retention purges by expiry.
CREATE INDEX email_tokens_expires_idx ON email_tokens (expires_at);
