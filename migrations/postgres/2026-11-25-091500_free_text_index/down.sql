-- The extension stays: other schemas of the database may use it.
DROP INDEX companies_name_trgm;
DROP INDEX companies_text_trgm;
DROP INDEX contacts_text_trgm;
