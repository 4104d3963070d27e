-- 0006, SQLite part (after the shared one): backfill top_up_credits.
UPDATE daily_totals SET top_up_credits = t.n
FROM (SELECT account_id, date(created_at / 1000000, 'unixepoch') AS d, SUM(amount) AS n
      FROM entries WHERE top_up_id IS NOT NULL AND kind = 'top_up' GROUP BY account_id, d) t
WHERE t.account_id = daily_totals.account_id AND t.d = daily_totals.day;
