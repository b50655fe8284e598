-- Bulk imports. The uploaded file is kept in the database as ~1 MiB chunks, so any server
-- process can run a job and resume it after a crash. A worker holds a job by a lease
-- (`lease_owner`, `lease_until`) and commits each batch of rows together with the job's
-- counters, its checkpoint (`next_offset`, the byte where the next unprocessed row starts,
-- and `next_line`, that row's line number) and the batch's row errors, conditional on still
-- holding the lease and the job not being cancelled: a row is never written twice.
-- `uploading` jobs are not yet visible through the API.
CREATE TABLE imports (
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    object          TEXT NOT NULL,
    format          TEXT NOT NULL,
    mode            TEXT NOT NULL,
    match_on        TEXT,
    dry_run         BOOLEAN NOT NULL,
    mapping         TEXT,
    column_targets  TEXT,
    status          TEXT NOT NULL,
    bytes_total     INTEGER NOT NULL,
    rows_total      INTEGER NOT NULL,
    rows_processed  INTEGER NOT NULL,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    next_offset     INTEGER NOT NULL,
    next_line       INTEGER NOT NULL,
    error           TEXT,
    actor_kind      TEXT NOT NULL,
    actor_id        TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TIMESTAMP,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    started_at      TIMESTAMP,
    finished_at     TIMESTAMP,
    PRIMARY KEY (workspace_id, id)
);
-- What the workers look for: jobs still to run.
CREATE INDEX imports_pending ON imports (status, lease_until) WHERE status IN ('queued', 'running');

CREATE TABLE import_chunks (
    workspace_id  TEXT NOT NULL,
    import_id     TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    start_offset  INTEGER NOT NULL,
    data          BLOB NOT NULL,
    PRIMARY KEY (workspace_id, import_id, seq),
    FOREIGN KEY (workspace_id, import_id) REFERENCES imports (workspace_id, id) ON DELETE CASCADE
);

CREATE TABLE import_errors (
    workspace_id  TEXT NOT NULL,
    import_id     TEXT NOT NULL,
    line          INTEGER NOT NULL,
    problem       TEXT NOT NULL,
    PRIMARY KEY (workspace_id, import_id, line),
    FOREIGN KEY (workspace_id, import_id) REFERENCES imports (workspace_id, id) ON DELETE CASCADE
);
