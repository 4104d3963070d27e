package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/topup"
)

// Settle applies an outcome to a top-up in one transaction: topup.Transition
// decides the status, the ledger credit (once: a unique index allows one
// credit per top-up), the decline streak and back-off and the
// notifications; the credit goes through ledger.Credit and the balance
// writer of Post; a new top-up is created when the balance is still below
// the threshold; a success takes the next receipt number.
func (s *Payments) Settle(ctx context.Context, id string, o topup.Outcome, backoff time.Duration) (topup.Settled, error) {
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
		if ok, err := topup.Applies(t, o); !ok {
			return err
		}
		return s.settleTx(ctx, tx, &out, t, o, backoff)
	})
	return out, err
}

// settleTx loads what the transition needs (the account, locked, for a
// credit; the settings when they may change), lets topup.Transition
// decide, and writes the change.
func (s *core) settleTx(ctx context.Context, tx *sql.Tx, out *topup.Settled, t topup.TopUp, o topup.Outcome, backoff time.Duration) error {
	now := s.clock.Now()
	if o.Status == topup.RequiresAction && o.ActionToken == "" {
		// The secret in the action_url: 256 random bits (crypto/rand, or
		// the simulator's seed), never an id's.
		o.ActionToken = s.ids.Secret("act_")
	}
	acct, st, err := s.settleState(ctx, tx, t, o)
	if err != nil {
		return err
	}
	c, err := topup.Transition(t, o, st, now, topup.Policy{Backoff: backoff, PayURL: o.PayURL})
	if err != nil {
		return err
	}
	if c.Credit != nil {
		if err := s.credit(ctx, tx, &acct, *c.Credit, now); err != nil {
			return fmt.Errorf("credit top-up %s: %w", t.ID, err)
		}
	}
	if err := s.writeTopUp(ctx, tx, c.TopUp); err != nil {
		return err
	}
	out.TopUp, out.Changed, out.Credited, out.Disabled = c.TopUp, true, c.Credit != nil, c.Disabled
	if c.Settings != nil {
		if err := s.changeSettings(ctx, tx, t.AccountID, c.Actor, *st, *c.Settings, false); err != nil {
			return err
		}
		st = c.Settings
	}
	if err := s.writeEvents(ctx, tx, c.Events, now); err != nil {
		return err
	}
	if c.CheckNext {
		if out.Next, err = s.maybeTrigger(ctx, tx, acct, *st, topup.TriggerThreshold, now); err != nil {
			return err
		}
	}
	if c.Credit != nil {
		// Last: the receipt counter stays locked until the commit.
		return s.issueReceipt(ctx, tx, c.TopUp)
	}
	return nil
}

// settleState loads what settling o needs: for a success the account,
// locked (it is credited), and the settings (the streak ends, the next
// top-up is checked); for an automatic top-up's failure the settings (the
// streak grows). st is nil when the account never saved settings.
func (s *core) settleState(ctx context.Context, tx *sql.Tx, t topup.TopUp, o topup.Outcome) (acct ledger.AccountState, st *topup.Settings, err error) {
	credit := o.Status == topup.Succeeded
	if credit {
		if acct, err = s.lockAccount(ctx, tx, t.AccountID); err != nil {
			return acct, nil, err
		}
	}
	if !credit && ((o.Status != topup.Failed && o.Status != topup.Canceled) || t.Trigger == topup.TriggerManual) {
		return acct, nil, nil
	}
	loaded, ok, err := s.settingsTx(ctx, tx, t.AccountID)
	if ok {
		st = &loaded
	}
	return acct, st, err
}

// credit applies a credit that cannot be refused to the locked account
// through ledger.Credit, with the account's wallet (the new grant first
// pays any overdraft), and writes it with Post's writers: the grant, the
// entry, the daily totals and the balance.
func (s *core) credit(ctx context.Context, tx *sql.Tx, acct *ledger.AccountState, p ledger.Posting, now time.Time) error {
	now = now.UTC().Truncate(time.Microsecond)
	if err := s.loadWallet(ctx, tx, acct); err != nil {
		return err
	}
	if p.Kind == ledger.KindTopUp {
		// Paid credit: spent after promotional credit, expiring after
		// TOPUP_PAID_CREDIT_EXPIRY when that is set.
		p.Terms = ledger.GrantTerms{Category: ledger.Paid, Priority: ledger.DefaultPaidPriority}
		if s.paidCreditExpiry > 0 {
			p.Terms.ExpiresAt = now.Add(s.paidCreditExpiry)
		}
	}
	entry, grant, err := ledger.Credit(now, s.ids.New, acct, p)
	if err != nil {
		return err
	}
	return s.writeLedger(ctx, tx, []*ledger.Grant{grant}, map[string]*ledger.AccountState{acct.ID: acct}, []ledger.Entry{entry}, nil, now)
}

// writeTopUp writes what an outcome may change of a top-up — its amount
// too, when a success found the provider had charged another
// (Outcome.Charged) — and releases its claim.
func (s *core) writeTopUp(ctx context.Context, tx *sql.Tx, t topup.TopUp) error {
	var amount any
	if t.Amount != nil {
		amount = int64(*t.Amount)
	}
	_, err := tx.ExecContext(ctx, `UPDATE top_ups SET status = $1, charge_id = $2, client_secret = $3, action_token = $4, action_expires = $5,
failure_code = $6, completed_at = $7, next_attempt_at = $8, lease_until = 0, amount = COALESCE(CAST($10 AS BIGINT), amount) WHERE id = $9`,
		string(t.Status), t.ChargeID, t.ClientSecret, t.ActionToken, timeArg(t.ActionExpires), t.FailureCode, timeArg(t.CompletedAt),
		timeArg(t.NextAttemptAt), t.ID, amount)
	if err != nil {
		return fmt.Errorf("write top-up %s: %w", t.ID, err)
	}
	return nil
}

// ExpiredActions lists requires_action top-ups the customer left for 24
// hours; the engine cancels their charge and settles them (canceled,
// authentication_expired, a failure in the row).
func (s *Payments) ExpiredActions(ctx context.Context) ([]string, error) {
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
// an account with Automatic Top-Up on, active and with available credit
// (balance less held; the held it keeps may be stale only upwards, and the
// top-up is decided under the account's lock) below its threshold, with
// no open automatic top-up, becomes due for one by the clock alone. false
// when no such account waits. The engine sweeps then.
func (s *Payments) NextDue(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var due sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT MIN(s.retry_after) FROM auto_top_up s JOIN accounts a ON a.id = s.account_id
WHERE s.enabled AND s.retry_after > $1 AND a.status = 'active' AND a.balance - a.held < s.threshold
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
func (s *Payments) Sweep(ctx context.Context, backoff time.Duration) ([]string, error) {
	now := s.clock.Now()
	rows, err := s.read.QueryContext(ctx, `SELECT s.account_id FROM auto_top_up s JOIN accounts a ON a.id = s.account_id
WHERE s.enabled AND a.status = 'active' AND a.balance - a.held < s.threshold AND s.retry_after <= $1
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
