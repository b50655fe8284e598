DELETE FROM idempotency_keys WHERE caller <> '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (workspace_id, idempotency_key);
ALTER TABLE idempotency_keys DROP COLUMN caller;
