-- Cards removed from an account: a removed card never comes back, whatever
-- is replayed (a hosted page's return URL, a provider event).
CREATE TABLE removed_payment_methods (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    removed_at BIGINT NOT NULL
);

-- Hosted setup sessions whose card was recorded: each is used once.
CREATE TABLE used_setup_sessions (
    session_id     TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    used_at        BIGINT NOT NULL
);
