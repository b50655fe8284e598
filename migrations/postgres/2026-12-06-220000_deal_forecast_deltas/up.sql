-- The forecast's running totals, as deltas (the same scheme as `deal_board_deltas`):
-- triggers on `deals` append +1/-1 rows (count and amount) per currency, owner, pipeline,
-- stage and month in the writing transaction, so a forecast over whole months sums a few
-- rows per cell instead of every live deal. `open_month` is the month of the expected close
-- date and `closed_month` that of `closed_at`, both cut from their text as the forecast's
-- query over deals cuts them; which one counts is the stage's kind when the forecast reads.
-- Deals without a currency are never in a forecast and add nothing. Appended rows are
-- `folded = FALSE`; `repo::quotas::forecast` folds a workspace's rows of a currency into
-- one per cell (`folded = TRUE`) when the fresh ones outnumber them.
CREATE TABLE deal_forecast_deltas (
    workspace_id  TEXT NOT NULL,
    currency      TEXT NOT NULL,
    owner_id      TEXT,
    pipeline_id   TEXT NOT NULL,
    stage_id      TEXT NOT NULL,
    open_month    TEXT,
    closed_month  TEXT,
    deal_count    BIGINT NOT NULL,
    total_micros  NUMERIC NOT NULL,
    folded        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX deal_forecast_deltas_currency ON deal_forecast_deltas (workspace_id, currency);

CREATE FUNCTION deal_forecast_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.archived_at IS NULL AND OLD.currency IS NOT NULL THEN
        INSERT INTO deal_forecast_deltas (workspace_id, currency, owner_id, pipeline_id,
            stage_id, open_month, closed_month, deal_count, total_micros)
        VALUES (OLD.workspace_id, OLD.currency, OLD.owner_id, OLD.pipeline_id, OLD.stage_id,
            SUBSTR(OLD.expected_close_date, 1, 7), SUBSTR(CAST(OLD.closed_at AS TEXT), 1, 7),
            -1, -COALESCE(OLD.amount_micros, 0));
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.archived_at IS NULL AND NEW.currency IS NOT NULL THEN
        INSERT INTO deal_forecast_deltas (workspace_id, currency, owner_id, pipeline_id,
            stage_id, open_month, closed_month, deal_count, total_micros)
        VALUES (NEW.workspace_id, NEW.currency, NEW.owner_id, NEW.pipeline_id, NEW.stage_id,
            SUBSTR(NEW.expected_close_date, 1, 7), SUBSTR(CAST(NEW.closed_at AS TEXT), 1, 7),
            1, COALESCE(NEW.amount_micros, 0));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deals_forecast_insert AFTER INSERT ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_forecast_delta();
CREATE TRIGGER deals_forecast_delete AFTER DELETE ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_forecast_delta();
CREATE TRIGGER deals_forecast_update AFTER UPDATE ON deals
    FOR EACH ROW WHEN (OLD.currency IS DISTINCT FROM NEW.currency
        OR OLD.owner_id IS DISTINCT FROM NEW.owner_id
        OR OLD.pipeline_id IS DISTINCT FROM NEW.pipeline_id
        OR OLD.stage_id IS DISTINCT FROM NEW.stage_id
        OR OLD.expected_close_date IS DISTINCT FROM NEW.expected_close_date
        OR OLD.closed_at IS DISTINCT FROM NEW.closed_at
        OR OLD.amount_micros IS DISTINCT FROM NEW.amount_micros
        OR (OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL))
    EXECUTE FUNCTION deal_forecast_delta();

INSERT INTO deal_forecast_deltas
SELECT workspace_id, currency, owner_id, pipeline_id, stage_id, SUBSTR(expected_close_date, 1, 7),
    SUBSTR(CAST(closed_at AS TEXT), 1, 7), COUNT(*), COALESCE(SUM(amount_micros), 0), TRUE
FROM deals WHERE archived_at IS NULL AND currency IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7;
