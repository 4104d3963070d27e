-- 0022: a usage call's idempotency key and first response are kept in the
-- entry it made (ledger.KeptInEntry), not in an idempotency row: the entry
-- holds the request's meaning and most of its answer, and answer keeps the
-- rest ("reason|top_up_id", "" for a spendable debit that triggered no
-- top-up). A debit then writes its entry and one index entry beside the
-- account's others, instead of a second row at a random place of the
-- idempotency table and its age index (docs/scale.md has the figures).
--
-- The index is not unique: a key may be used again once it is older than
-- TOPUP_IDEMPOTENCY_RETENTION, and the lookup takes the newest entry
-- younger than that. Its WHERE clause is sqlstore.UsageKeyWhere. Usage rows
-- written before this migration stay in the idempotency table, are still
-- looked up there, and are pruned by the retention worker as before.
ALTER TABLE entries ADD COLUMN answer TEXT NOT NULL DEFAULT '';
CREATE INDEX entries_usage_key ON entries (account_id, idempotency_key) WHERE kind = 'usage' AND hold_id IS NULL;
