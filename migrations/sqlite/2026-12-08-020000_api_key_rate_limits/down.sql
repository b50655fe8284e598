ALTER TABLE api_keys DROP COLUMN bulk_rate_limit;
ALTER TABLE api_keys DROP COLUMN rate_limit;
