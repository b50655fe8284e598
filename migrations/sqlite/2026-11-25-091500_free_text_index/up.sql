-- PostgreSQL gets trigram indexes for free text in this migration; SQLite keeps scanning
-- (LIKE), so its side is empty and only keeps the two histories aligned.
SELECT 1;
