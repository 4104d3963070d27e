-- 0012, shared part: credit grants (PRODUCT.md "Credit grants and holds").
-- Every amount that adds credit is a grant; usage takes money from the
-- active grants in spending order, and what no grant covers is the
-- account's overdraft, paid back first by the next grant. Each database's
-- own 0012_grants.sql then gives entries their grant, hold and funding.
--
-- remaining is what is left of amount; paid_back is what the grant paid of
-- the overdraft when it was made, so that verify can prove remaining =
-- amount - paid_back - what funding lines took from it. expires_at 0 means
-- never. A grant that is not active has nothing left.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    category   TEXT NOT NULL CHECK (category IN ('paid', 'promotional')),
    source     TEXT NOT NULL CHECK (source IN ('top_up', 'credit', 'adjustment', 'dispute_reversal', 'migration')),
    source_id  TEXT NOT NULL DEFAULT '',
    amount     BIGINT NOT NULL CHECK (amount > 0),
    remaining  BIGINT NOT NULL,
    paid_back  BIGINT NOT NULL DEFAULT 0 CHECK (paid_back >= 0 AND paid_back <= amount),
    priority   INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 100),
    expires_at BIGINT NOT NULL DEFAULT 0,
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'used', 'expired', 'voided')),
    created_at BIGINT NOT NULL,
    CHECK (remaining >= 0 AND remaining <= amount),
    CHECK (status = 'active' OR remaining = 0)
);
-- The debit path loads an account's active grants once per group.
CREATE INDEX grants_active ON grants (account_id) WHERE status = 'active';
-- GET …/grants lists an account's grants newest first.
CREATE INDEX grants_account ON grants (account_id, id);

-- What usage took beyond every grant, not yet paid back: balance = the
-- active grants' remaining - overdraft.
ALTER TABLE accounts ADD COLUMN overdraft BIGINT NOT NULL DEFAULT 0;

-- The upgrade in place: each account's balance becomes one paid grant that
-- never expires (source migration, priority 50), made when the balance last
-- changed (its id, grt_00 and the account's, sorts before every grant made
-- since); a negative balance becomes overdraft.
INSERT INTO grants (id, account_id, category, source, source_id, amount, remaining, paid_back, priority, expires_at, status, created_at)
SELECT 'grt_00' || id, id, 'paid', 'migration', '', balance, balance, 0, 50, 0, 'active', updated_at FROM accounts WHERE balance > 0;
UPDATE accounts SET overdraft = -balance WHERE balance < 0;
