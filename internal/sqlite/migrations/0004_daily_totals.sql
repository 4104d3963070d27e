-- 0004, SQLite part (after the shared one): the day of a microsecond time
-- is date(us / 1000000, 'unixepoch').
-- Backfill from the ledger written before this migration.
INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, closing_balance, min_balance)
SELECT e.account_id, date(e.created_at / 1000000, 'unixepoch') AS d,
       SUM(CASE WHEN e.amount < 0 THEN -e.amount ELSE 0 END),
       SUM(CASE WHEN e.amount > 0 THEN e.amount ELSE 0 END),
       SUM(CASE WHEN e.kind = 'top_up' THEN 1 ELSE 0 END),
       (SELECT l.balance_after FROM entries l WHERE l.account_id = e.account_id
         AND date(l.created_at / 1000000, 'unixepoch') = date(e.created_at / 1000000, 'unixepoch') ORDER BY l.seq DESC LIMIT 1),
       MIN(e.balance_after)
FROM entries e GROUP BY e.account_id, d;
