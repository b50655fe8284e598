-- A deal's timeline pages its stage changes by (changed_at, id).
CREATE INDEX deal_stage_changes_timeline ON deal_stage_changes (workspace_id, deal_id, changed_at, id);
