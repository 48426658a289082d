-- Run after every market tree's down.sql (market tables reference users).
DROP TABLE user_notifications;
DROP TABLE account_deletions;
DROP TABLE refresh_tokens;
DROP TABLE outbox;
DROP TABLE rate_limits;
DROP TABLE sessions;
DROP TABLE phone_verifications;
DROP TABLE users;
