-- 0016: receipts. Every succeeded top-up has a receipt number, unique and
-- increasing across the operator without gaps (R-000001…): Settle takes the
-- next one from receipt_counter in the transaction that marks the top-up
-- succeeded, so a rolled-back settle takes none and two replicas wait on
-- the counter's row lock in turn. The receipt shows the card that paid; the
-- card's brand and last four are copied onto the top-up then, because a
-- removed card's row is deleted.
ALTER TABLE top_ups ADD COLUMN receipt_number BIGINT;
ALTER TABLE top_ups ADD COLUMN card_brand TEXT NOT NULL DEFAULT '';
ALTER TABLE top_ups ADD COLUMN card_last4 TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX top_ups_receipt_number ON top_ups (receipt_number) WHERE receipt_number IS NOT NULL;

CREATE TABLE receipt_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);

-- Top-ups that succeeded before this migration are numbered in the order
-- they completed (ties by id), with the cards still on file.
UPDATE top_ups SET receipt_number = r.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY completed_at, id) AS n FROM top_ups WHERE status = 'succeeded') r
WHERE top_ups.id = r.id;
UPDATE top_ups SET card_brand = p.brand, card_last4 = p.last4
FROM payment_methods p
WHERE p.id = top_ups.payment_method AND top_ups.status = 'succeeded';
INSERT INTO receipt_counter (id, n) SELECT 1, COALESCE(MAX(receipt_number), 0) FROM top_ups;
