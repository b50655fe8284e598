-- Assignment rules: which rep owns a new record. The first active rule of the object (by
-- position) whose filter matches the record assigns it, to one user (`fixed`) or in turn
-- to each active user of a list or team (`round_robin`). `assigned_count` is the rotation:
-- it advances inside the record's insert transaction, so concurrent creates never take the
-- same turn (a row lock on PostgreSQL; SQLite serialises writers).
CREATE TABLE assignment_rules (
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    object          TEXT NOT NULL,
    position        INTEGER NOT NULL,
    active          BOOLEAN NOT NULL,
    filter          TEXT,
    strategy        TEXT NOT NULL,
    user_id         TEXT,
    user_ids        TEXT NOT NULL DEFAULT '[]',
    team_id         TEXT,
    assigned_count  BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX assignment_rules_position ON assignment_rules (workspace_id, object, position, id);
