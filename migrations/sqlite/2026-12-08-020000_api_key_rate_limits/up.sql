-- An API key's own budgets of requests per minute (NULL: the server's; 0: unlimited).
ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER;
ALTER TABLE api_keys ADD COLUMN bulk_rate_limit INTEGER;
