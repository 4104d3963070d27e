-- The console: one-time sign-in links and the sessions they open. Link
-- tokens and session ids carry 256 random bits and are stored only as hex
-- SHA-256, so a copy of the database signs nobody in. Times in microseconds;
-- used_at is 0 until the link is used.
CREATE TABLE console_login_links (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX console_login_links_expires ON console_login_links (expires_at);

CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- What top-ups credited each day, so that the console's preview can replay
-- a month of usage and grants without the top-ups that really happened
-- (reading at most 31 rows, never the entries).
ALTER TABLE daily_totals ADD COLUMN top_up_credits BIGINT NOT NULL DEFAULT 0;
