-- PostgreSQL only (see the migration of the same name there): SQLite keeps no
-- per-expression histogram to widen. Kept so that both databases list the same migrations.
SELECT 1;
