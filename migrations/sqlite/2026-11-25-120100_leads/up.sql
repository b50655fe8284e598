-- Leads (DOMAIN.md §4): people and companies that may become customers, tracked,
-- distributed to reps and qualified until they are converted into a contact, a company
-- and a deal. `converted_*` are set only by conversion.
CREATE TABLE leads (
    workspace_id          TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                    TEXT NOT NULL,
    first_name            TEXT,
    last_name             TEXT,
    email                 TEXT,
    phone                 TEXT,
    company_name          TEXT,
    title                 TEXT,
    source                TEXT,
    campaign_id           TEXT,
    status                TEXT NOT NULL,
    disqualified_reason   TEXT,
    score                 INTEGER,
    owner_id              TEXT,
    tags                  TEXT NOT NULL DEFAULT '[]',
    external_id           TEXT,
    custom                TEXT NOT NULL DEFAULT '{}',
    converted_at          TIMESTAMP,
    converted_contact_id  TEXT,
    converted_company_id  TEXT,
    converted_deal_id     TEXT,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    archived_at           TIMESTAMP,
    version               INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX leads_email ON leads (workspace_id, email);
CREATE UNIQUE INDEX leads_external_id ON leads (workspace_id, external_id);
CREATE INDEX leads_created ON leads (workspace_id, created_at, id);
CREATE INDEX leads_updated ON leads (workspace_id, updated_at, id);
CREATE INDEX leads_owner ON leads (workspace_id, owner_id);
CREATE INDEX leads_status ON leads (workspace_id, status);
CREATE INDEX leads_score ON leads (workspace_id, score, id);

-- Free text (`q`): an FTS5 trigram table over the text columns, kept in sync by triggers
-- (see migration `sqlite_free_text`).
CREATE VIRTUAL TABLE leads_fts USING fts5(
    workspace_id UNINDEXED, id UNINDEXED, first_name, last_name, email, company_name,
    content='leads', content_rowid='rowid', tokenize='trigram'
);
CREATE TRIGGER leads_fts_insert AFTER INSERT ON leads BEGIN
    INSERT INTO leads_fts (rowid, workspace_id, id, first_name, last_name, email, company_name)
    VALUES (new.rowid, new.workspace_id, new.id, new.first_name, new.last_name, new.email, new.company_name);
END;
CREATE TRIGGER leads_fts_delete AFTER DELETE ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, workspace_id, id, first_name, last_name, email, company_name)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.first_name, old.last_name, old.email, old.company_name);
END;
CREATE TRIGGER leads_fts_update AFTER UPDATE ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, workspace_id, id, first_name, last_name, email, company_name)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.first_name, old.last_name, old.email, old.company_name);
    INSERT INTO leads_fts (rowid, workspace_id, id, first_name, last_name, email, company_name)
    VALUES (new.rowid, new.workspace_id, new.id, new.first_name, new.last_name, new.email, new.company_name);
END;
