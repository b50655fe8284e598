DROP INDEX events_pending;
DROP SEQUENCE event_pending;
