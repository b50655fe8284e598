DROP TABLE record_merges;
