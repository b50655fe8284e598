-- An Idempotency-Key belongs to the caller (user or API key) that sent it: another caller
-- of the workspace sending the same key runs its own request instead of being answered
-- with the first caller's stored response. Keys stored before this change name no caller
-- (''), match no request and expire with the others. SQLite cannot change a primary key,
-- so the table is rebuilt.
CREATE TABLE idempotency_keys_new (
    workspace_id      TEXT NOT NULL,
    caller            TEXT NOT NULL DEFAULT '',
    idempotency_key   TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    response_status   INTEGER,
    response_headers  TEXT,
    response_body     TEXT,
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, caller, idempotency_key)
);
INSERT INTO idempotency_keys_new (workspace_id, caller, idempotency_key, request_hash,
    response_status, response_headers, response_body, created_at)
SELECT workspace_id, '', idempotency_key, request_hash, response_status, response_headers,
    response_body, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (workspace_id, created_at);
