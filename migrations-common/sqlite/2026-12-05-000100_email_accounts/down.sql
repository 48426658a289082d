DROP TABLE email_tokens;
DROP TABLE email_identities;
DELETE FROM users WHERE phone_number IS NULL;
