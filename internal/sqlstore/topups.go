package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

const settingsCols = `enabled, threshold, target, payment_method, monthly_limit, disabled_reason, failure_streak, retry_after, limit_notified, updated_at`

func scanSettings(dest []any, s *topup.Settings) []any {
	return append(dest, &s.Enabled, nullAmount{&s.Threshold}, nullAmount{&s.Target}, &s.PaymentMethod, nullAmount{&s.MonthlyLimit},
		&s.DisabledReason, &s.FailureStreak, timeScanner{&s.RetryAfter}, &s.LimitNotified, timeScanner{&s.UpdatedAt})
}

// nullAmount scans a nullable BIGINT into a *money.Amount.
type nullAmount struct{ p **money.Amount }

func (n nullAmount) Scan(v any) error {
	var x sql.NullInt64
	if err := x.Scan(v); err != nil {
		return err
	}
	*n.p = nil
	if x.Valid {
		a := money.Amount(x.Int64)
		*n.p = &a
	}
	return nil
}

func amountArg(a *money.Amount) any {
	if a == nil {
		return nil
	}
	return int64(*a)
}

// timeScanner scans BIGINT microseconds (0 = unset) into a time.Time.
type timeScanner struct{ p *time.Time }

func (t timeScanner) Scan(v any) error {
	var x sql.NullInt64
	if err := x.Scan(v); err != nil {
		return err
	}
	*t.p = time.Time{}
	if x.Valid && x.Int64 != 0 {
		*t.p = fromMicros(x.Int64)
	}
	return nil
}

