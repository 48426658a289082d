DROP TABLE account_deletions;
DROP TABLE refresh_tokens;
