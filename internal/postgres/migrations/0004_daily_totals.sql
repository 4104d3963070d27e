-- Daily totals per account, kept up to date in the transaction of every
-- balance change, so that charts and previews never scan a busy account's
-- entries. Amounts in micros; usage is positive.
CREATE TABLE daily_totals (
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    day             TEXT NOT NULL,
    usage           BIGINT NOT NULL DEFAULT 0,
    credits         BIGINT NOT NULL DEFAULT 0,
    top_ups         INTEGER NOT NULL DEFAULT 0,
    closing_balance BIGINT NOT NULL,
    min_balance     BIGINT NOT NULL,
    PRIMARY KEY (account_id, day)
);

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
