package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/topup"
)

// Settle applies an outcome to a top-up in one transaction: the status, the
// ledger credit (once: a unique index allows one credit per top-up), the
// decline streak and back-off, the notifications, and a new top-up when the
// balance is still below the threshold. Final top-ups do not change again,
// except that a success always wins: a charge that was paid is credited.
func (s *Store) Settle(ctx context.Context, id string, o topup.Outcome, backoff time.Duration) (topup.Settled, error) {
	var out topup.Settled
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = topup.Settled{}
		if o.EventID != "" {
			res, err := tx.ExecContext(ctx, `INSERT INTO provider_events (id, type, received_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
				o.EventID, o.EventType, micros(s.clock.Now()))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				t, err := s.lockTopUp(ctx, tx, id)
				out.TopUp = t
				return err
			}
		}
		t, err := s.lockTopUp(ctx, tx, id)
		if err != nil {
			return err
		}
		out.TopUp = t
		// A final top-up stays as it is, except that a success always wins:
		// a charge that was paid is credited even if we had given up on it.
		if !t.Status.Open() && (o.Status != topup.Succeeded || t.Status == topup.Succeeded) {
			return nil
		}
		if o.Status == topup.Succeeded && t.Amount == nil {
			// No charge is sent before Begin fixes the amount, so a success
			// for a top-up without one is no charge of ours: refuse it
			// rather than credit an amount nobody stored.
			return fmt.Errorf("settle top-up %s: a success reported before its amount was fixed", id)
		}
		return s.settleTx(ctx, tx, &out, t, o, backoff)
	})
	return out, err
}

func (s *Store) settleTx(ctx context.Context, tx *sql.Tx, out *topup.Settled, t topup.TopUp, o topup.Outcome, backoff time.Duration) error {
	now := s.clock.Now()
	if o.ChargeID != "" {
		t.ChargeID = o.ChargeID
	}
	out.Changed = true
	switch o.Status {
	case topup.Processing:
		t.NextAttemptAt = o.RetryAt
		_, err := tx.ExecContext(ctx, `UPDATE top_ups SET status = 'processing', charge_id = $1, next_attempt_at = $2, lease_until = 0 WHERE id = $3`,
			t.ChargeID, micros(o.RetryAt), t.ID)
		out.TopUp = t
		return err
	case topup.RequiresAction:
		token := o.ActionToken
		if token == "" {
			// The secret in the action_url: 256 random bits (crypto/rand, or
			// the simulator's seed), never an id's.
			token = s.ids.Secret("act_")
		}
		t.Status, t.ClientSecret, t.ActionToken, t.ActionExpires = topup.RequiresAction, o.ClientSecret, token, now.Add(topup.ActionTTL)
		_, err := tx.ExecContext(ctx, `UPDATE top_ups SET status = 'requires_action', charge_id = $1, client_secret = $2, action_token = $3, action_expires = $4, lease_until = 0 WHERE id = $5`,
			t.ChargeID, t.ClientSecret, t.ActionToken, micros(t.ActionExpires), t.ID)
		out.TopUp = t
		if err != nil {
			return err
		}
		return s.notify(ctx, tx, t.AccountID, "top_up.action_required", s.topUpEvent(t), now)
	case topup.Succeeded:
		return s.succeed(ctx, tx, out, t, now)
	case topup.Failed, topup.Canceled:
		t.Status, t.FailureCode, t.CompletedAt = o.Status, o.FailureCode, now
		if _, err := tx.ExecContext(ctx, `UPDATE top_ups SET status = $1, charge_id = $2, failure_code = $3, completed_at = $4, lease_until = 0 WHERE id = $5`,
			string(t.Status), t.ChargeID, t.FailureCode, micros(now), t.ID); err != nil {
			return err
		}
		out.TopUp = t
		if err := s.notify(ctx, tx, t.AccountID, "top_up.failed", s.topUpEvent(t), now); err != nil {
			return err
		}
		if t.Trigger == topup.TriggerManual {
			return nil
		}
		st, ok, err := s.settingsTx(ctx, tx, t.AccountID)
		if err != nil || !ok {
			return err
		}
		next, disabled := st.AfterFailure(t.FailureCode, o.NeverRetry, now, backoff)
		if err := s.changeSettings(ctx, tx, t.AccountID, "system:"+t.FailureCode, st, next, false); err != nil {
			return err
		}
		if disabled != "" {
			out.Disabled = disabled
			return s.notify(ctx, tx, t.AccountID, "auto_top_up.disabled", map[string]any{"reason": disabled}, now)
		}
		return nil
	}
	return fmt.Errorf("settle top-up %s: unknown outcome %q", t.ID, o.Status)
}

// succeed credits the ledger with the top-up's amount and creates the next
// automatic top-up if heavy usage during the charge left the balance low.
func (s *Store) succeed(ctx context.Context, tx *sql.Tx, out *topup.Settled, t topup.TopUp, now time.Time) error {
	acct, err := s.lockAccount(ctx, tx, t.AccountID)
	if err != nil {
		return err
	}
	// The charge is paid: its credit cannot be refused, only kept exact.
	if err := acct.Move(*t.Amount, false); err != nil {
		return fmt.Errorf("credit top-up %s: %w", t.ID, err)
	}
	entry := ledger.Entry{ID: s.ids.New("ent"), AccountID: t.AccountID, Seq: acct.LastSeq, Kind: ledger.KindTopUp, Amount: *t.Amount,
		BalanceAfter: acct.Balance, Description: topUpDescription(t), IdempotencyKey: t.IdempotencyKey(), TopUpID: t.ID, CreatedAt: now}
	if err := s.insertEntries(ctx, tx, []ledger.Entry{entry}); err != nil {
		return err
	}
	if err := s.recordDaily(ctx, tx, []ledger.Entry{entry}); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = $1, last_seq = $2, turnover = $3, updated_at = $4 WHERE id = $5`,
		int64(acct.Balance), acct.LastSeq, int64(acct.Turnover), micros(now), acct.ID); err != nil {
		return err
	}
	t.Status, t.CompletedAt, t.FailureCode = topup.Succeeded, now, ""
	if _, err := tx.ExecContext(ctx, `UPDATE top_ups SET status = 'succeeded', charge_id = $1, failure_code = '', completed_at = $2, lease_until = 0 WHERE id = $3`,
		t.ChargeID, micros(now), t.ID); err != nil {
		return err
	}
	out.TopUp, out.Credited = t, true
	if err := s.notify(ctx, tx, t.AccountID, "top_up.succeeded", s.topUpEvent(t), now); err != nil {
		return err
	}
	st, ok, err := s.settingsTx(ctx, tx, t.AccountID)
	if err != nil || !ok {
		return err
	}
	if t.Trigger != topup.TriggerManual && st.FailureStreak != 0 {
		st.FailureStreak, st.RetryAfter = 0, time.Time{}
		if err := s.writeSettings(ctx, tx, t.AccountID, st); err != nil {
			return err
		}
	}
	out.Next, err = s.maybeTrigger(ctx, tx, acct, st, topup.TriggerThreshold, now)
	return err
}

func topUpDescription(t topup.TopUp) string {
	if t.Trigger == topup.TriggerManual {
		return "Top-up"
	}
	return "Automatic top-up"
}

// topUpEvent is the data of a top_up.* event: the top-up, as the API shows
// it, with its action_url while it waits for the customer.
func (s *Store) topUpEvent(t topup.TopUp) map[string]any {
	m := map[string]any{"id": t.ID, "account_id": t.AccountID, "status": string(t.Status), "trigger": string(t.Trigger),
		"payment_method": t.PaymentMethod, "failure_code": nilIfEmpty(t.FailureCode), "currency": t.Currency.Code,
		"amount": nil, "action_url": nil, "created_at": t.CreatedAt, "completed_at": nil}
	if t.Amount != nil {
		m["amount"] = t.Amount.Format(t.Currency)
	}
	if !t.CompletedAt.IsZero() {
		m["completed_at"] = t.CompletedAt
	}
	if s.actionURL != nil {
		m["action_url"] = nilIfEmpty(s.actionURL(t))
	}
	return m
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ExpiredActions lists requires_action top-ups the customer left for 24
// hours; the engine cancels their charge and settles them (canceled,
// authentication_expired, a failure in the row).
func (s *Store) ExpiredActions(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM top_ups WHERE status = 'requires_action' AND action_expires <= $1 ORDER BY id`, micros(s.clock.Now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// NextDue returns the earliest back-off end after the instant after: when
// an account with Automatic Top-Up on, active and below its threshold, with
// no open automatic top-up, becomes due for one by the clock alone. false
// when no such account waits. The engine sweeps then.
func (s *Store) NextDue(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var due sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT MIN(s.retry_after) FROM auto_top_up s JOIN accounts a ON a.id = s.account_id
WHERE s.enabled AND s.retry_after > $1 AND a.status = 'active' AND a.balance < s.threshold
AND NOT EXISTS (SELECT 1 FROM top_ups t WHERE t.account_id = s.account_id AND t.trigger <> 'manual' AND t.status IN ('pending', 'processing', 'requires_action'))`,
		micros(after)).Scan(&due)
	if err != nil || !due.Valid {
		return time.Time{}, false, err
	}
	return fromMicros(due.Int64), true, nil
}

// Sweep catches what no debit triggered: it creates the automatic top-ups
// that are due, such as after a failure's back-off ended. It returns the new
// top-ups.
func (s *Store) Sweep(ctx context.Context, backoff time.Duration) ([]string, error) {
	now := s.clock.Now()
	rows, err := s.read.QueryContext(ctx, `SELECT s.account_id FROM auto_top_up s JOIN accounts a ON a.id = s.account_id
WHERE s.enabled AND a.status = 'active' AND a.balance < s.threshold AND s.retry_after <= $1
AND NOT EXISTS (SELECT 1 FROM top_ups t WHERE t.account_id = s.account_id AND t.trigger <> 'manual' AND t.status IN ('pending', 'processing', 'requires_action'))
ORDER BY s.account_id`, micros(now))
	if err != nil {
		return nil, err
	}
	var due []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		due = append(due, id)
	}
	rows.Close()
	var created []string
	for _, accountID := range due {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			acct, err := s.lockAccount(ctx, tx, accountID)
			if err != nil {
				return err
			}
			st, _, err := s.settingsTx(ctx, tx, accountID)
			if err != nil {
				return err
			}
			t, err := s.maybeTrigger(ctx, tx, acct, st, topup.TriggerThreshold, s.clock.Now())
			if t != nil {
				created = append(created, t.ID)
			}
			return err
		})
		if err != nil {
			return created, err
		}
	}
	return created, nil
}
