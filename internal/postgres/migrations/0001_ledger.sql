-- 0001, PostgreSQL part (after the shared one): the entries and idempotency
-- tables, and a trigger function that refuses to change an entry.
-- Entries are immutable: the trigger below refuses any update or delete.
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
);

CREATE FUNCTION entries_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable';
END;
$$;
CREATE TRIGGER entries_no_change BEFORE UPDATE OR DELETE ON entries
FOR EACH ROW EXECUTE FUNCTION entries_immutable();

-- One row per idempotent request: scope is the account and the kind of
-- call; result is the first response, replayed for the same key.
CREATE TABLE idempotency (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    result       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
