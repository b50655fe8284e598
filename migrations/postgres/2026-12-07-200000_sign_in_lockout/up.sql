-- Password sign-in lockout: failed attempts in a row since the last success, and the
-- time until which password sign-in is refused.
ALTER TABLE users ADD COLUMN failed_sign_ins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until TIMESTAMP;
