-- Free text (`q`) matches each word as a case-insensitive substring of a record's text
-- columns. Trigram GIN indexes over the same expression the query writes
-- (crm_db::query, `text_document`) let PostgreSQL answer it without scanning the table.
-- pg_trgm goes into `public` once per database; the advisory lock keeps concurrent
-- migrations of several schemas from racing to create it.
SELECT pg_advisory_xact_lock(7220118);
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;

CREATE INDEX contacts_text_trgm ON contacts USING gin ((
    coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '')
    || ' ' || coalesce(additional_emails, '') || ' ' || coalesce(phone, '')
    || ' ' || coalesce(additional_phones, '')
) public.gin_trgm_ops);

CREATE INDEX companies_text_trgm ON companies USING gin ((
    coalesce(name, '') || ' ' || coalesce(domain, '')
) public.gin_trgm_ops);

-- A contact's free text also matches the names of its companies.
CREATE INDEX companies_name_trgm ON companies USING gin ((coalesce(name, '')) public.gin_trgm_ops);
