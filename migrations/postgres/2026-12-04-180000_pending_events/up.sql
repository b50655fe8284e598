-- Events of small transactions are written *pending* on PostgreSQL, numbered
-- `seq = -nextval('event_pending')`, so concurrent writers of a workspace never queue on its
-- `event_sequences` row through their commits. `repo::events::settle` later gives them their
-- place in the feed under that row's lock, in the order they were drawn; the feed, the audit
-- log and webhooks only ever read numbered events (seq > 0).
CREATE SEQUENCE event_pending;
-- The workspaces that have pending events; empty once every event is numbered.
CREATE INDEX events_pending ON events (workspace_id) WHERE seq < 0;
