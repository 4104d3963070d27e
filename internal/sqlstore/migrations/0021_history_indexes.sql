-- 0021: three reads walked all of an account's history of one kind, so
-- their cost grew with it (found by `topup bench --explain` on an account
-- with years of history):
-- the month-to-date sum of automatic top-ups (read on every account read,
-- and by the engine before each charge) filtered every top-up of the
-- account by first_attempt_at;
CREATE INDEX top_ups_auto_month ON top_ups (account_id, first_attempt_at) WHERE trigger <> 'manual';
-- GET …/grants?status= and GET …/holds?status= filtered every grant or
-- hold of the account by status.
CREATE INDEX grants_account_status ON grants (account_id, status, id);
CREATE INDEX holds_account_status ON holds (account_id, status, id);
