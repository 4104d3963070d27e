-- 0015: grant expiry and its warning (PRODUCT.md "Credit grants and
-- holds", Expiry). The expiry worker finds active grants whose expires_at
-- has come (grants_expiry) and expires them through the debit path's lock
-- and plan; the one expiration entry per grant is 0012's unique index.
-- expiring_sent_at is when credit.expiring was written for the grant (0:
-- not yet), set in the transaction that writes the event, so that each
-- grant is warned once (grants_expiring finds those still to warn).
ALTER TABLE grants ADD COLUMN expiring_sent_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX grants_expiry ON grants (expires_at) WHERE status = 'active' AND expires_at > 0;
CREATE INDEX grants_expiring ON grants (expires_at) WHERE status = 'active' AND expires_at > 0 AND expiring_sent_at = 0;

-- What left the balance other than as usage (expirations, voids): the
-- console's daily usage, and its burn rate, count only usage.
ALTER TABLE daily_totals ADD COLUMN removed BIGINT NOT NULL DEFAULT 0;

-- A background worker that runs on one replica at a time holds its named
-- lease here until lease_until (microseconds), renewing it every pass.
CREATE TABLE worker_leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
