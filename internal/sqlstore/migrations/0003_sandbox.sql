-- The sandbox payment provider's durable memory (internal/sandbox): every
-- charge it was asked for, the test cards it attached and its hosted setup
-- sessions. Nothing else reads these tables; with Stripe they stay empty.

CREATE TABLE sandbox_charges (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    top_up_id       TEXT NOT NULL DEFAULT '',
    customer        TEXT NOT NULL,
    payment_method  TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('succeeded', 'declined', 'requires_action', 'processing')),
    decline_code    TEXT NOT NULL DEFAULT '',
    client_secret   TEXT NOT NULL DEFAULT '',
    off_session     BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL
);
-- FindCharge: a top-up's charges, of one customer or of any.
CREATE INDEX sandbox_charges_top_up ON sandbox_charges (top_up_id, customer);

-- The idempotency keys the sandbox remembers, as Stripe does for 24 hours:
-- a key older than that is taken over by the next charge that uses it. Kept
-- apart from sandbox_charges, where a key may then appear twice, so that the
-- log shows such a second charge.
CREATE TABLE sandbox_idempotency_keys (
    idempotency_key TEXT PRIMARY KEY,
    charge_id       TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- Attached test cards; customer is '' once detached.
CREATE TABLE sandbox_cards (
    id         TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    customer   TEXT NOT NULL,
    brand      TEXT NOT NULL,
    last4      TEXT NOT NULL,
    exp_month  INTEGER NOT NULL,
    exp_year   INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);

-- Hosted setup sessions; card_id is '' until a card is picked.
CREATE TABLE sandbox_sessions (
    id          TEXT PRIMARY KEY,
    customer    TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    success_url TEXT NOT NULL,
    cancel_url  TEXT NOT NULL,
    card_id     TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
