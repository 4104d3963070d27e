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
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// Refunds stores what happens to top-ups after their charge succeeded:
// refunds (asked for through the API or made at the provider) and
// disputes. The rules are package refund's and ledger.ClawBack's; this
// store loads a top-up's tally and grant under its account's lock, calls
// them, and writes what they return in the same transaction.
type Refunds struct{ *core }

const refundCols = `id, account_id, top_up_id, amount, status, reason, COALESCE(provider_id, ''), taken, created_at, completed_at`

// scanRefund reads refundCols, then into extra whatever the query selects
// after them (the request hash, for a replay).
func scanRefund(r rowScanner, extra ...any) (refund.Refund, error) {
	var out refund.Refund
	var status string
	var created, completed int64
	err := r.Scan(append([]any{&out.ID, &out.AccountID, &out.TopUpID, &out.Amount, &status, &out.Reason, &out.ProviderID, &out.Taken, &created, &completed}, extra...)...)
	out.Status, out.CreatedAt = refund.Status(status), fromMicros(created)
	if completed != 0 {
		out.CompletedAt = fromMicros(completed)
	}
	return out, err
}

// CreateRefund records a refund asked for through the API, pending, with
// its provider key derived from its id: the row exists before the provider
// is ever called. The same key with the same request replays the refund
// (replayed true); with another request it is an idempotency conflict. A
// top-up that did not succeed answers 409 conflict; the amount rules are
// refund.Check's (400 on amount, 409 while a dispute is open).
func (s *Refunds) CreateRefund(ctx context.Context, req refund.Request) (out refund.Refund, replayed bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		replayed = false
		// The top-up, then its account: the order Settle locks them in.
		t, err := s.lockTopUp(ctx, tx, req.TopUpID)
		if err != nil || t.AccountID != req.AccountID {
			return notFound("top-up", req.TopUpID)
		}
		if _, err := s.lockAccount(ctx, tx, req.AccountID); err != nil {
			return err
		}
		var hash string
		out, err = scanRefund(tx.QueryRowContext(ctx, `SELECT `+refundCols+`, request_hash FROM refunds WHERE account_id = $1 AND idempotency_key = $2`,
			req.AccountID, req.IdempotencyKey), &hash)
		if err == nil {
			if hash != req.Hash() {
				return &apperr.Error{Code: apperr.IdempotencyConflict, Field: "idempotency_key", Message: "this idempotency_key was used with a different request"}
			}
			replayed = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if t.Status != topup.Succeeded || t.Amount == nil {
			return apperr.New(apperr.Conflict, "top-up %s is %s: only a succeeded top-up can be refunded", t.ID, t.Status)
		}
		tally, err := s.tallyTx(ctx, tx, t.ID, *t.Amount)
		if err != nil {
			return err
		}
		amount, err := refund.Check(tally, req.Amount, req.Explicit)
		if err != nil {
			return err
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		out = refund.Refund{ID: s.ids.New("rf"), AccountID: req.AccountID, TopUpID: t.ID, Amount: amount, Status: refund.Pending, Reason: req.Reason, CreatedAt: now}
		_, err = tx.ExecContext(ctx, `INSERT INTO refunds (id, account_id, top_up_id, amount, status, reason, idempotency_key, request_hash, next_attempt_at,
lease_until, created_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $8)`,
			out.ID, out.AccountID, out.TopUpID, int64(amount), out.Reason, req.IdempotencyKey, req.Hash(), micros(now), micros(now.Add(req.Lease)))
		return err
	})
	return out, replayed, err
}

// tallyTx is what refunds and disputes did to a top-up of amount so far.
func (s *core) tallyTx(ctx context.Context, tx *sql.Tx, topUpID string, amount money.Amount) (refund.Tally, error) {
	t := refund.Tally{Amount: amount}
	var open int
	err := tx.QueryRowContext(ctx, `SELECT
COALESCE((SELECT CAST(SUM(amount) AS BIGINT) FROM refunds WHERE top_up_id = $1 AND status IN ('pending', 'succeeded')), 0),
COALESCE((SELECT CAST(SUM(withdrawn) AS BIGINT) FROM disputes WHERE top_up_id = $1 AND was_drawn AND NOT reinstated), 0),
(SELECT COUNT(*) FROM disputes WHERE top_up_id = $1 AND status = 'open')`, topUpID).Scan(&t.Refunded, &t.Disputed, &open)
	t.OpenDispute = open > 0
	return t, err
}

