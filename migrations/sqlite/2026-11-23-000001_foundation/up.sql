-- Foundation: workspaces, people and access, contacts and companies, custom fields, idempotency.
-- Every table carries workspace_id, and it leads every key and index that queries use.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE users (
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id             TEXT NOT NULL,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    last_login_at  TIMESTAMP,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX users_workspace_email ON users (workspace_id, email);
-- Login names no workspace: it finds the user's workspaces by email.
CREATE INDEX users_email ON users (email);

CREATE TABLE teams (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX teams_workspace_name ON teams (workspace_id, name);

CREATE TABLE team_members (
    workspace_id  TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, team_id, user_id),
    FOREIGN KEY (workspace_id, team_id) REFERENCES teams (workspace_id, id) ON DELETE CASCADE,
    FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX team_members_user ON team_members (workspace_id, user_id);

CREATE TABLE refresh_tokens (
    workspace_id  TEXT NOT NULL,
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    family_id     TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    used_at       TIMESTAMP,
    revoked_at    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (workspace_id, token_hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (workspace_id, family_id);

CREATE TABLE api_keys (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    last_four     TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    last_used_at  TIMESTAMP,
    expires_at    TIMESTAMP,
    revoked_at    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE companies (
    workspace_id          TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                    TEXT NOT NULL,
    name                  TEXT NOT NULL,
    domain                TEXT,
    industry              TEXT,
    size                  TEXT,
    annual_revenue        TEXT,
    currency              TEXT,
    tier                  TEXT,
    region                TEXT,
    address_line1         TEXT,
    address_line2         TEXT,
    address_city          TEXT,
    address_region        TEXT,
    address_postal_code   TEXT,
    address_country       TEXT,
    owner_id              TEXT,
    tags                  TEXT NOT NULL DEFAULT '[]',
    external_id           TEXT,
    custom                TEXT NOT NULL DEFAULT '{}',
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    archived_at           TIMESTAMP,
    version               INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX companies_external_id ON companies (workspace_id, external_id);
CREATE INDEX companies_created ON companies (workspace_id, created_at, id);
CREATE INDEX companies_name ON companies (workspace_id, name, id);
CREATE INDEX companies_domain ON companies (workspace_id, domain);
CREATE INDEX companies_owner ON companies (workspace_id, owner_id);

CREATE TABLE contacts (
    workspace_id                TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                          TEXT NOT NULL,
    first_name                  TEXT,
    last_name                   TEXT,
    email                       TEXT,
    additional_emails           TEXT NOT NULL DEFAULT '[]',
    phone                       TEXT,
    additional_phones           TEXT NOT NULL DEFAULT '[]',
    job_title                   TEXT,
    lifecycle_stage             TEXT NOT NULL,
    lifecycle_stage_changed_at  TIMESTAMP NOT NULL,
    owner_id                    TEXT,
    source                      TEXT,
    tags                        TEXT NOT NULL DEFAULT '[]',
    address_line1               TEXT,
    address_line2               TEXT,
    address_city                TEXT,
    address_region              TEXT,
    address_postal_code         TEXT,
    address_country             TEXT,
    preferred_channel           TEXT,
    consent_email               BOOLEAN NOT NULL DEFAULT FALSE,
    consent_sms                 BOOLEAN NOT NULL DEFAULT FALSE,
    consent_phone               BOOLEAN NOT NULL DEFAULT FALSE,
    do_not_contact              BOOLEAN NOT NULL DEFAULT FALSE,
    external_id                 TEXT,
    custom                      TEXT NOT NULL DEFAULT '{}',
    created_at                  TIMESTAMP NOT NULL,
    updated_at                  TIMESTAMP NOT NULL,
    archived_at                 TIMESTAMP,
    version                     INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX contacts_email ON contacts (workspace_id, email);
CREATE UNIQUE INDEX contacts_external_id ON contacts (workspace_id, external_id);
CREATE INDEX contacts_created ON contacts (workspace_id, created_at, id);
CREATE INDEX contacts_updated ON contacts (workspace_id, updated_at, id);
CREATE INDEX contacts_last_name ON contacts (workspace_id, last_name, id);
CREATE INDEX contacts_owner ON contacts (workspace_id, owner_id);
CREATE INDEX contacts_lifecycle ON contacts (workspace_id, lifecycle_stage);

CREATE TABLE contact_companies (
    workspace_id  TEXT NOT NULL,
    contact_id    TEXT NOT NULL,
    company_id    TEXT NOT NULL,
    role          TEXT,
    is_primary    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, contact_id, company_id),
    FOREIGN KEY (workspace_id, contact_id) REFERENCES contacts (workspace_id, id) ON DELETE CASCADE,
    FOREIGN KEY (workspace_id, company_id) REFERENCES companies (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_companies_company ON contact_companies (workspace_id, company_id, contact_id);

CREATE TABLE contact_lifecycle_changes (
    workspace_id  TEXT NOT NULL,
    id            TEXT NOT NULL,
    contact_id    TEXT NOT NULL,
    from_stage    TEXT,
    to_stage      TEXT NOT NULL,
    changed_at    TIMESTAMP NOT NULL,
    changed_by    TEXT,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, contact_id) REFERENCES contacts (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_lifecycle_changes_contact ON contact_lifecycle_changes (workspace_id, contact_id, changed_at);

CREATE TABLE custom_field_definitions (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    object_type   TEXT NOT NULL,
    name          TEXT NOT NULL,
    label         TEXT NOT NULL,
    field_type    TEXT NOT NULL,
    options       TEXT NOT NULL DEFAULT '[]',
    required      BOOLEAN NOT NULL DEFAULT FALSE,
    description   TEXT,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX custom_field_definitions_name ON custom_field_definitions (workspace_id, object_type, name);

CREATE TABLE idempotency_keys (
    workspace_id      TEXT NOT NULL,
    idempotency_key   TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    response_status   INTEGER,
    response_headers  TEXT,
    response_body     TEXT,
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, idempotency_key)
);
