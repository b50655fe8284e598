DROP INDEX activities_text_trgm;
DROP INDEX contact_lifecycle_changes_timeline;
DROP TABLE activity_links;
DROP TABLE activities;