// returnsTx is what the top-up's succeeded refunds and withdrawn disputes
// accounted to its grant, and what of the grant expired or was voided.
func (s *core) returnsTx(ctx context.Context, tx *sql.Tx, topUpID, grantID string) (ledger.Returns, error) {
	var r ledger.Returns
	err := tx.QueryRowContext(ctx, `SELECT
COALESCE((SELECT CAST(SUM(reclaimed) AS BIGINT) FROM refunds WHERE top_up_id = $1 AND status = 'succeeded'), 0) +
COALESCE((SELECT CAST(SUM(reclaimed) AS BIGINT) FROM disputes WHERE top_up_id = $1 AND was_drawn AND NOT reinstated), 0),
COALESCE((SELECT CAST(SUM(from_spent) AS BIGINT) FROM refunds WHERE top_up_id = $1 AND status = 'succeeded'), 0) +
COALESCE((SELECT CAST(SUM(from_spent) AS BIGINT) FROM disputes WHERE top_up_id = $1 AND was_drawn AND NOT reinstated), 0),
COALESCE((SELECT CAST(SUM(from_lost) AS BIGINT) FROM refunds WHERE top_up_id = $1 AND status = 'succeeded'), 0) +
COALESCE((SELECT CAST(SUM(from_lost) AS BIGINT) FROM disputes WHERE top_up_id = $1 AND was_drawn AND NOT reinstated), 0),
COALESCE((SELECT CAST(-SUM(amount) AS BIGINT) FROM entries WHERE grant_id = $2 AND kind IN ('expiration', 'void')), 0)`,
		topUpID, grantID).Scan(&r.Reclaimed, &r.FromSpent, &r.FromLost, &r.Lost)
	return r, err
}

