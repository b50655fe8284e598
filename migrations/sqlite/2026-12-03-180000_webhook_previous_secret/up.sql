-- A rotated secret keeps signing deliveries (next to the new one) until it expires, so
-- receivers can switch over without rejecting a delivery.
ALTER TABLE webhooks ADD COLUMN previous_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at TIMESTAMP;
