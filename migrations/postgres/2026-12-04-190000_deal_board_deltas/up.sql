-- The pipeline board's running totals, as deltas: triggers on `deals` append +1/-1 rows
-- (count and amount) per stage and currency in the writing transaction, so an unfiltered
-- board sums a few rows instead of every live deal of the pipeline. Append-only, so that
-- concurrent deal writes never wait on a shared totals row; `repo::deals::compact_board`
-- folds a pipeline's deltas into one row per cell when they pile up. No foreign keys: a
-- cascading delete of deals appends its deltas while their parents go away.
CREATE TABLE deal_board_deltas (
    workspace_id  TEXT NOT NULL,
    pipeline_id   TEXT NOT NULL,
    stage_id      TEXT NOT NULL,
    -- '' for deals without a currency.
    currency      TEXT NOT NULL,
    deal_count    BIGINT NOT NULL,
    total_micros  NUMERIC NOT NULL
);
CREATE INDEX deal_board_deltas_pipeline ON deal_board_deltas (workspace_id, pipeline_id);

CREATE FUNCTION deal_board_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.archived_at IS NULL THEN
        INSERT INTO deal_board_deltas VALUES (OLD.workspace_id, OLD.pipeline_id, OLD.stage_id,
            COALESCE(OLD.currency, ''), -1, -COALESCE(OLD.amount_micros, 0));
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.archived_at IS NULL THEN
        INSERT INTO deal_board_deltas VALUES (NEW.workspace_id, NEW.pipeline_id, NEW.stage_id,
            COALESCE(NEW.currency, ''), 1, COALESCE(NEW.amount_micros, 0));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deals_board_insert AFTER INSERT ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_board_delta();
CREATE TRIGGER deals_board_delete AFTER DELETE ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_board_delta();
CREATE TRIGGER deals_board_update AFTER UPDATE ON deals
    FOR EACH ROW WHEN (OLD.pipeline_id IS DISTINCT FROM NEW.pipeline_id
        OR OLD.stage_id IS DISTINCT FROM NEW.stage_id
        OR OLD.currency IS DISTINCT FROM NEW.currency
        OR OLD.amount_micros IS DISTINCT FROM NEW.amount_micros
        OR (OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL))
    EXECUTE FUNCTION deal_board_delta();

INSERT INTO deal_board_deltas
SELECT workspace_id, pipeline_id, stage_id, COALESCE(currency, ''), COUNT(*), COALESCE(SUM(amount_micros), 0)
FROM deals WHERE archived_at IS NULL GROUP BY 1, 2, 3, 4;
