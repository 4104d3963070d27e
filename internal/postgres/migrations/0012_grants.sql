-- 0012, PostgreSQL part (after the shared one): entries gain grant_id (an
-- expiration's or void's grant, the grant a credit made), hold_id and
-- funding (ledger.EncodeFunding; '' on positive entries), and the kinds of
-- the grants contract.
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check
    CHECK (kind IN ('usage', 'credit', 'top_up', 'refund', 'refund_reversal', 'dispute', 'dispute_reversal', 'expiration', 'void', 'adjustment'));
ALTER TABLE entries ADD COLUMN grant_id TEXT, ADD COLUMN hold_id TEXT, ADD COLUMN funding TEXT NOT NULL DEFAULT '';
-- A grant expires once and is voided once, whatever crashes.
CREATE UNIQUE INDEX entries_one_expiration_per_grant ON entries (grant_id) WHERE kind = 'expiration';
CREATE UNIQUE INDEX entries_one_void_per_grant ON entries (grant_id) WHERE kind = 'void';
