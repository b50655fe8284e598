DROP TRIGGER activities_fts_update;
DROP TRIGGER activities_fts_delete;
DROP TRIGGER activities_fts_insert;
DROP TABLE activities_fts;
DROP INDEX contact_lifecycle_changes_timeline;
DROP TABLE activity_links;
DROP TABLE activities;
