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

-- Free text (`q`) over sku and name: a trigram index on the expression the query writes
-- (crm_db::query, `text_document`), as for contacts and companies.
CREATE INDEX products_text_trgm ON products USING gin ((
    coalesce(sku, '') || ' ' || coalesce(name, '')
) public.gin_trgm_ops);
