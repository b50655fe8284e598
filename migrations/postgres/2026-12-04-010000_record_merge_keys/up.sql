-- The match values (external ids, e-mail addresses) that a record merged away held and the
-- record that absorbed it does not: an upsert naming one of them updates the survivor
-- instead of creating the merged record again. A value a live record holds wins over it.
CREATE TABLE record_merge_keys (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    object_type   TEXT NOT NULL,
    match_column  TEXT NOT NULL,
    value         TEXT NOT NULL,
    survivor_id   TEXT NOT NULL,
    PRIMARY KEY (workspace_id, object_type, match_column, value)
);
CREATE INDEX record_merge_keys_survivor ON record_merge_keys (workspace_id, object_type, survivor_id);
