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

-- Free text (`q`) over the columns crm_db::query's `text_document` joins for leads
-- (see migration `free_text_index`).
CREATE INDEX leads_text_trgm ON leads USING gin ((
    coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '')
    || ' ' || coalesce(company_name, '')
) public.gin_trgm_ops);
