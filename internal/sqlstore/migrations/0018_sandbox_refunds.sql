-- The sandbox payment provider's refunds and disputes (internal/sandbox):
-- its refund log, the idempotency keys of refund requests, and the one
-- dispute a charge may have. Nothing else reads these tables; with Stripe
-- they stay empty.

CREATE TABLE sandbox_refunds (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    refund_id       TEXT NOT NULL DEFAULT '',
    charge_id       TEXT NOT NULL,
    top_up_id       TEXT NOT NULL DEFAULT '',
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    initial_status  TEXT NOT NULL CHECK (initial_status IN ('pending', 'succeeded', 'failed', 'canceled')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
    failure_reason  TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);
-- What is left to refund of a charge, and FindRefund.
CREATE INDEX sandbox_refunds_charge ON sandbox_refunds (charge_id);

-- Refund requests' idempotency keys, as sandbox_idempotency_keys for
-- charges: remembered for Stripe's 24 hours, then taken over.
CREATE TABLE sandbox_refund_keys (
    idempotency_key TEXT PRIMARY KEY,
    refund_id       TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- Disputes: one per charge. The sandbox withdraws the funds at once;
-- funds_reinstated is set when a dispute is won; closed_at is 0 while open.
CREATE TABLE sandbox_disputes (
    id               TEXT PRIMARY KEY,
    charge_id        TEXT NOT NULL UNIQUE,
    top_up_id        TEXT NOT NULL DEFAULT '',
    amount           BIGINT NOT NULL CHECK (amount > 0),
    currency         TEXT NOT NULL,
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL,
    funds_withdrawn  BOOLEAN NOT NULL,
    funds_reinstated BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    closed_at        BIGINT NOT NULL DEFAULT 0
);
