-- Issue 12, items 8–10: codes bound to a purpose and to an unguessable challenge id, and wrong
-- codes counted per number across challenges.

-- What the code is for (`login`, `delete_account`, later others: no CHECK, so a new purpose
-- needs no table rebuild on SQLite; the application maps the text). Rows issued before this
-- migration were sign-in codes.
ALTER TABLE phone_verifications ADD COLUMN purpose TEXT NOT NULL DEFAULT 'login';
-- 128 random bits, base64url; NULL for rows issued before this migration.
ALTER TABLE phone_verifications ADD COLUMN challenge_id TEXT NULL;
CREATE UNIQUE INDEX phone_verifications_challenge_id_idx ON phone_verifications (challenge_id);
-- The newest code of a number for a purpose is read on every verification.
CREATE INDEX phone_verifications_phone_purpose_newest_idx
    ON phone_verifications (phone_number, purpose, id DESC);

-- Consecutive wrong codes per number, across its challenges, and the lock they lead to
-- (MAX_CONSECUTIVE_FAILURES, FAILURE_LOCK_MINUTES). Read and written under a row lock.
CREATE TABLE phone_failures (
    phone_number TEXT      PRIMARY KEY,                   -- E.164
    consecutive  INTEGER   NOT NULL DEFAULT 0 CHECK (consecutive >= 0),
    locked_until TIMESTAMP NULL,
    updated_at   TIMESTAMP NOT NULL
);
