CREATE TABLE idempotency_keys_old (
    workspace_id      TEXT NOT NULL,
    idempotency_key   TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    response_status   INTEGER,
    response_headers  TEXT,
    response_body     TEXT,
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, idempotency_key)
);
INSERT INTO idempotency_keys_old (workspace_id, idempotency_key, request_hash,
    response_status, response_headers, response_body, created_at)
SELECT workspace_id, idempotency_key, request_hash, response_status, response_headers,
    response_body, created_at FROM idempotency_keys WHERE caller = '';
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_old RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (workspace_id, created_at);