// topUpGrantTx returns the grant a top-up's credit made, as it now is. A
// top-up credited before grants existed has none: its money went into the
// account's migration grant, so it stands for a grant of the top-up's
// amount with nothing left (all of it counts as spent: a refund takes from
// the account's grants in spending order).
func (s *core) topUpGrantTx(ctx context.Context, tx *sql.Tx, t topup.TopUp) (*ledger.Grant, error) {
	var grantID sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT grant_id FROM entries WHERE top_up_id = $1 AND kind = 'top_up'`, t.ID).Scan(&grantID)
	if err != nil {
		return nil, fmt.Errorf("credit of top-up %s: %w", t.ID, err)
	}
	if !grantID.Valid || grantID.String == "" {
		return &ledger.Grant{AccountID: t.AccountID, Category: ledger.Paid, Source: ledger.SourceTopUp, SourceID: t.ID, Amount: *t.Amount,
			Priority: ledger.DefaultPaidPriority, Status: ledger.GrantUsed}, nil
	}
	g, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+GrantColumns+` FROM grants WHERE id = $1`, grantID.String))
	if err != nil {
		return nil, fmt.Errorf("grant %s of top-up %s: %w", grantID.String, t.ID, err)
	}
	return g, nil
}

// clawState is what a refund's or a dispute's entry needs, loaded under the
// account's lock: the account with its wallet, the top-up, its grant (the
// wallet's own copy when active) and that grant's Returns.
type clawState struct {
	acct    ledger.AccountState
	topUp   topup.TopUp
	grant   *ledger.Grant
	returns ledger.Returns
}

func (s *core) loadClaw(ctx context.Context, tx *sql.Tx, topUpID string) (*clawState, error) {
	t, err := s.lockTopUp(ctx, tx, topUpID)
	if err != nil {
		return nil, err
	}
	c := &clawState{topUp: t}
	if c.acct, err = s.lockAccount(ctx, tx, t.AccountID); err != nil {
		return nil, err
	}
	if err := s.loadWallet(ctx, tx, &c.acct); err != nil {
		return nil, err
	}
	if c.grant, err = s.topUpGrantTx(ctx, tx, t); err != nil {
		return nil, err
	}
	for _, g := range c.acct.Wallet.Grants() {
		if g.ID == c.grant.ID {
			c.grant = g
		}
	}
	c.returns, err = s.returnsTx(ctx, tx, t.ID, c.grant.ID)
	return c, err
}

// writeClaw writes what ClawBack or GiveBack did: the entry, the grant a
// reversal made, the grants the wallet changed, the balance and the daily
// totals.
func (s *core) writeClaw(ctx context.Context, tx *sql.Tx, c *clawState, e *ledger.Entry, made *ledger.Grant, now time.Time) error {
	if e == nil {
		return nil
	}
	var grants []*ledger.Grant
	if made != nil {
		grants = append(grants, made)
	}
	accts := map[string]*ledger.AccountState{c.acct.ID: &c.acct}
	return s.writeLedger(ctx, tx, grants, accts, []ledger.Entry{*e}, nil, now)
}

// ApplyRefund applies the provider's word on a refund, once, whatever
// order words come in (refund.Refund.Observe): a refund that succeeded
// writes its entry (ledger.ClawBack) and tells the customer; one that
// failed after it succeeded writes its reversal (ledger.GiveBack). A
// refund made at the provider directly is recorded the first time it is
// heard of, matched by its provider id so that Topup's own refunds are
// never counted twice. It returns the refund as it then is; ok is false
// when the word names no top-up Topup has (nothing is written).
func (s *Refunds) ApplyRefund(ctx context.Context, w refund.Word) (out refund.Refund, ok bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out, ok = refund.Refund{}, false
		r, found, err := s.findRefundTx(ctx, tx, w)
		if err != nil || !found {
			return err
		}
		c, err := s.loadClaw(ctx, tx, r.TopUpID)
		if err != nil {
			return err
		}
		// The refund row again, now that its account is locked.
		if r, err = scanRefund(tx.QueryRowContext(ctx, `SELECT `+refundCols+` FROM refunds WHERE id = $1`, r.ID)); err != nil {
			return err
		}
		out, ok = r, true
		return s.observeTx(ctx, tx, c, &out, w)
	})
	return out, ok, err
}

// findRefundTx finds the refund w is about: by Topup's id, by the
// provider's, or (a refund made at the provider) records it now, pending,
// for the top-up whose charge it refunds.
func (s *core) findRefundTx(ctx context.Context, tx *sql.Tx, w refund.Word) (refund.Refund, bool, error) {
	q, arg := `SELECT `+refundCols+` FROM refunds WHERE provider_id = $1`, w.ProviderID
	if w.RefundID != "" {
		q, arg = `SELECT `+refundCols+` FROM refunds WHERE id = $1`, w.RefundID
	}
	r, err := scanRefund(tx.QueryRowContext(ctx, q, arg))
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return r, err == nil, err
	}
	if w.RefundID != "" || w.ProviderID == "" {
		return r, false, nil
	}
	var t topup.TopUp
	t, err = scanTopUp(tx.QueryRowContext(ctx, `SELECT `+topUpCols+topUpFrom+` WHERE t.charge_id = $1 AND t.status = 'succeeded'`, w.ChargeID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	amount, err := money.FromMinor(w.AmountMinor, t.Currency)
	if err != nil || amount <= 0 {
		return r, false, fmt.Errorf("refund %s of %d minor units: %w", w.ProviderID, w.AmountMinor, err)
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	r = refund.Refund{ID: s.ids.New("rf"), AccountID: t.AccountID, TopUpID: t.ID, Amount: amount, Status: refund.Pending, Reason: w.Reason,
		ProviderID: w.ProviderID, CreatedAt: now}
	// Two copies of the provider's event applied at once both miss the
	// row: the second waits for the first's insert, inserts nothing, and
	// reads the row the first recorded.
	res, err := tx.ExecContext(ctx, `INSERT INTO refunds (id, account_id, top_up_id, amount, status, reason, provider_id, created_at)
VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7) ON CONFLICT (provider_id) WHERE provider_id IS NOT NULL DO NOTHING`,
		r.ID, r.AccountID, r.TopUpID, int64(amount), r.Reason, r.ProviderID, micros(now))
	if err != nil {
		return r, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return r, err == nil, err
	}
	r, err = scanRefund(tx.QueryRowContext(ctx, `SELECT `+refundCols+` FROM refunds WHERE provider_id = $1`, w.ProviderID))
	return r, err == nil, err
}

// observeTx applies w to r (locked, with its account's claw state) and
// writes the refund row.
func (s *core) observeTx(ctx context.Context, tx *sql.Tx, c *clawState, r *refund.Refund, w refund.Word) error {
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	eff := r.Observe(w.Status)
	var split ledger.Returns
	switch {
	case eff.Claw:
		e, cb, err := ledger.ClawBack(now, s.ids.New, &c.acct, ledger.KindRefund, r.ID, c.grant, c.returns, r.Amount)
		if err != nil {
			return fmt.Errorf("refund %s: %w", r.ID, err)
		}
		if err := s.writeClaw(ctx, tx, c, e, nil, now); err != nil {
			return err
		}
		r.Taken = cb.Taken
		split = ledger.Returns{Reclaimed: cb.Returns.Reclaimed - c.returns.Reclaimed, FromSpent: cb.Returns.FromSpent - c.returns.FromSpent,
			FromLost: cb.Returns.FromLost - c.returns.FromLost}
		if _, err := tx.ExecContext(ctx, `UPDATE top_ups SET amount_refunded = amount_refunded + $1 WHERE id = $2`, int64(r.Amount), r.TopUpID); err != nil {
			return err
		}
		if err := s.writeEvents(ctx, tx, []ledger.Event{refundedEvent(c.topUp, *r)}, now); err != nil {
			return err
		}
	case eff.Reverse:
		if err := s.reverseRefundTx(ctx, tx, c, r, now); err != nil {
			return err
		}
	}
	if eff.Status == r.Status && !eff.Claw {
		if w.ProviderID != "" && r.ProviderID == "" {
			r.ProviderID = w.ProviderID
			_, err := tx.ExecContext(ctx, `UPDATE refunds SET provider_id = $1 WHERE id = $2`, w.ProviderID, r.ID)
			return err
		}
		return nil
	}
	r.Status, r.CompletedAt = eff.Status, now
	if r.ProviderID == "" {
		r.ProviderID = w.ProviderID
	}
	_, err := tx.ExecContext(ctx, `UPDATE refunds SET status = $1, provider_id = $2, failure_reason = $3, taken = $4, reclaimed = reclaimed + $5,
