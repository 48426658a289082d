DROP TABLE phone_failures;
DROP INDEX phone_verifications_phone_purpose_newest_idx;
DROP INDEX phone_verifications_challenge_id_idx;
ALTER TABLE phone_verifications DROP COLUMN challenge_id;
ALTER TABLE phone_verifications DROP COLUMN purpose;
