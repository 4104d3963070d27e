-- 0001, shared part: the tables both databases declare alike. The entries
-- and idempotency tables (WITHOUT ROWID on SQLite) and the triggers that
-- keep entries immutable are each database's own 0001_ledger.sql, which runs
-- right after this one, in the same transaction and version.
-- Accounts keep their balance in their row; it changes only in the
-- transaction that inserts the entry explaining the change.
CREATE TABLE accounts (
    id           TEXT PRIMARY KEY,
    email        TEXT NOT NULL,
    currency     TEXT NOT NULL,
    balance      BIGINT NOT NULL DEFAULT 0,
    last_seq     BIGINT NOT NULL DEFAULT 0,
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    api_key_hash TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
