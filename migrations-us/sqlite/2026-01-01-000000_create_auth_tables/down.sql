DROP TABLE outbox;
DROP TABLE rate_limits;
DROP TABLE sessions;
DROP TABLE phone_verifications;
DROP TABLE users;
