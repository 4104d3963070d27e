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
