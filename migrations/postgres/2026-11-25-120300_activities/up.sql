-- Activities (tasks, calls, meetings, e-mails, notes) and their links to any record.
CREATE TABLE activities (
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id             TEXT NOT NULL,
    activity_type  TEXT NOT NULL,
    subject        TEXT NOT NULL,
    body           TEXT,
    due_at         TIMESTAMP,
    start_at       TIMESTAMP,
    end_at         TIMESTAMP,
    all_day        BOOLEAN NOT NULL DEFAULT FALSE,
    status         TEXT NOT NULL,
    completed_at   TIMESTAMP,
    priority       TEXT NOT NULL DEFAULT 'normal',
    assignee_id    TEXT,
    owner_id       TEXT,
    outcome        TEXT,
    channel        TEXT,
    -- When the activity sits on a timeline: start_at, else due_at, else created_at.
    occurred_at    TIMESTAMP NOT NULL,
    -- The linked ids by record type, as the API shows them; activity_links is the index.
    links          TEXT NOT NULL DEFAULT '{}',
    external_id    TEXT,
    custom         TEXT NOT NULL DEFAULT '{}',
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    archived_at    TIMESTAMP,
    version        INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX activities_external_id ON activities (workspace_id, external_id);
CREATE INDEX activities_created ON activities (workspace_id, created_at, id);
CREATE INDEX activities_assignee_due ON activities (workspace_id, assignee_id, due_at);
CREATE INDEX activities_assignee_start ON activities (workspace_id, assignee_id, start_at);
CREATE INDEX activities_due ON activities (workspace_id, due_at, id);

-- One row per (activity, linked record). record_type names the linked table's record
-- (`contact`, `company`, later `deal`, `lead`, `ticket`); there is no foreign key to it.
CREATE TABLE activity_links (
    workspace_id  TEXT NOT NULL,
    activity_id   TEXT NOT NULL,
    record_type   TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    -- The activity's occurred_at, kept here so a record's timeline reads one index.
    occurred_at   TIMESTAMP NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, activity_id, record_type, record_id),
    FOREIGN KEY (workspace_id, activity_id) REFERENCES activities (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX activity_links_record ON activity_links (workspace_id, record_type, record_id, occurred_at, activity_id);

-- A contact's timeline pages its lifecycle history by (changed_at, id).
CREATE INDEX contact_lifecycle_changes_timeline ON contact_lifecycle_changes (workspace_id, contact_id, changed_at, id);

-- Free text over subject and body (the expression crm_db::query `text_document` writes).
CREATE INDEX activities_text_trgm ON activities USING gin ((
    coalesce(subject, '') || ' ' || coalesce(body, '')
) public.gin_trgm_ops);
