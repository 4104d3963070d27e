-- 0019: refunds and disputes (PRODUCT.md "Refunds, disputes, receipts and
-- statements"). A refund row and its provider key exist before the
-- provider is called; its entry is written once, when the provider confirms
-- it. The split columns keep how its entry was accounted to the refunded
-- top-up's grant: a grant's ledger.Returns are the sums of its top-up's
-- succeeded refunds and withdrawn, not reinstated, disputes (and its Lost
-- is its expiration or void entry), so a reversal rolls them back by
-- changing the row's status, and nothing is kept twice.
CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    top_up_id       TEXT NOT NULL REFERENCES top_ups (id),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason          TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL DEFAULT '',
    provider_id     TEXT,
    failure_reason  TEXT NOT NULL DEFAULT '',
    taken           BIGINT NOT NULL DEFAULT 0,
    reclaimed       BIGINT NOT NULL DEFAULT 0,
    from_spent      BIGINT NOT NULL DEFAULT 0,
    from_lost       BIGINT NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    completed_at    BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX refunds_key ON refunds (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- A provider refund (ours, or one made in Stripe's Dashboard) is one row.
CREATE UNIQUE INDEX refunds_provider ON refunds (provider_id) WHERE provider_id IS NOT NULL;
CREATE INDEX refunds_top_up ON refunds (top_up_id, id);
CREATE INDEX refunds_due ON refunds (next_attempt_at) WHERE status = 'pending';

CREATE TABLE disputes (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    top_up_id   TEXT NOT NULL REFERENCES top_ups (id),
    provider_id TEXT NOT NULL UNIQUE,
    amount      BIGINT NOT NULL DEFAULT 0,
    status      TEXT NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    reason      TEXT NOT NULL DEFAULT '',
    withdrawn   BIGINT NOT NULL DEFAULT 0,
    was_drawn   BOOLEAN NOT NULL DEFAULT FALSE,
    reinstated  BOOLEAN NOT NULL DEFAULT FALSE,
    taken       BIGINT NOT NULL DEFAULT 0,
    reclaimed   BIGINT NOT NULL DEFAULT 0,
    from_spent  BIGINT NOT NULL DEFAULT 0,
    from_lost   BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    closed_at   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX disputes_account ON disputes (account_id, id);
CREATE INDEX disputes_top_up ON disputes (top_up_id);

ALTER TABLE top_ups ADD COLUMN amount_refunded BIGINT NOT NULL DEFAULT 0;

-- A top-up's credit stays once per top-up; its refunds, disputes and
-- their reversals also carry its id, each once (the refund's or dispute's
-- id is the entry's idempotency key).
DROP INDEX entries_one_credit_per_top_up;
CREATE UNIQUE INDEX entries_one_credit_per_top_up ON entries (top_up_id) WHERE kind = 'top_up';
CREATE UNIQUE INDEX entries_once_per_refund ON entries (kind, idempotency_key)
    WHERE kind IN ('refund', 'refund_reversal', 'dispute', 'dispute_reversal');
