-- The forecast's running totals, as deltas (see the PostgreSQL migration of the same
-- name). `total_micros` is an integer here, as the sums of `deals.amount_micros` are.
CREATE TABLE deal_forecast_deltas (
    workspace_id  TEXT NOT NULL,
    currency      TEXT NOT NULL,
    owner_id      TEXT,
    pipeline_id   TEXT NOT NULL,
    stage_id      TEXT NOT NULL,
    open_month    TEXT,
    closed_month  TEXT,
    deal_count    BIGINT NOT NULL,
    total_micros  BIGINT NOT NULL,
    folded        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX deal_forecast_deltas_currency ON deal_forecast_deltas (workspace_id, currency);

CREATE TRIGGER deals_forecast_insert AFTER INSERT ON deals
    WHEN NEW.archived_at IS NULL AND NEW.currency IS NOT NULL
BEGIN
    INSERT INTO deal_forecast_deltas (workspace_id, currency, owner_id, pipeline_id, stage_id,
        open_month, closed_month, deal_count, total_micros)
    VALUES (NEW.workspace_id, NEW.currency, NEW.owner_id, NEW.pipeline_id, NEW.stage_id,
        SUBSTR(NEW.expected_close_date, 1, 7), SUBSTR(CAST(NEW.closed_at AS TEXT), 1, 7),
        1, COALESCE(NEW.amount_micros, 0));
END;
CREATE TRIGGER deals_forecast_delete AFTER DELETE ON deals
    WHEN OLD.archived_at IS NULL AND OLD.currency IS NOT NULL
BEGIN
    INSERT INTO deal_forecast_deltas (workspace_id, currency, owner_id, pipeline_id, stage_id,
        open_month, closed_month, deal_count, total_micros)
    VALUES (OLD.workspace_id, OLD.currency, OLD.owner_id, OLD.pipeline_id, OLD.stage_id,
        SUBSTR(OLD.expected_close_date, 1, 7), SUBSTR(CAST(OLD.closed_at AS TEXT), 1, 7),
        -1, -COALESCE(OLD.amount_micros, 0));
END;
CREATE TRIGGER deals_forecast_update AFTER UPDATE ON deals
    WHEN OLD.currency IS NOT NEW.currency
        OR OLD.owner_id IS NOT NEW.owner_id
        OR OLD.pipeline_id IS NOT NEW.pipeline_id
        OR OLD.stage_id IS NOT NEW.stage_id
        OR OLD.expected_close_date IS NOT NEW.expected_close_date
        OR OLD.closed_at IS NOT NEW.closed_at
        OR OLD.amount_micros IS NOT NEW.amount_micros
        OR (OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL)
BEGIN
    INSERT INTO deal_forecast_deltas (workspace_id, currency, owner_id, pipeline_id, stage_id,
        open_month, closed_month, deal_count, total_micros)
    SELECT OLD.workspace_id, OLD.currency, OLD.owner_id, OLD.pipeline_id, OLD.stage_id,
        SUBSTR(OLD.expected_close_date, 1, 7), SUBSTR(CAST(OLD.closed_at AS TEXT), 1, 7),
        -1, -COALESCE(OLD.amount_micros, 0)
    WHERE OLD.archived_at IS NULL AND OLD.currency IS NOT NULL;
    INSERT INTO deal_forecast_deltas (workspace_id, currency, owner_id, pipeline_id, stage_id,
        open_month, closed_month, deal_count, total_micros)
    SELECT NEW.workspace_id, NEW.currency, NEW.owner_id, NEW.pipeline_id, NEW.stage_id,
        SUBSTR(NEW.expected_close_date, 1, 7), SUBSTR(CAST(NEW.closed_at AS TEXT), 1, 7),
        1, COALESCE(NEW.amount_micros, 0)
    WHERE NEW.archived_at IS NULL AND NEW.currency IS NOT NULL;
END;

INSERT INTO deal_forecast_deltas
SELECT workspace_id, currency, owner_id, pipeline_id, stage_id, SUBSTR(expected_close_date, 1, 7),
    SUBSTR(CAST(closed_at AS TEXT), 1, 7), COUNT(*), COALESCE(SUM(amount_micros), 0), TRUE
FROM deals WHERE archived_at IS NULL AND currency IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7;
