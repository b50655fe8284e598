CREATE TABLE pipelines (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    is_default    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    archived_at   TIMESTAMP,
    version       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
-- Exactly one default pipeline per workspace.
CREATE UNIQUE INDEX pipelines_default ON pipelines (workspace_id) WHERE is_default;
CREATE INDEX pipelines_created ON pipelines (workspace_id, created_at, id);

CREATE TABLE pipeline_stages (
    workspace_id  TEXT NOT NULL,
    id            TEXT NOT NULL,
    pipeline_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    position      INTEGER NOT NULL,
    probability   INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    archived_at   TIMESTAMP,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, pipeline_id) REFERENCES pipelines (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX pipeline_stages_pipeline ON pipeline_stages (workspace_id, pipeline_id, position);

-- `amount` is the exact decimal as the API shows it; `amount_micros` the same amount in
-- millionths, so that sums are exact on both databases (the board).
CREATE TABLE deals (
    workspace_id         TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                   TEXT NOT NULL,
    name                 TEXT NOT NULL,
    amount               TEXT,
    amount_micros        BIGINT,
    currency             TEXT,
    pipeline_id          TEXT NOT NULL,
    stage_id             TEXT NOT NULL,
    stage_changed_at     TIMESTAMP NOT NULL,
    expected_close_date  TEXT,
    owner_id             TEXT,
    company_id           TEXT,
    lost_reason          TEXT,
    closed_at            TIMESTAMP,
    external_id          TEXT,
    custom               TEXT NOT NULL DEFAULT '{}',
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    archived_at          TIMESTAMP,
    version              INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, pipeline_id) REFERENCES pipelines (workspace_id, id),
    FOREIGN KEY (workspace_id, stage_id) REFERENCES pipeline_stages (workspace_id, id)
);
CREATE UNIQUE INDEX deals_external_id ON deals (workspace_id, external_id);
CREATE INDEX deals_created ON deals (workspace_id, created_at, id);
CREATE INDEX deals_updated ON deals (workspace_id, updated_at, id);
CREATE INDEX deals_name ON deals (workspace_id, name, id);
CREATE INDEX deals_owner ON deals (workspace_id, owner_id);
CREATE INDEX deals_company ON deals (workspace_id, company_id);
CREATE INDEX deals_close ON deals (workspace_id, expected_close_date, id);
CREATE INDEX deals_stage ON deals (workspace_id, stage_id);
-- The board: one index-only scan of a pipeline's live deals covers the aggregate and its
-- owner and close-date filters.
CREATE INDEX deals_board ON deals (workspace_id, pipeline_id, stage_id, currency, amount_micros, owner_id, expected_close_date)
    WHERE archived_at IS NULL;

CREATE TABLE deal_stage_changes (
    workspace_id           TEXT NOT NULL,
    id                     TEXT NOT NULL,
    deal_id                TEXT NOT NULL,
    from_stage_id          TEXT,
    to_stage_id            TEXT NOT NULL,
    changed_at             TIMESTAMP NOT NULL,
    changed_by             TEXT,
    time_in_stage_seconds  BIGINT,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, deal_id) REFERENCES deals (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX deal_stage_changes_deal ON deal_stage_changes (workspace_id, deal_id, id);

CREATE TABLE deal_contacts (
    workspace_id  TEXT NOT NULL,
    deal_id       TEXT NOT NULL,
    contact_id    TEXT NOT NULL,
    role          TEXT,
    is_primary    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, deal_id, contact_id),
    FOREIGN KEY (workspace_id, deal_id) REFERENCES deals (workspace_id, id) ON DELETE CASCADE,
    FOREIGN KEY (workspace_id, contact_id) REFERENCES contacts (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX deal_contacts_contact ON deal_contacts (workspace_id, contact_id, deal_id);

-- Workspaces that existed before pipelines get the default sales pipeline
-- (crm_domain::deals::DEFAULT_STAGES).
INSERT INTO pipelines (workspace_id, id, name, is_default, created_at, updated_at, version)
SELECT w.id, lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))), 'Sales', TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1 FROM workspaces w;
INSERT INTO pipeline_stages (workspace_id, id, pipeline_id, name, position, probability, kind, created_at, updated_at)
SELECT p.workspace_id, lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))), p.id, s.column1, s.column2, s.column3, s.column4, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
FROM pipelines p CROSS JOIN (VALUES
    ('Qualification', 0, 10, 'open'),
    ('Needs analysis', 1, 25, 'open'),
    ('Proposal', 2, 50, 'open'),
    ('Negotiation', 3, 75, 'open'),
    ('Won', 4, 100, 'won'),
    ('Lost', 5, 0, 'lost')
) AS s;

-- Free text on deal names: an FTS5 trigram table, as for contacts and companies.
CREATE VIRTUAL TABLE deals_fts USING fts5(
    workspace_id UNINDEXED, id UNINDEXED, name,
    content='deals', content_rowid='rowid', tokenize='trigram'
);
CREATE TRIGGER deals_fts_insert AFTER INSERT ON deals BEGIN
    INSERT INTO deals_fts (rowid, workspace_id, id, name)
    VALUES (new.rowid, new.workspace_id, new.id, new.name);
END;
CREATE TRIGGER deals_fts_delete AFTER DELETE ON deals BEGIN
    INSERT INTO deals_fts (deals_fts, rowid, workspace_id, id, name)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.name);
END;
CREATE TRIGGER deals_fts_update AFTER UPDATE OF name ON deals BEGIN
    INSERT INTO deals_fts (deals_fts, rowid, workspace_id, id, name)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.name);
    INSERT INTO deals_fts (rowid, workspace_id, id, name)
    VALUES (new.rowid, new.workspace_id, new.id, new.name);
END;
