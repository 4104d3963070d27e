-- 0004, PostgreSQL part (after the shared one): the day of a microsecond
-- time is to_char(to_timestamp(us / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD').
-- Backfill from the ledger written before this migration.
INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, closing_balance, min_balance)
SELECT account_id, d,
       SUM(CASE WHEN amount < 0 THEN -amount ELSE 0 END),
       SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END),
       SUM(CASE WHEN kind = 'top_up' THEN 1 ELSE 0 END),
       (ARRAY_AGG(balance_after ORDER BY seq DESC))[1],
       MIN(balance_after)
FROM (SELECT *, to_char(to_timestamp(created_at / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d FROM entries) e
GROUP BY account_id, d;
