-- Issue 13: the delivery worker claims due messages by primary key from an index of pending
-- rows only, so a long history of sent rows (until retention removes them) is never scanned.
CREATE INDEX outbox_pending_due_idx ON outbox (next_attempt_at, id) WHERE status = 'pending';
DROP INDEX outbox_status_next_attempt_idx;
