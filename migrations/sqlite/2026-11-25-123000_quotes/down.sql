DROP TABLE quote_lines;
DROP TABLE quotes;
DROP TABLE quote_counters;
