-- Issue 10: email-and-password accounts.

-- An account made with an email address has no phone number until it adds one. SQLite cannot
-- drop NOT NULL in place: the table is rebuilt as its documentation describes (ALTER TABLE,
-- "Making Other Kinds Of Table Schema Changes"); the migration runner turns foreign keys off
-- around the migrations, so dropping the old table cascades nothing.
CREATE TABLE users_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number      TEXT      NULL UNIQUE,              -- E.164
    full_name         TEXT      NULL,
    profile_image_url TEXT      NULL,
    is_verified       BOOLEAN   NOT NULL DEFAULT FALSE,
    is_active         BOOLEAN   NOT NULL DEFAULT TRUE,
    last_login        TIMESTAMP NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
INSERT INTO users_new (id, phone_number, full_name, profile_image_url, is_verified, is_active,
                       last_login, created_at, updated_at)
    SELECT id, phone_number, full_name, profile_image_url, is_verified, is_active, last_login,
           created_at, updated_at
    FROM users;
-- Keep the id sequence, so ids of deleted accounts are never handed out again.
DELETE FROM sqlite_sequence WHERE name = 'users_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'users_new', seq FROM sqlite_sequence WHERE name = 'users';
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

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
    id         INTEGER   PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB      NOT NULL UNIQUE,                 -- HMAC of the token, never the token
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
