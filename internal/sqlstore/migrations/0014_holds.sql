-- 0014: holds (PRODUCT.md "Credit grants and holds"): credit reserved for
-- work whose cost is known only at its end, captured as usage, released,
-- or expired once expires_at has passed.
--
-- A hold is active until captured or released; once the time is past its
-- expires_at it is expired whatever status says, and the first transaction
-- that takes its account's lock after that writes status 'expired'.
-- captured is what its capture recorded as usage (entry_id, the entry);
-- idempotency_key and request_hash replay a creation.
CREATE TABLE holds (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    captured        BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'captured', 'released', 'expired')),
    subject         TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    top_up_id       TEXT,
    entry_id        TEXT,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (account_id, idempotency_key),
    CHECK ((status = 'captured') = (entry_id IS NOT NULL)),
    CHECK (captured >= 0 AND captured <= amount AND (status = 'captured' OR captured = 0))
);
-- Counting an account's active holds (held, the limit) reads only them.
CREATE INDEX holds_active ON holds (account_id, expires_at) WHERE status = 'active';
-- GET …/holds lists an account's holds newest first.
CREATE INDEX holds_account ON holds (account_id, id);
-- A hold is captured once, whatever crashes or races.
CREATE UNIQUE INDEX entries_one_capture_per_hold ON entries (hold_id) WHERE hold_id IS NOT NULL;

-- held is what the account's active holds reserve, kept in its row so that
-- the debit path reads it with the lock it takes anyway; held_until is the
-- soonest expires_at among them, or earlier (0: none is active). Once the
-- time reaches held_until the transaction that locks the account counts
-- them again (ledger.AccountState.HeldUntil).
ALTER TABLE accounts ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN held_until BIGINT NOT NULL DEFAULT 0;
