-- Low balance alerts, budgets, webhook endpoints and the delivery of the
-- outbox (notifications) by e-mail and webhooks.

-- The debit path reads these two columns in the statement that locks the
-- accounts, so an account without alerts or budgets costs nothing more.
-- low_balance_alerts holds the account's thresholds (at most 5), largest
-- first, each with the UTC day it last fired: "20000000:2026-03-04,5000000:"
-- (micros:day, '' = never). A threshold fires when the balance falls from
-- at or above it to below it, at most once per UTC day. has_budgets is
-- true exactly when the account has rows in budgets.
ALTER TABLE accounts ADD COLUMN low_balance_alerts TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN has_budgets BOOLEAN NOT NULL DEFAULT FALSE;

-- Budgets: subject '' covers all the account's usage. spent counts the
-- usage entries after start_seq (the account's last entry when the budget
-- was made) since period_start (monthly: the 1st of the month, reset
-- lazily by the first change of a new month; otherwise the creation).
CREATE TABLE budgets (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    subject      TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL CHECK (kind IN ('unlimited', 'one_time', 'monthly')),
    amount_limit BIGINT CHECK (amount_limit IS NULL OR amount_limit > 0),
    spent        BIGINT NOT NULL DEFAULT 0,
    period_start BIGINT NOT NULL,
    start_seq    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CHECK ((kind = 'unlimited') = (amount_limit IS NULL))
);
-- One budget per subject, and one without.
CREATE UNIQUE INDEX budgets_subject ON budgets (account_id, subject);

CREATE TABLE webhook_endpoints (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id, id);

-- The delivery worker fans each new notification out into deliveries, one
-- per channel (the account's e-mail, each webhook endpoint), then marks it
-- dispatched.
ALTER TABLE notifications ADD COLUMN dispatched BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX notifications_undispatched ON notifications (id) WHERE NOT dispatched;

-- One delivery of one event on one channel, claimed with a lease as
-- top-ups are, retried with back-off until deadline.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES notifications (id),
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    endpoint_id     TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    deadline        BIGINT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);
-- Fanning one event out twice cannot deliver it twice on a channel.
CREATE UNIQUE INDEX deliveries_one_per_channel ON deliveries (event_id, channel, endpoint_id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id);

-- Every attempt, as GET …/webhook_endpoints/{id}/deliveries lists them.
CREATE TABLE delivery_attempts (
    id              TEXT PRIMARY KEY,
    delivery_id     TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL DEFAULT '',
    event_id        TEXT NOT NULL,
    type            TEXT NOT NULL,
    status_code     INTEGER NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    attempted_at    BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX delivery_attempts_endpoint ON delivery_attempts (endpoint_id, id);
