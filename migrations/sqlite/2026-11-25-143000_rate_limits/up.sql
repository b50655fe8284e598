-- Rate-limit counters: requests per caller (a user or an API key) and budget (`api`, or
-- `bulk` for batches and imports) in one fixed window (`window_start`, Unix seconds). Each
-- server process counts in memory and adds what it counted here about once a second, so
-- every process sees the others' requests; rows of past windows are pruned per workspace.
CREATE TABLE rate_limit_counters (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    subject       TEXT NOT NULL,
    bucket        TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    hits          BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, subject, bucket, window_start)
);
