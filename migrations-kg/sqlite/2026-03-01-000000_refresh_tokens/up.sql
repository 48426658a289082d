-- Refresh tokens (stored as SHA-256 only; rotated on use) and the audit trail of deleted accounts.

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
