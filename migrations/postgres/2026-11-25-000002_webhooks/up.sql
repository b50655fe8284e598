-- Webhook subscriptions and their deliveries. The dispatcher reads the events outbox past
-- each subscription's `cursor_seq` and queues one delivery per matching event; the sender
-- attempts due deliveries, oldest first, one at a time per (webhook, record) so a
-- receiver sees each record's changes in commit order. The workers go workspace by
-- workspace, so every query they make is routed by workspace_id.
CREATE TABLE webhooks (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    url           TEXT NOT NULL,
    description   TEXT,
    event_types   TEXT NOT NULL,
    filter        TEXT,
    secret        TEXT NOT NULL,
    active        BOOLEAN NOT NULL,
    cursor_seq    BIGINT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE webhook_deliveries (
    workspace_id      TEXT NOT NULL,
    id                TEXT NOT NULL,
    webhook_id        TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    event_seq         BIGINT NOT NULL,
    record_id         TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    next_attempt_at   TIMESTAMP,
    locked_until      TIMESTAMP,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, webhook_id) REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (workspace_id, webhook_id, event_seq);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (workspace_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_record ON webhook_deliveries (workspace_id, webhook_id, record_id, status, event_seq);

CREATE TABLE webhook_attempts (
    workspace_id  TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    attempted_at  TIMESTAMP NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, delivery_id, attempt),
    FOREIGN KEY (workspace_id, delivery_id) REFERENCES webhook_deliveries (workspace_id, id) ON DELETE CASCADE
);
