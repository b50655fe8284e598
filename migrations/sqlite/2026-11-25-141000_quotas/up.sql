-- Sales quotas: the amount a user or a team should close in a month or a quarter.
CREATE TABLE quotas (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    -- Exactly one of user_id and team_id (checked by the API).
    user_id       TEXT,
    team_id       TEXT,
    period        TEXT NOT NULL,
    -- The first day of the month or quarter, YYYY-MM-DD like deals.expected_close_date.
    period_start  TEXT NOT NULL,
    -- The exact decimal as the API shows it.
    amount        TEXT NOT NULL,
    currency      TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    archived_at   TIMESTAMP,
    version       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
-- One quota per user or team, period and currency (archived ones included, like skus).
CREATE UNIQUE INDEX quotas_target ON quotas (
    workspace_id, COALESCE(user_id, ''), COALESCE(team_id, ''), period, period_start, currency
);
CREATE INDEX quotas_created ON quotas (workspace_id, created_at, id);
-- The forecast reads the quotas of a period kind, currency and date range.
CREATE INDEX quotas_period ON quotas (workspace_id, period, currency, period_start);
