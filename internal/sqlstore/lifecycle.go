package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

const topUpCols = `t.id, t.account_id, a.currency, t.status, t.trigger, t.amount, t.payment_method, t.failure_code, t.charge_id, t.client_secret,
t.action_token, t.attempts, t.first_attempt_at, t.next_attempt_at, t.action_expires, t.crossed_at, t.created_at, t.completed_at, t.amount_refunded`

const topUpFrom = ` FROM top_ups t JOIN accounts a ON a.id = t.account_id`

func scanTopUp(r rowScanner) (topup.TopUp, error) {
	var t topup.TopUp
	var cur, status, trig string
	var crossed, created int64
	err := r.Scan(&t.ID, &t.AccountID, &cur, &status, &trig, nullAmount{&t.Amount}, &t.PaymentMethod, &t.FailureCode, &t.ChargeID, &t.ClientSecret,
		&t.ActionToken, &t.Attempts, timeScanner{&t.FirstAttemptAt}, timeScanner{&t.NextAttemptAt}, timeScanner{&t.ActionExpires}, &crossed, &created, timeScanner{&t.CompletedAt}, &t.AmountRefunded)
	if err != nil {
		return t, err
	}
	t.Status, t.Trigger, t.CrossedAt, t.CreatedAt = topup.Status(status), topup.Trigger(trig), fromMicros(crossed), fromMicros(created)
	t.Currency, err = money.LookupCurrency(cur)
	return t, err
}

// TopUp returns one top-up of an account.
func (s *Payments) TopUp(ctx context.Context, accountID, id string) (topup.TopUp, error) {
	t, err := scanTopUp(s.read.QueryRowContext(ctx, `SELECT `+topUpCols+topUpFrom+` WHERE t.id = $1 AND t.account_id = $2`, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return t, notFound("top-up", id)
	}
	return t, err
}

// TopUpByID returns a top-up whatever its account (for webhooks and the
// worker).
func (s *Payments) TopUpByID(ctx context.Context, id string) (topup.TopUp, error) {
	t, err := scanTopUp(s.read.QueryRowContext(ctx, `SELECT `+topUpCols+topUpFrom+` WHERE t.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, notFound("top-up", id)
	}
	return t, err
}

// TopUps lists an account's top-ups, newest first.
func (s *Payments) TopUps(ctx context.Context, accountID string, p ledger.Page) ([]topup.TopUp, bool, error) {
	if _, err := s.account(ctx, accountID); err != nil {
		return nil, false, err
	}
	return pageRows(ctx, s.core, keyset{sel: `SELECT ` + topUpCols + topUpFrom, id: "t.id", where: "t.account_id = $1", args: []any{accountID}, what: "top-up"}, p, scanTopUp)
}

// CreateManual records a manual top-up under the request's idempotency key,
// leased to the caller who charges it at once. A key seen before returns the
// top-up it made (replay); with another request, a conflict.
func (s *Payments) CreateManual(ctx context.Context, accountID string, amount money.Amount, card, key, hash string, lease time.Duration) (topup.TopUp, bool, error) {
	var out topup.TopUp
	var replay bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		replay = false
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		scope := string(ledger.ScopeOf(accountID, "top_up"))
		var storedHash, storedID string
		err = tx.QueryRowContext(ctx, `SELECT request_hash, result FROM idempotency WHERE scope = $1 AND key = $2`, scope, key).Scan(&storedHash, &storedID)
		switch {
		case err == nil && storedHash != hash:
			return &apperr.Error{Code: apperr.IdempotencyConflict, Field: "idempotency_key", Message: "this idempotency_key was used with a different request"}
		case err == nil:
			replay = true
			out, err = scanTopUp(tx.QueryRowContext(ctx, `SELECT `+topUpCols+topUpFrom+` WHERE t.id = $1`, storedID))
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if err := acct.May(ledger.ActTopUp); err != nil {
			return err
		}
		if card == "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM payment_methods WHERE account_id = $1 AND is_default`, accountID).Scan(&card)
			if errors.Is(err, sql.ErrNoRows) {
				return apperr.Invalidf("payment_method", "add a payment method first")
			}
			if err != nil {
				return err
			}
		} else {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM payment_methods WHERE account_id = $1 AND id = $2`, accountID, card).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return apperr.Invalidf("payment_method", "no payment method %s on this account", card)
			}
		}
		now := s.clock.Now()
		out = topup.TopUp{ID: s.ids.New("tu"), AccountID: accountID, Status: topup.Pending, Trigger: topup.TriggerManual, Amount: &amount,
			Currency: acct.Currency, PaymentMethod: card, NextAttemptAt: now, CrossedAt: now, CreatedAt: now}
		if err := s.insertTopUp(ctx, tx, &out, micros(now.Add(lease))); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO idempotency (scope, key, request_hash, result, created_at) VALUES ($1, $2, $3, $4, $5)`,
			scope, key, hash, out.ID, micros(now))
		return err
	})
	return out, replay, err
}

