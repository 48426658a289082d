DROP TABLE email_tokens;
DROP TABLE email_identities;
DELETE FROM users WHERE phone_number IS NULL;
ALTER TABLE users ALTER COLUMN phone_number SET NOT NULL;
