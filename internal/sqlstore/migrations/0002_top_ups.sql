ALTER TABLE accounts ADD COLUMN provider_customer TEXT NOT NULL DEFAULT '';

CREATE TABLE payment_methods (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    brand      TEXT NOT NULL,
    last4      TEXT NOT NULL,
    exp_month  INTEGER NOT NULL,
    exp_year   INTEGER NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE INDEX payment_methods_account ON payment_methods (account_id, created_at);
CREATE UNIQUE INDEX payment_methods_one_default ON payment_methods (account_id) WHERE is_default;

CREATE TABLE auto_top_up (
    account_id      TEXT PRIMARY KEY REFERENCES accounts (id),
    enabled         BOOLEAN NOT NULL DEFAULT FALSE,
    threshold       BIGINT,
    target          BIGINT,
    payment_method  TEXT NOT NULL DEFAULT '',
    monthly_limit   BIGINT,
    disabled_reason TEXT NOT NULL DEFAULT '',
    failure_streak  INTEGER NOT NULL DEFAULT 0,
    retry_after     BIGINT NOT NULL DEFAULT 0,
    limit_notified  TEXT NOT NULL DEFAULT '',
    updated_at      BIGINT NOT NULL
);

CREATE TABLE settings_audit (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    actor      TEXT NOT NULL,
    old_value  TEXT NOT NULL,
    new_value  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX settings_audit_account ON settings_audit (account_id, id);

CREATE TABLE top_ups (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'requires_action', 'canceled')),
    trigger          TEXT NOT NULL CHECK (trigger IN ('threshold', 'manual', 'settings')),
    amount           BIGINT,
    payment_method   TEXT NOT NULL DEFAULT '',
    failure_code     TEXT NOT NULL DEFAULT '',
    charge_id        TEXT NOT NULL DEFAULT '',
    client_secret    TEXT NOT NULL DEFAULT '',
    action_token     TEXT NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    action_expires   BIGINT NOT NULL DEFAULT 0,
    crossed_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    completed_at     BIGINT NOT NULL DEFAULT 0
);
-- At most one open automatic top-up per account, enforced here and not by luck.
CREATE UNIQUE INDEX top_ups_one_open_auto ON top_ups (account_id)
    WHERE trigger <> 'manual' AND status IN ('pending', 'processing', 'requires_action');
CREATE INDEX top_ups_due ON top_ups (next_attempt_at) WHERE status IN ('pending', 'processing');
CREATE INDEX top_ups_account ON top_ups (account_id, id);
-- A top-up credits the ledger once.
CREATE UNIQUE INDEX entries_one_credit_per_top_up ON entries (top_up_id) WHERE top_up_id IS NOT NULL;

-- Provider webhook events already applied.
CREATE TABLE provider_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

-- The outbox: what an account was told, written with the change that caused it.
CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_account ON notifications (account_id, id);