// Claim leases up to limit due top-ups (pending or processing, next attempt
// reached, lease expired) to the caller. On PostgreSQL, SKIP LOCKED lets
// replicas claim different rows; SQLite's single writer needs nothing more.
func (s *Payments) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	var out []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.claimDue(ctx, tx, "top_ups", "status IN ('pending', 'processing')", "", now, lease, limit)
		return err
	})
	return out, err
}

// claimDue leases to the caller, in tx, up to limit rows of table (top_ups,
// refunds) that due selects, whose next attempt has come and whose lease ran
// out, soonest due first: it sets their lease_until (and set, when not
// empty, such as ", attempts = attempts + 1") and returns their ids. On
// PostgreSQL, SKIP LOCKED lets replicas claim different rows; SQLite's
// single writer needs nothing more.
func (s *core) claimDue(ctx context.Context, tx *sql.Tx, table, due, set string, now time.Time, lease time.Duration, limit int) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM `+table+` WHERE `+due+` AND next_attempt_at <= $1 AND lease_until <= $1
ORDER BY next_attempt_at, id LIMIT $2`+s.dialect.SkipLocked, micros(now), limit)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET lease_until = $1`+set+` WHERE id = $2`, micros(now.Add(lease)), id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// Renew moves the claim on an open top-up from held to until and reports
// whether it did: only while the claim is still the caller's, its
// lease_until still held (no other worker claimed the top-up after the
// claim ran out, and nothing settled it). The engine renews its claims
// this way while it charges, so that a claim can be short and a dead
// replica's top-up resumed soon. A zero held takes the claim whatever it
// was, for the caller that has just made the top-up (a manual one).
func (s *Payments) Renew(ctx context.Context, id string, held, until time.Time) (bool, error) {
	q := `UPDATE top_ups SET lease_until = $1 WHERE id = $2 AND status IN ('pending', 'processing')`
	args := []any{micros(until), id}
	if !held.IsZero() {
		q += ` AND lease_until = $3`
		args = append(args, micros(held))
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("renew the claim on top-up %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// lockTopUp reads (and on PostgreSQL locks) a top-up with its account's
// currency. Its account is locked first: every transaction that locks an
// account and one of its top-ups takes them in that order (a debit creates
// top-ups, and closing an account cancels them, under the account's lock),
// so two of them cannot deadlock.
func (s *core) lockTopUp(ctx context.Context, tx *sql.Tx, id string) (topup.TopUp, error) {
	forUpdate := s.dialect.RowLock
	if forUpdate != "" {
		// The top-up's account never changes: the plain read of it is safe.
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM accounts WHERE id = (SELECT account_id FROM top_ups WHERE id = $1)`+forUpdate, id); err != nil {
			return topup.TopUp{}, fmt.Errorf("lock the account of top-up %s: %w", id, err)
		}
		forUpdate += " OF t"
	}
	t, err := scanTopUp(tx.QueryRowContext(ctx, `SELECT `+topUpCols+topUpFrom+` WHERE t.id = $1`+forUpdate, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, notFound("top-up", id)
	}
	return t, err
}

// Begin prepares one attempt: it fixes the amount of an automatic top-up
// before its first attempt (target - balance, stored before the provider is
// called) or cancels it (not_needed) when the balance is no longer below the
// threshold, and counts the attempt. ok is false when there is nothing to
// charge.
func (s *Payments) Begin(ctx context.Context, id string) (topup.TopUp, bool, error) {
	var out topup.TopUp
	var ok bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, ok, err = s.beginTx(ctx, tx, id)
		return err
	})
	return out, ok, err
}

// ClaimBegin is Claim and then Begin of each top-up claimed, in one
// transaction, where the database has one writer (SQLite): for a worker
// that attempts what it claims at once, one write (one wait for the writer,
// behind a group commit under load) fewer per top-up. Elsewhere ok is false
// and nothing is done: claiming locks top-ups before their accounts, the
// reverse of the order every other transaction takes them in (lockTopUp),
// which row locks could deadlock on.
func (s *Payments) ClaimBegin(ctx context.Context, now time.Time, lease time.Duration, limit int) (begun []topup.Begun, ok bool, err error) {
	if !s.dialect.OneWriter {
		return nil, false, nil
	}
	var out []topup.Begun
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		ids, err := s.claimDue(ctx, tx, "top_ups", "status IN ('pending', 'processing')", "", now, lease, limit)
		if err != nil {
			return err
		}
		for _, id := range ids {
			t, ok, err := s.beginTx(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, topup.Begun{TopUp: t, OK: ok})
		}
		return nil
	})
	return out, err == nil, err
}

// beginTx is Begin in tx.
func (s *Payments) beginTx(ctx context.Context, tx *sql.Tx, id string) (topup.TopUp, bool, error) {
	var out topup.TopUp
	var ok bool
	err := func() error {
		t, err := s.lockTopUp(ctx, tx, id)
		if err != nil {
			return err
		}
		out, ok = t, false
		if t.Status != topup.Pending && t.Status != topup.Processing {
			return nil
		}
		now := s.clock.Now()
		var acct ledger.AccountState
		if t.Attempts == 0 || t.Amount == nil {
			if acct, err = s.lockAccount(ctx, tx, t.AccountID); err != nil {
				return err
			}
		}
		// Never charged yet: a closed account is never charged, whatever
		// raced its close (a top-up created just before it).
		if t.Attempts == 0 && acct.May(ledger.ActCharge) != nil {
			return s.cancelUnattempted(ctx, tx, &out, topup.AccountClosed, now)
		}
		if t.Amount == nil {
			amount, card, err := s.fixAmount(ctx, tx, t, acct, now)
			if err != nil {
				return err
			}
			if card == "" {
				return s.cancelUnattempted(ctx, tx, &out, topup.NotNeeded, now)
			}
			t.Amount, t.PaymentMethod = &amount, card
		}
		if t.FirstAttemptAt.IsZero() {
			t.FirstAttemptAt = now
		}
		t.Attempts++
		t.Status = topup.Processing
		_, err = tx.ExecContext(ctx, `UPDATE top_ups SET amount = $1, payment_method = $2, attempts = $3, first_attempt_at = $4, status = 'processing' WHERE id = $5`,
			int64(*t.Amount), t.PaymentMethod, t.Attempts, micros(t.FirstAttemptAt), id)
		out, ok = t, true
		return err
	}()
	return out, ok, err
}

// cancelUnattempted cancels a top-up before its first charge attempt with
// code, and tells out so.
func (s *Payments) cancelUnattempted(ctx context.Context, tx *sql.Tx, out *topup.TopUp, code string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE top_ups SET status = 'canceled', failure_code = $1, completed_at = $2, lease_until = 0 WHERE id = $3`,
		code, micros(now), out.ID)
	out.Status, out.FailureCode, out.CompletedAt = topup.Canceled, code, now
	return err
}

// fixAmount decides a top-up's amount and card just before its first
// attempt: target less the balance within the monthly limit, on the named
// card or the default one. An empty card means the top-up is no longer
// needed (the balance recovered, Automatic Top-Up is off, or no card is
// left): the default card is followed, so one removed or changed since the
// crossing is never charged.
func (s *Payments) fixAmount(ctx context.Context, tx *sql.Tx, t topup.TopUp, acct ledger.AccountState, now time.Time) (money.Amount, string, error) {
	st, _, err := s.settingsTx(ctx, tx, t.AccountID)
	if err != nil {
		return 0, "", err
	}
	var mtd money.Amount
	if st.MonthlyLimit != nil {
		// The top-up itself is open but has no amount yet: it adds nothing.
		if mtd, err = monthToDate(ctx, tx, t.AccountID, now); err != nil {
			return 0, "", err
		}
	}
	amount, cancel := st.ChargeAmount(acct.Available(), mtd, acct.Currency)
	if cancel || !st.Enabled {
		return 0, "", nil
	}
	card := st.PaymentMethod
	if card == "" {
		err := tx.QueryRowContext(ctx, `SELECT id FROM payment_methods WHERE account_id = $1 AND is_default`, t.AccountID).Scan(&card)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, "", err
		}
	}
	return amount, card, nil
}

// ReleaseLeases releases every claim on open top-ups, for a process that
// knows it is the database's only user (SQLite) and starts after a crash.
func (s *Payments) ReleaseLeases(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE top_ups SET lease_until = 0 WHERE status IN ('pending', 'processing') AND lease_until > 0`)
		return err
	})
}
