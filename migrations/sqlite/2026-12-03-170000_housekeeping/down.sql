DROP INDEX webhook_deliveries_finished;
DROP INDEX idempotency_keys_created;