from_spent = from_spent + $6, from_lost = from_lost + $7, completed_at = $8, lease_until = 0 WHERE id = $9`,
		string(r.Status), NullIfEmpty(r.ProviderID), w.FailureReason, int64(r.Taken), int64(split.Reclaimed), int64(split.FromSpent), int64(split.FromLost),
		micros(now), r.ID)
	return err
}

// reverseRefundTx gives back what a refund that failed after it succeeded
// took: its refund_reversal entry and grant; the refund's row, failed from
// now on, no longer counts in the grant's Returns.
func (s *core) reverseRefundTx(ctx context.Context, tx *sql.Tx, c *clawState, r *refund.Refund, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE top_ups SET amount_refunded = amount_refunded - $1 WHERE id = $2`, int64(r.Amount), r.TopUpID); err != nil {
		return err
	}
	if r.Taken == 0 {
		return nil
	}
	var undo ledger.Returns
	if err := tx.QueryRowContext(ctx, `SELECT reclaimed, from_spent, from_lost FROM refunds WHERE id = $1`, r.ID).Scan(&undo.Reclaimed, &undo.FromSpent, &undo.FromLost); err != nil {
		return err
	}
	e, g, _, err := ledger.GiveBack(now, s.ids.New, &c.acct, ledger.KindRefundReversal, r.ID, c.grant, c.returns, undo, r.Taken)
	if err != nil {
		return fmt.Errorf("reverse refund %s: %w", r.ID, err)
	}
	return s.writeClaw(ctx, tx, c, &e, g, now)
}

