-- turnover is the sum of the sizes of every entry an account ever had. Every
-- total Topup stores for an account is a sum over some of its entries, so
-- bounding the turnover (ledger.MaxTurnover) keeps each of them exact: no
-- budget spend or daily total can overflow into a float (SQLite) or out of
-- bigint's range (PostgreSQL). It is written with the balance, in the same
-- row update.
ALTER TABLE accounts ADD COLUMN turnover BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET turnover = COALESCE((SELECT SUM(ABS(e.amount)) FROM entries e WHERE e.account_id = accounts.id), 0);
