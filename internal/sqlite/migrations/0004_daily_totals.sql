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
SELECT e.account_id, date(e.created_at / 1000000, 'unixepoch') AS d,
       SUM(CASE WHEN e.amount < 0 THEN -e.amount ELSE 0 END),
       SUM(CASE WHEN e.amount > 0 THEN e.amount ELSE 0 END),
       SUM(CASE WHEN e.kind = 'top_up' THEN 1 ELSE 0 END),
       (SELECT l.balance_after FROM entries l WHERE l.account_id = e.account_id
         AND date(l.created_at / 1000000, 'unixepoch') = date(e.created_at / 1000000, 'unixepoch') ORDER BY l.seq DESC LIMIT 1),
       MIN(e.balance_after)
FROM entries e GROUP BY e.account_id, d;
