-- Secret rotation: for 24 hours after rotate_secret, deliveries are signed
-- with the new secret and the one it replaced (previous_until, micros; 0
-- when no rotation is in progress).
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_endpoints ADD COLUMN previous_until BIGINT NOT NULL DEFAULT 0;
