DROP TRIGGER contacts_fts_insert;
DROP TRIGGER contacts_fts_delete;
DROP TRIGGER contacts_fts_update;
DROP TRIGGER companies_fts_insert;
DROP TRIGGER companies_fts_delete;
DROP TRIGGER companies_fts_update;
DROP TABLE contacts_fts;
DROP TABLE companies_fts;
