-- SQLite's FTS5 trigram tables for free text; PostgreSQL already has its trigram indexes
-- (migration `free_text_index`), so this side only keeps the two histories aligned.
SELECT 1;
