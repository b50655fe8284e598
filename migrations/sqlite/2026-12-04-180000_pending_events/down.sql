DROP INDEX events_pending;
