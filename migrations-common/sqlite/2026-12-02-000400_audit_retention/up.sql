-- Audit log of security events (issue 12, item 18) and the indexes the retention job's
-- bounded deletes use (item 19). Never a code or a token in a row.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TIMESTAMP NOT NULL,
    event       TEXT      NOT NULL,                       -- AuditEvent::kind
    user_id     BIGINT    NULL,                           -- no FK: the row outlives the account
    client_ip   TEXT      NULL,
    user_agent  TEXT      NULL,
    detail      TEXT      NULL                            -- AuditEvent::detail, no secrets
);
CREATE INDEX audit_log_occurred_at_idx ON audit_log (occurred_at);
CREATE INDEX audit_log_user_id_idx ON audit_log (user_id);

-- Retention: each purge selects a batch by these columns.
CREATE INDEX phone_verifications_expires_at_idx ON phone_verifications (expires_at);
CREATE INDEX rate_limits_last_hit_at_idx ON rate_limits (last_hit_at);
CREATE INDEX phone_failures_updated_at_idx ON phone_failures (updated_at);
CREATE INDEX outbox_created_at_idx ON outbox (created_at);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
