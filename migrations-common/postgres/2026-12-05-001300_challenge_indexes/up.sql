-- Issue 13: every lookup of a number's codes filters on (phone_number, purpose), so
-- phone_verifications_phone_purpose_newest_idx (phone_number, purpose, id DESC) serves them all:
-- the newest code of a purpose, the supersede of the active one (a number has a handful of codes
-- until retention removes them), and account deletion (its leading column). The two older
-- indexes only cost writes; and with `status` in no index, the status changes of supersede,
-- consume and wrong tries can be HOT updates on PostgreSQL (no index entries written).
DROP INDEX phone_verifications_phone_status_idx;
DROP INDEX phone_verifications_phone_newest_idx;
