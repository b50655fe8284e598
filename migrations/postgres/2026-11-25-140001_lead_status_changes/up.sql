-- Every status a lead has been in (new, working, …, converted), for its timeline. Leads
-- created before this migration start their history at their next change.
CREATE TABLE lead_status_changes (
    workspace_id  TEXT NOT NULL,
    id            TEXT NOT NULL,
    lead_id       TEXT NOT NULL,
    from_status   TEXT,
    to_status     TEXT NOT NULL,
    changed_at    TIMESTAMP NOT NULL,
    changed_by    TEXT,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, lead_id) REFERENCES leads (workspace_id, id) ON DELETE CASCADE
);
-- A lead's timeline pages its status changes by (changed_at, id).
CREATE INDEX lead_status_changes_timeline ON lead_status_changes (workspace_id, lead_id, changed_at, id);