func timeArg(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

// Settings returns an account's Automatic Top-Up settings (disabled with no
// amounts before the first save) and what automatic top-ups added or hold
// open this month.
func (s *Payments) Settings(ctx context.Context, accountID string) (topup.Settings, money.Amount, error) {
	if _, err := s.account(ctx, accountID); err != nil {
		return topup.Settings{}, 0, err
	}
	var st topup.Settings
	err := s.read.QueryRowContext(ctx, `SELECT `+settingsCols+` FROM auto_top_up WHERE account_id = $1`, accountID).Scan(scanSettings(nil, &st)...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, 0, err
	}
	mtd, err := monthToDate(ctx, s.read, accountID, s.clock.Now())
	return st, mtd, err
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// monthToDate sums automatic top-ups that succeeded or are open this month.
// A top-up belongs to the month of its charge, which is when its amount was
// fixed (first_attempt_at), not to the month it was created in: one created
// on the 31st at 23:59 and charged after midnight is checked against the new
// month's allowance, so it must count in the new month (the simulator found
// two charges fixed in one month that together passed its limit).
func monthToDate(ctx context.Context, q queryer, accountID string, now time.Time) (money.Amount, error) {
	var sum int64
	err := q.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM top_ups
WHERE account_id = $1 AND trigger <> 'manual' AND status IN ('succeeded', 'pending', 'processing', 'requires_action') AND first_attempt_at >= $2`,
		accountID, micros(topup.MonthStart(now))).Scan(&sum)
	return money.Amount(sum), err
}

func (s *core) settingsTx(ctx context.Context, tx *sql.Tx, accountID string) (topup.Settings, bool, error) {
	var st topup.Settings
	err := tx.QueryRowContext(ctx, `SELECT `+settingsCols+` FROM auto_top_up WHERE account_id = $1`, accountID).Scan(scanSettings(nil, &st)...)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	return st, err == nil, err
}

func (s *core) writeSettings(ctx context.Context, tx *sql.Tx, accountID string, st topup.Settings) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO auto_top_up (account_id, `+settingsCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (account_id) DO UPDATE SET enabled = excluded.enabled, threshold = excluded.threshold, target = excluded.target,
payment_method = excluded.payment_method, monthly_limit = excluded.monthly_limit, disabled_reason = excluded.disabled_reason,
failure_streak = excluded.failure_streak, retry_after = excluded.retry_after, limit_notified = excluded.limit_notified, updated_at = excluded.updated_at`,
		accountID, st.Enabled, amountArg(st.Threshold), amountArg(st.Target), st.PaymentMethod, amountArg(st.MonthlyLimit),
		st.DisabledReason, st.FailureStreak, timeArg(st.RetryAfter), st.LimitNotified, timeArg(st.UpdatedAt))
	if err != nil {
		return fmt.Errorf("save settings of %s: %w", accountID, err)
	}
	return nil
}

// SaveSettings validates in against the account's cards and limits, saves
// the result with an audit row, and creates a top-up at once when the
// balance is already below the new threshold (trigger: settings).
func (s *Payments) SaveSettings(ctx context.Context, accountID, actor string, in topup.Input, maxTarget money.Amount) (topup.Settings, *topup.TopUp, error) {
	var out topup.Settings
	var created *topup.TopUp
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if err := acct.May(ledger.ActSettings); err != nil {
			return err
		}
		cur, _, err := s.settingsTx(ctx, tx, accountID)
		if err != nil {
			return err
		}
		// Validation needs to know of two cards at most (the one named now
		// and the one saved before) and whether there is a default: a few
		// rows, however many cards the account has.
		named := cur.PaymentMethod
		if in.PaymentMethod != nil {
			named = *in.PaymentMethod
		}
		rules := topup.Rules{Currency: acct.Currency, MaxTarget: maxTarget, Cards: map[string]bool{}}
		rows, err := tx.QueryContext(ctx, `SELECT id, is_default FROM payment_methods WHERE account_id = $1 AND (id = $2 OR id = $3 OR is_default)`,
			accountID, named, cur.PaymentMethod)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var def bool
			if err := rows.Scan(&id, &def); err != nil {
				rows.Close()
				return err
			}
			rules.Cards[id] = true
			rules.HasDefault = rules.HasDefault || def
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		next, err := topup.Validate(in, cur, rules)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		next.UpdatedAt = now
		if err := s.changeSettings(ctx, tx, accountID, actor, cur, next, true); err != nil {
			return err
		}
		created, err = s.maybeTrigger(ctx, tx, acct, next, topup.TriggerSettings, now)
		out = next
		return err
	})
	return out, created, err
}

// changeSettings saves settings and writes the audit row: always for a
// customer's or operator's save, and for Topup's own changes (switching off
// after declines or a removed card) when what the customer sees changed.
func (s *core) changeSettings(ctx context.Context, tx *sql.Tx, accountID, actor string, old, next topup.Settings, always bool) error {
	if err := s.writeSettings(ctx, tx, accountID, next); err != nil {
		return err
	}
	oldJSON, _ := json.Marshal(settingsView(old))
	newJSON, _ := json.Marshal(settingsView(next))
	if !always && string(oldJSON) == string(newJSON) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings_audit (id, account_id, actor, old_value, new_value, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.ids.New("audit"), accountID, actor, string(oldJSON), string(newJSON), micros(s.clock.Now())); err != nil {
		return fmt.Errorf("audit settings: %w", err)
	}
	return nil
}

// settingsView is the audit trail's record of settings.
func settingsView(s topup.Settings) map[string]any {
	f := func(a *money.Amount) any {
		if a == nil {
			return nil
		}
		return int64(*a)
	}
	return map[string]any{"enabled": s.Enabled, "threshold_micros": f(s.Threshold), "target_micros": f(s.Target),
		"payment_method": s.PaymentMethod, "monthly_limit_micros": f(s.MonthlyLimit), "disabled_reason": s.DisabledReason}
}

// SettingsAudit lists the changes of an account's settings, newest first.
func (s *Payments) SettingsAudit(ctx context.Context, accountID string, limit int) ([]topup.AuditEntry, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, actor, old_value, new_value, created_at FROM settings_audit WHERE account_id = $1 ORDER BY id DESC LIMIT $2`, accountID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []topup.AuditEntry
	for rows.Next() {
		var a topup.AuditEntry
		var o, n string
		var at int64
		if err := rows.Scan(&a.ID, &a.Actor, &o, &n, &at); err != nil {
			return nil, err
		}
		a.Old, a.New, a.CreatedAt = json.RawMessage(o), json.RawMessage(n), fromMicros(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// lockAccount reads (and on PostgreSQL locks) one account, with its held
// credit counted again when a hold has expired since it was written.
func (s *core) lockAccount(ctx context.Context, tx *sql.Tx, id string) (ledger.AccountState, error) {
	var st ledger.AccountState
	var cur, status string
	var created, heldUntil int64
	err := tx.QueryRowContext(ctx, `SELECT id, email, currency, balance, status, created_at, last_seq, turnover, overdraft, held, held_until FROM accounts WHERE id = $1`+s.dialect.RowLock, id).
		Scan(&st.ID, &st.Email, &cur, &st.Balance, &status, &created, &st.LastSeq, &st.Turnover, &st.Overdraft, &st.Held, &heldUntil)
	if errors.Is(err, sql.ErrNoRows) {
		return st, notFound("account", id)
	}
	if err != nil {
		return st, err
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return st, err
	}
	st.Currency, st.Status, st.CreatedAt, st.HeldUntil = c, ledger.Status(status), fromMicros(created), heldUntilOf(heldUntil)
	return st, s.refreshHeld(ctx, tx, &st, s.clock.Now().UTC().Truncate(time.Microsecond))
}

// maybeTrigger creates an automatic top-up when topup.Decide says one is
// due; the partial unique index top_ups_one_open_auto makes a second open
// one impossible whatever the timing. When the monthly limit leaves less
// than the minimum charge, the customer is told once that month instead.
func (s *core) maybeTrigger(ctx context.Context, tx *sql.Tx, acct ledger.AccountState, st topup.Settings, trig topup.Trigger, now time.Time) (*topup.TopUp, error) {
	if !st.Due(acct.Available(), false, now) {
		// Not due whatever else holds: nothing to load.
		return nil, nil
	}
	ts, err := s.triggerState(ctx, tx, acct.ID, st, now)
	if err != nil {
		return nil, err
	}
	d := topup.Decide(acct.Account, st, ts, trig, now, s.ids.New)
	return d.TopUp, s.writeDecision(ctx, tx, acct.ID, d, now)
}

// triggerState loads what topup.Decide needs of an account that is due by
// its settings and balance: whether an automatic top-up is open (and only
// when none is, the month's total when there is a limit, and the default
// card when the settings name none).
func (s *core) triggerState(ctx context.Context, tx *sql.Tx, accountID string, st topup.Settings, now time.Time) (topup.TriggerState, error) {
	var ts topup.TriggerState
	var open int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM top_ups WHERE account_id = $1 AND trigger <> 'manual' AND status IN ('pending', 'processing', 'requires_action')`, accountID).Scan(&open); err != nil {
		return ts, err
	}
	if ts.HasOpen = open > 0; ts.HasOpen {
		return ts, nil
	}
	if st.MonthlyLimit != nil {
		mtd, err := monthToDate(ctx, tx, accountID, now)
		if err != nil {
			return ts, err
		}
		ts.MonthToDate = mtd
	}
	if st.PaymentMethod == "" {
		err := tx.QueryRowContext(ctx, `SELECT id FROM payment_methods WHERE account_id = $1 AND is_default`, accountID).Scan(&ts.DefaultCard)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return ts, err
		}
	}
	return ts, nil
}

// writeDecision writes what topup.Decide decided for an account.
func (s *core) writeDecision(ctx context.Context, tx *sql.Tx, accountID string, d topup.Decision, now time.Time) error {
	if d.LimitNotified != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE auto_top_up SET limit_notified = $1 WHERE account_id = $2`, d.LimitNotified, accountID); err != nil {
			return err
		}
	}
	if err := s.writeEvents(ctx, tx, d.Events, now); err != nil {
		return err
	}
	if d.TopUp != nil {
		return s.insertTopUp(ctx, tx, d.TopUp, 0)
	}
	return nil
}

func (s *core) insertTopUp(ctx context.Context, tx *sql.Tx, t *topup.TopUp, leaseUntil int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO top_ups (id, account_id, status, trigger, amount, payment_method, next_attempt_at, lease_until, crossed_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, t.ID, t.AccountID, string(t.Status), string(t.Trigger), amountArg(t.Amount), t.PaymentMethod,
		micros(t.NextAttemptAt), leaseUntil, micros(t.CrossedAt), micros(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert top-up: %w", err)
	}
	return nil
}

// notify writes an event to the outbox in the caller's transaction.
func (s *core) notify(ctx context.Context, tx *sql.Tx, accountID, typ string, data any, now time.Time) error {
	return s.writeEvents(ctx, tx, []ledger.Event{{AccountID: accountID, Type: typ, Data: data}}, now)
}

// writeEvents writes events to the outbox in the caller's transaction, in
// order; an event without an id gets one now.
func (s *core) writeEvents(ctx context.Context, tx *sql.Tx, events []ledger.Event, now time.Time) error {
	for _, e := range events {
		body, err := json.Marshal(e.Data)
		if err != nil {
			return err
		}
		if e.ID == "" {
			e.ID = s.ids.New("evt")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO notifications (id, account_id, type, data, created_at) VALUES ($1, $2, $3, $4, $5)`,
			e.ID, e.AccountID, e.Type, string(body), micros(now))
		if err != nil {
			return fmt.Errorf("notify %s: %w", e.Type, err)
		}
	}
	return nil
}

// Notifications lists what an account was told, newest first.
func (s *Outbox) Notifications(ctx context.Context, accountID string, limit int) ([]topup.Notification, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, type, data, created_at FROM notifications WHERE account_id = $1 ORDER BY id DESC LIMIT $2`, accountID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []topup.Notification
	for rows.Next() {
		n := topup.Notification{AccountID: accountID}
		var data string
		var at int64
		if err := rows.Scan(&n.ID, &n.Type, &data, &at); err != nil {
			return nil, err
		}
		n.Data, n.CreatedAt = json.RawMessage(data), fromMicros(at)
		out = append(out, n)
	}
	return out, rows.Err()
}
