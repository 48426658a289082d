DROP INDEX refresh_tokens_expires_at_idx;
DROP INDEX sessions_revoked_at_idx;
DROP INDEX sessions_expires_at_idx;
DROP INDEX outbox_created_at_idx;
DROP INDEX phone_failures_updated_at_idx;
DROP INDEX rate_limits_last_hit_at_idx;
DROP INDEX phone_verifications_expires_at_idx;
DROP TABLE audit_log;