// refundedEvent tells the customer a refund of their top-up went through
// (top_up.refunded): like every top_up.* event its data is the top-up (as
// the API shows it), here with the refund.
func refundedEvent(t topup.TopUp, r refund.Refund) ledger.Event {
	data := topup.EventData(t, "")
	data["refund"] = map[string]any{"id": r.ID, "amount": r.Amount.Format(t.Currency), "status": string(refund.Succeeded), "reason": r.Reason,
		"created_at": ledger.FormatTime(r.CreatedAt)}
	return ledger.Event{AccountID: t.AccountID, Type: EventTopUpRefunded, Data: data}
}

// The events of refunds and disputes.
const (
	EventTopUpRefunded = topup.EventTopUpRefunded
	EventTopUpDisputed = topup.EventTopUpDisputed
)

// ListRefunds lists a top-up's refunds, newest first.
func (s *Refunds) ListRefunds(ctx context.Context, accountID, topUpID string) ([]refund.Refund, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+refundCols+` FROM refunds WHERE account_id = $1 AND top_up_id = $2 ORDER BY created_at DESC, id DESC`, accountID, topUpID)
	if err != nil {
		return nil, fmt.Errorf("refunds of %s: %w", topUpID, err)
	}
	defer rows.Close()
	var out []refund.Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ClaimRefunds leases up to limit pending refunds whose next attempt has
// come and whose lease ran out to the caller, with what asking the
// provider needs (the charge and its currency). On PostgreSQL, SKIP LOCKED
// lets replicas claim different rows.
func (s *Refunds) ClaimRefunds(ctx context.Context, lease time.Duration, limit int) ([]refund.Due, error) {
	var out []refund.Due
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		ids, err := s.claimDue(ctx, tx, "refunds", "status = 'pending'", ", attempts = attempts + 1", s.clock.Now(), lease, limit)
		if err != nil {
			return err
		}
		for _, id := range ids {
			d, err := s.dueTx(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// RefundDue returns a refund with what asking the provider needs.
func (s *Refunds) RefundDue(ctx context.Context, id string) (refund.Due, error) {
	var out refund.Due
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.dueTx(ctx, tx, id)
		return err
	})
	return out, err
}

func (s *core) dueTx(ctx context.Context, tx *sql.Tx, id string) (refund.Due, error) {
	var d refund.Due
	var status, cur string
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT r.id, r.account_id, r.top_up_id, r.amount, r.status, r.reason, COALESCE(r.provider_id, ''), r.attempts, r.created_at,
t.charge_id, a.currency FROM refunds r JOIN top_ups t ON t.id = r.top_up_id JOIN accounts a ON a.id = r.account_id WHERE r.id = $1`, id).
		Scan(&d.ID, &d.AccountID, &d.TopUpID, &d.Amount, &status, &d.Reason, &d.ProviderID, &d.Attempts, &created, &d.ChargeID, &cur)
	if errors.Is(err, sql.ErrNoRows) {
		return d, notFound("refund", id)
	}
	if err != nil {
		return d, err
	}
	d.Status, d.CreatedAt = refund.Status(status), fromMicros(created)
	d.Currency, err = money.LookupCurrency(cur)
	return d, err
}

// RenewRefund extends a pending refund's claim to until (never shortens
// it).
func (s *Refunds) RenewRefund(ctx context.Context, id string, until time.Time) error {
	_, err := s.write.ExecContext(ctx, `UPDATE refunds SET lease_until = $1 WHERE id = $2 AND status = 'pending' AND lease_until < $1`, micros(until), id)
	if err != nil {
		return fmt.Errorf("renew the claim on refund %s: %w", id, err)
	}
	return nil
}

// RetryRefund releases a pending refund's claim and sets when the worker
// asks the provider again (after an unknown outcome, or to learn what
// became of a refund the provider left pending).
func (s *Refunds) RetryRefund(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE refunds SET next_attempt_at = $1, lease_until = 0 WHERE id = $2 AND status = 'pending'`, micros(at), id)
	if err != nil {
		return fmt.Errorf("retry refund %s: %w", id, err)
	}
	return nil
}
