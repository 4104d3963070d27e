-- 0020: usage idempotency keys are remembered for
-- TOPUP_IDEMPOTENCY_RETENTION, every other key for ever (PRODUCT.md
-- "Conventions"). The retention worker deletes the usage rows older than
-- that, oldest first, through this index. It is partial, so that keys kept
-- for ever (credits, captures, voids, top-ups) are never walked again, and
-- keyed by created_at, which only grows: the debit path adds each usage
-- row at the index's right-hand end, never at a random place as a second
-- index on the key would. The WHERE clause must stay word for word what
-- sqlstore.usageScopes says, or the planners no longer use it.
CREATE INDEX idempotency_usage_age ON idempotency (created_at) WHERE scope LIKE '%/usage';
