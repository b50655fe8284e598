-- The pipeline board's running totals, as deltas (see the PostgreSQL migration of the same
-- name). `total_micros` is an integer here, as the sums of `deals.amount_micros` are.
CREATE TABLE deal_board_deltas (
    workspace_id  TEXT NOT NULL,
    pipeline_id   TEXT NOT NULL,
    stage_id      TEXT NOT NULL,
    currency      TEXT NOT NULL,
    deal_count    BIGINT NOT NULL,
    total_micros  BIGINT NOT NULL
);
CREATE INDEX deal_board_deltas_pipeline ON deal_board_deltas (workspace_id, pipeline_id);

CREATE TRIGGER deals_board_insert AFTER INSERT ON deals WHEN NEW.archived_at IS NULL
BEGIN
    INSERT INTO deal_board_deltas VALUES (NEW.workspace_id, NEW.pipeline_id, NEW.stage_id,
        COALESCE(NEW.currency, ''), 1, COALESCE(NEW.amount_micros, 0));
END;
CREATE TRIGGER deals_board_delete AFTER DELETE ON deals WHEN OLD.archived_at IS NULL
BEGIN
    INSERT INTO deal_board_deltas VALUES (OLD.workspace_id, OLD.pipeline_id, OLD.stage_id,
        COALESCE(OLD.currency, ''), -1, -COALESCE(OLD.amount_micros, 0));
END;
CREATE TRIGGER deals_board_update AFTER UPDATE ON deals
    WHEN OLD.pipeline_id IS NOT NEW.pipeline_id
        OR OLD.stage_id IS NOT NEW.stage_id
        OR OLD.currency IS NOT NEW.currency
        OR OLD.amount_micros IS NOT NEW.amount_micros
        OR (OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL)
BEGIN
    INSERT INTO deal_board_deltas SELECT OLD.workspace_id, OLD.pipeline_id, OLD.stage_id,
        COALESCE(OLD.currency, ''), -1, -COALESCE(OLD.amount_micros, 0)
        WHERE OLD.archived_at IS NULL;
    INSERT INTO deal_board_deltas SELECT NEW.workspace_id, NEW.pipeline_id, NEW.stage_id,
        COALESCE(NEW.currency, ''), 1, COALESCE(NEW.amount_micros, 0)
        WHERE NEW.archived_at IS NULL;
END;

INSERT INTO deal_board_deltas
SELECT workspace_id, pipeline_id, stage_id, COALESCE(currency, ''), COUNT(*), COALESCE(SUM(amount_micros), 0)
FROM deals WHERE archived_at IS NULL GROUP BY 1, 2, 3, 4;
