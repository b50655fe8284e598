-- Records merged into another (contacts, companies): the merged-away id keeps pointing at
-- the record that absorbed it, so reads of the old id answer with the survivor. Merging
-- the survivor later repoints every row that named it, so each row names a live record.
CREATE TABLE record_merges (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    object_type   TEXT NOT NULL,
    merged_id     TEXT NOT NULL,
    survivor_id   TEXT NOT NULL,
    merged_at     TIMESTAMP NOT NULL,
    merged_by     TEXT NOT NULL,
    PRIMARY KEY (workspace_id, object_type, merged_id)
);
CREATE INDEX record_merges_survivor ON record_merges (workspace_id, object_type, survivor_id);
