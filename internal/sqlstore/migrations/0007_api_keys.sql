-- API keys: an account may hold up to 20 (ledger.MaxAPIKeys), each stored
-- only as hex SHA-256 with its first 12 characters kept readable. Revoking
-- deletes the row, so every replica refuses the key at its next lookup.
-- last_used_at is microseconds, 0 when never used, written at most once a
-- minute per key and replica.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    name         TEXT NOT NULL DEFAULT '',
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_account ON api_keys (account_id, id);

-- Each existing account's key becomes its "default" key, with the id
-- ledger.DefaultKey gives (key_ and the account id's ULID) and only the
-- "tpk_" of its prefix, the one part of the key anyone knows.
INSERT INTO api_keys (id, account_id, name, prefix, key_hash, created_at)
SELECT 'key_' || CASE WHEN substr(id, 1, 5) = 'acct_' THEN substr(id, 6) ELSE id END,
       id, 'default', 'tpk_', api_key_hash, created_at
FROM accounts;

-- accounts.api_key_hash is no longer read; it keeps a unique value that is
-- no credential (SQLite cannot drop a UNIQUE column in place).
UPDATE accounts SET api_key_hash = 'api_keys:' || id;
