-- How many times in a row a worker has taken the job without committing a batch of it: a
-- job that fails at the same place again and again ends `failed` instead of being retried
-- for ever. Committing a batch sets it back to 0.
ALTER TABLE imports ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- Uploads abandoned midway (the server stopped while receiving the file) are removed by age.
CREATE INDEX imports_uploading ON imports (updated_at) WHERE status = 'uploading';
