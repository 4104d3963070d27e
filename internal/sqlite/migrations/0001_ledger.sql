-- 0001, SQLite part (after the shared one): the entries and idempotency
-- tables WITHOUT ROWID, and triggers that refuse to change an entry.
-- Entries are immutable: the triggers below refuse any update or delete.
CREATE TABLE entries (
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    seq             BIGINT NOT NULL,
    id              TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('usage', 'credit', 'top_up', 'refund', 'adjustment')),
    amount          BIGINT NOT NULL,
    balance_after   BIGINT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL DEFAULT '',
    top_up_id       TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;

-- One row per idempotent request: scope is the account and the kind of
-- call; result is the first response, replayed for the same key.
CREATE TABLE idempotency (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    result       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
