CREATE INDEX outbox_status_next_attempt_idx ON outbox (status, next_attempt_at);
DROP INDEX outbox_pending_due_idx;
