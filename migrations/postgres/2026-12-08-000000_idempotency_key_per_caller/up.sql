-- An Idempotency-Key belongs to the caller (user or API key) that sent it: another caller
-- of the workspace sending the same key runs its own request instead of being answered
-- with the first caller's stored response. Keys stored before this change name no caller
-- (''), match no request and expire with the others.
ALTER TABLE idempotency_keys ADD COLUMN caller TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (workspace_id, caller, idempotency_key);
