-- A free-text search (`q`) orders its page by a list order and takes the first matches.
-- PostgreSQL chooses between walking that order's index until the page is full and
-- collecting every match through the trigram index first, from how many rows it expects
-- the term to match. It reads that from the histogram of the indexed text: with the
-- default 100 entries, a term that a few percent of the records share (a common last
-- name) may appear in none of them, be estimated at a hundred rows, and make it collect
-- and sort tens of thousands of matches (200 ms at 1M contacts instead of 1 ms). A
-- histogram of 1000 entries (ANALYZE samples 300k rows) estimates such terms within a
-- few percent. Takes effect at the table's next ANALYZE.
ALTER INDEX contacts_text_trgm ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX companies_text_trgm ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX companies_name_trgm ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX deals_text_trgm ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX leads_text_trgm ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX activities_text_trgm ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX products_text_trgm ALTER COLUMN 1 SET STATISTICS 1000;
