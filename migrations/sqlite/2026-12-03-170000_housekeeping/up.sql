-- Housekeeping removes idempotency keys past their 24 hours and finished webhook
-- deliveries past their retention, a workspace at a time, oldest first.
CREATE INDEX idempotency_keys_created ON idempotency_keys (workspace_id, created_at);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (workspace_id, updated_at) WHERE status <> 'pending';
