-- Quotes (proposals) with their lines, numbered per workspace without gaps.

-- The last quote number handed out in each workspace; advanced in the transaction that
-- inserts the quote, so a rolled-back insert consumes no number.
CREATE TABLE quote_counters (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    last_number   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id)
);

CREATE TABLE quotes (
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    number          BIGINT NOT NULL,
    deal_id         TEXT,
    status          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    price_book_id   TEXT,
    -- YYYY-MM-DD, compared as text like custom date fields.
    valid_until     TEXT,
    -- Exact decimals at the currency's minor unit.
    subtotal        TEXT NOT NULL,
    discount_total  TEXT NOT NULL,
    tax_total       TEXT NOT NULL,
    total           TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    archived_at     TIMESTAMP,
    version         INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX quotes_number ON quotes (workspace_id, number);
CREATE INDEX quotes_created ON quotes (workspace_id, created_at, id);
CREATE INDEX quotes_deal ON quotes (workspace_id, deal_id);

CREATE TABLE quote_lines (
    workspace_id      TEXT NOT NULL,
    quote_id          TEXT NOT NULL,
    position          INTEGER NOT NULL,
    product_id        TEXT,
    description       TEXT,
    quantity          TEXT NOT NULL,
    unit_price        TEXT NOT NULL,
    discount_percent  TEXT NOT NULL,
    tax_rate          TEXT NOT NULL,
    gross             TEXT NOT NULL,
    discount          TEXT NOT NULL,
    net               TEXT NOT NULL,
    tax               TEXT NOT NULL,
    total             TEXT NOT NULL,
    PRIMARY KEY (workspace_id, quote_id, position),
    FOREIGN KEY (workspace_id, quote_id) REFERENCES quotes (workspace_id, id) ON DELETE CASCADE
);
