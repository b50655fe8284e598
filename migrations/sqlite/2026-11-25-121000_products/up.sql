-- The product catalogue and its price books.
CREATE TABLE products (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    sku           TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    -- Exact decimals as canonical strings, like companies.annual_revenue.
    unit_price    TEXT NOT NULL,
    currency      TEXT NOT NULL,
    tax_rate      TEXT NOT NULL DEFAULT '0',
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    custom        TEXT NOT NULL DEFAULT '{}',
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    archived_at   TIMESTAMP,
    version       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX products_sku ON products (workspace_id, sku);
CREATE INDEX products_created ON products (workspace_id, created_at, id);
CREATE INDEX products_name ON products (workspace_id, name, id);

CREATE TABLE price_books (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    currency      TEXT NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    is_default    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    archived_at   TIMESTAMP,
    version       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX price_books_created ON price_books (workspace_id, created_at, id);
-- One default among the live price books of a workspace and currency.
CREATE UNIQUE INDEX price_books_is_default ON price_books (workspace_id, currency)
    WHERE is_default AND archived_at IS NULL;

CREATE TABLE price_book_prices (
    workspace_id   TEXT NOT NULL,
    price_book_id  TEXT NOT NULL,
    product_id     TEXT NOT NULL,
    unit_price     TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, price_book_id, product_id),
    FOREIGN KEY (workspace_id, price_book_id) REFERENCES price_books (workspace_id, id) ON DELETE CASCADE,
    FOREIGN KEY (workspace_id, product_id) REFERENCES products (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX price_book_prices_product ON price_book_prices (workspace_id, product_id);

-- Free text (`q`) over sku and name: an FTS5 trigram table kept in sync by triggers, as
-- for contacts and companies (migration `sqlite_free_text`).
CREATE VIRTUAL TABLE products_fts USING fts5(
    workspace_id UNINDEXED, id UNINDEXED, sku, name,
    content='products', content_rowid='rowid', tokenize='trigram'
);
CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (rowid, workspace_id, id, sku, name)
    VALUES (new.rowid, new.workspace_id, new.id, new.sku, new.name);
END;
CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, workspace_id, id, sku, name)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.sku, old.name);
END;
CREATE TRIGGER products_fts_update AFTER UPDATE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, workspace_id, id, sku, name)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.sku, old.name);
    INSERT INTO products_fts (rowid, workspace_id, id, sku, name)
    VALUES (new.rowid, new.workspace_id, new.id, new.sku, new.name);
END;
