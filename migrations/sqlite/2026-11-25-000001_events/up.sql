-- The change feed and audit trail: one row per change, written in the change's own
-- transaction (outbox). `seq` is gap-free and in commit order per workspace: it is drawn
-- from `event_sequences`, whose row stays locked until the writing transaction commits.
CREATE TABLE event_sequences (
    workspace_id  TEXT NOT NULL PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    last_seq      INTEGER NOT NULL
);

CREATE TABLE events (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    id            TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    record_type   TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    data          TEXT NOT NULL,
    changes       TEXT NOT NULL,
    occurred_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);
CREATE UNIQUE INDEX events_id ON events (workspace_id, id);
CREATE INDEX events_record ON events (workspace_id, record_type, record_id, seq);
CREATE INDEX events_actor ON events (workspace_id, actor_id, seq);
