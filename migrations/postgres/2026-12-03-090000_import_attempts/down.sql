DROP INDEX imports_uploading;
ALTER TABLE imports DROP COLUMN attempts;
