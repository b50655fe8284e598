-- Free text (`q`) on SQLite: FTS5 trigram tables over the text columns the query matches
-- (crm_db::query, `text_columns`), external-content tables keyed by the base rowid, so a
-- word of 3+ characters costs index probes instead of a scan. The trigram tokenizer is
-- case-insensitive, like the LIKE scan it replaces.
CREATE VIRTUAL TABLE contacts_fts USING fts5(
    workspace_id UNINDEXED, id UNINDEXED,
    first_name, last_name, email, additional_emails, phone, additional_phones,
    content='contacts', content_rowid='rowid', tokenize='trigram'
);
CREATE VIRTUAL TABLE companies_fts USING fts5(
    workspace_id UNINDEXED, id UNINDEXED, name, domain,
    content='companies', content_rowid='rowid', tokenize='trigram'
);

CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, workspace_id, id, first_name, last_name, email,
        additional_emails, phone, additional_phones)
    VALUES (new.rowid, new.workspace_id, new.id, new.first_name, new.last_name, new.email,
        new.additional_emails, new.phone, new.additional_phones);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, workspace_id, id, first_name, last_name,
        email, additional_emails, phone, additional_phones)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.first_name, old.last_name,
        old.email, old.additional_emails, old.phone, old.additional_phones);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, workspace_id, id, first_name, last_name,
        email, additional_emails, phone, additional_phones)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.first_name, old.last_name,
        old.email, old.additional_emails, old.phone, old.additional_phones);
    INSERT INTO contacts_fts (rowid, workspace_id, id, first_name, last_name, email,
        additional_emails, phone, additional_phones)
    VALUES (new.rowid, new.workspace_id, new.id, new.first_name, new.last_name, new.email,
        new.additional_emails, new.phone, new.additional_phones);
END;

CREATE TRIGGER companies_fts_insert AFTER INSERT ON companies BEGIN
    INSERT INTO companies_fts (rowid, workspace_id, id, name, domain)
    VALUES (new.rowid, new.workspace_id, new.id, new.name, new.domain);
END;
CREATE TRIGGER companies_fts_delete AFTER DELETE ON companies BEGIN
    INSERT INTO companies_fts (companies_fts, rowid, workspace_id, id, name, domain)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.name, old.domain);
END;
CREATE TRIGGER companies_fts_update AFTER UPDATE ON companies BEGIN
    INSERT INTO companies_fts (companies_fts, rowid, workspace_id, id, name, domain)
    VALUES ('delete', old.rowid, old.workspace_id, old.id, old.name, old.domain);
    INSERT INTO companies_fts (rowid, workspace_id, id, name, domain)
    VALUES (new.rowid, new.workspace_id, new.id, new.name, new.domain);
END;

INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild');
INSERT INTO companies_fts (companies_fts) VALUES ('rebuild');
