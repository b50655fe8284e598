-- SQLite writers hold the database, so their events are numbered as they are written and
-- never pending (see the PostgreSQL migration of the same name); the index keeps the two
-- schemas alike and stays empty.
CREATE INDEX events_pending ON events (workspace_id) WHERE seq < 0;
