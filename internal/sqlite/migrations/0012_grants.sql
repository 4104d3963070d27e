-- 0012, SQLite part (after the shared one): entries gain grant_id (an
-- expiration's or void's grant, the grant a credit made), hold_id and
-- funding (ledger.EncodeFunding; '' on positive entries), and the kinds of
-- the grants contract. SQLite cannot change a CHECK in place: the table is
-- rebuilt, WITHOUT ROWID as before, with its triggers and indexes.
CREATE TABLE entries_new (
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    seq             BIGINT NOT NULL,
    id              TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('usage', 'credit', 'top_up', 'refund', 'refund_reversal', 'dispute', 'dispute_reversal', 'expiration', 'void', 'adjustment')),
    amount          BIGINT NOT NULL,
    balance_after   BIGINT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL DEFAULT '',
    top_up_id       TEXT,
    created_at      BIGINT NOT NULL,
    grant_id        TEXT,
    hold_id         TEXT,
    funding         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;
INSERT INTO entries_new (account_id, seq, id, kind, amount, balance_after, description, subject, idempotency_key, top_up_id, created_at)
SELECT account_id, seq, id, kind, amount, balance_after, description, subject, idempotency_key, top_up_id, created_at FROM entries;
DROP TABLE entries;
ALTER TABLE entries_new RENAME TO entries;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE UNIQUE INDEX entries_one_credit_per_top_up ON entries (top_up_id) WHERE top_up_id IS NOT NULL;
-- A grant expires once and is voided once, whatever crashes.
CREATE UNIQUE INDEX entries_one_expiration_per_grant ON entries (grant_id) WHERE kind = 'expiration';
CREATE UNIQUE INDEX entries_one_void_per_grant ON entries (grant_id) WHERE kind = 'void';
