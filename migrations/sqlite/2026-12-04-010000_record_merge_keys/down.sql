DROP TABLE record_merge_keys;
