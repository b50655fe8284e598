ALTER TABLE users DROP COLUMN locked_until;
ALTER TABLE users DROP COLUMN failed_sign_ins;
