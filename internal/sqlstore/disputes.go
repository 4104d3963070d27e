package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

const disputeCols = `id, account_id, top_up_id, provider_id, amount, status, reason, withdrawn, was_drawn, reinstated, taken, created_at, closed_at`

// Dispute is a dispute as the store keeps it and answers one event of it
// with (refund.DisputeRecord: what its entry took, what the event did).
type Dispute = refund.DisputeRecord

func scanDispute(r rowScanner) (Dispute, error) {
	var d Dispute
	var status string
	var created, closed int64
	err := r.Scan(&d.ID, &d.AccountID, &d.TopUpID, &d.ProviderID, &d.Amount, &status, &d.Reason, &d.Withdrawn, &d.WasDrawn, &d.Reinstated,
		&d.Taken, &created, &closed)
	d.Status, d.CreatedAt = refund.DisputeStatus(status), fromMicros(created)
	if closed != 0 {
		d.ClosedAt = fromMicros(closed)
	}
	return d, err
}

// ApplyDispute applies one provider event of a dispute, once, in any order
// (refund.Dispute.Apply): the first event heard of a dispute records it,
// switches Automatic Top-Up off (disabled_reason dispute), cancels the
// account's automatic top-ups not yet attempted and tells the customer
// (top_up.disputed); a withdrawal writes the dispute's entry
// (ledger.ClawBack, capped at what refunds and other disputes left); a
// won dispute's reinstatement gives back what the entry took
// (ledger.GiveBack: a dispute_reversal entry and grant). ok is false when
// the word names no succeeded top-up Topup has.
func (s *Refunds) ApplyDispute(ctx context.Context, w refund.DisputeWord) (out Dispute, ok bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out, ok = Dispute{}, false
		var topUpID string
		err := tx.QueryRowContext(ctx, `SELECT id FROM top_ups WHERE charge_id = $1 AND status = 'succeeded'`, w.ChargeID).Scan(&topUpID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		c, err := s.loadClaw(ctx, tx, topUpID)
		if err != nil {
			return err
		}
		d, err := scanDispute(tx.QueryRowContext(ctx, `SELECT `+disputeCols+` FROM disputes WHERE provider_id = $1`, w.ProviderID))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		fresh := errors.Is(err, sql.ErrNoRows)
		amount, err := money.FromMinor(w.AmountMinor, c.topUp.Currency)
		if err != nil {
			return fmt.Errorf("dispute %s of %d minor units: %w", w.ProviderID, w.AmountMinor, err)
		}
		tally, err := s.tallyTx(ctx, tx, topUpID, *c.topUp.Amount)
		if err != nil {
			return err
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		next, eff := d.Dispute.Apply(refund.DisputeEvent{Kind: w.Kind, Amount: amount, Won: w.Won, Reason: w.Reason, At: now}, tally)
		out, ok = Dispute{Dispute: next, Taken: d.Taken, Effect: eff}, true
		if fresh {
			out.ID, out.AccountID, out.TopUpID, out.ProviderID, out.CreatedAt = s.ids.New("dp"), c.acct.ID, topUpID, w.ProviderID, now
		}
		return s.disputeEffectTx(ctx, tx, c, &out, eff, fresh, now)
	})
	return out, ok, err
}

// disputeEffectTx does what one dispute event decided and writes the
// dispute's row.
func (s *core) disputeEffectTx(ctx context.Context, tx *sql.Tx, c *clawState, d *Dispute, eff refund.DisputeEffect, fresh bool, now time.Time) error {
	var split ledger.Returns
	if eff.Withdraw > 0 {
		e, cb, err := ledger.ClawBack(now, s.ids.New, &c.acct, ledger.KindDispute, d.ID, c.grant, c.returns, eff.Withdraw)
		if err != nil {
			return fmt.Errorf("dispute %s: %w", d.ID, err)
		}
		if err := s.writeClaw(ctx, tx, c, e, nil, now); err != nil {
			return err
		}
		d.Taken = cb.Taken
		split = ledger.Returns{Reclaimed: cb.Returns.Reclaimed - c.returns.Reclaimed, FromSpent: cb.Returns.FromSpent - c.returns.FromSpent,
			FromLost: cb.Returns.FromLost - c.returns.FromLost}
		c.returns = cb.Returns
	}
	if fresh {
		if err := s.insertDispute(ctx, tx, d, split); err != nil {
			return err
		}
	} else if _, err := tx.ExecContext(ctx, `UPDATE disputes SET amount = $1, status = $2, withdrawn = $3, was_drawn = $4, reinstated = $5, taken = $6,
reclaimed = reclaimed + $7, from_spent = from_spent + $8, from_lost = from_lost + $9, closed_at = $10 WHERE id = $11`,
		int64(d.Amount), string(d.Status), int64(d.Withdrawn), d.WasDrawn, d.Reinstated, int64(d.Taken), int64(split.Reclaimed), int64(split.FromSpent),
		int64(split.FromLost), timeArg(d.ClosedAt), d.ID); err != nil {
		return fmt.Errorf("write dispute %s: %w", d.ID, err)
	}
	if eff.Reinstate && d.Taken > 0 {
		var undo ledger.Returns
		if err := tx.QueryRowContext(ctx, `SELECT reclaimed, from_spent, from_lost FROM disputes WHERE id = $1`, d.ID).Scan(&undo.Reclaimed, &undo.FromSpent, &undo.FromLost); err != nil {
			return err
		}
		e, g, _, err := ledger.GiveBack(now, s.ids.New, &c.acct, ledger.KindDisputeReversal, d.ID, c.grant, c.returns, undo, d.Taken)
		if err != nil {
			return fmt.Errorf("reinstate dispute %s: %w", d.ID, err)
		}
		if err := s.writeClaw(ctx, tx, c, &e, g, now); err != nil {
			return err
		}
	}
	if eff.Opened {
		return s.disputeOpenedTx(ctx, tx, c, d, now)
	}
	return nil
}

func (s *core) insertDispute(ctx context.Context, tx *sql.Tx, d *Dispute, split ledger.Returns) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO disputes (id, account_id, top_up_id, provider_id, amount, status, reason, withdrawn, was_drawn, reinstated,
taken, reclaimed, from_spent, from_lost, created_at, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		d.ID, d.AccountID, d.TopUpID, d.ProviderID, int64(d.Amount), string(d.Status), d.Reason, int64(d.Withdrawn), d.WasDrawn, d.Reinstated,
		int64(d.Taken), int64(split.Reclaimed), int64(split.FromSpent), int64(split.FromLost), micros(d.CreatedAt), timeArg(d.ClosedAt))
	if err != nil {
		return fmt.Errorf("record dispute %s: %w", d.ProviderID, err)
	}
	return nil
}

// disputeOpenedTx does what hearing of a dispute does, once per dispute:
// Automatic Top-Up is switched off (dispute, audited, the customer told),
// the account's automatic top-ups not yet attempted are canceled, the
// customer is told of the dispute; Opened tells the caller, which logs it
// and counts it for the operator.
func (s *core) disputeOpenedTx(ctx context.Context, tx *sql.Tx, c *clawState, d *Dispute, now time.Time) error {
	if err := s.switchOffTx(ctx, tx, c.acct.ID, topup.Disputed, false); err != nil {
		return err
	}
	d.Opened = true
	// Like every top_up.* event, its data is the top-up (as the API shows
	// it), here with the dispute as first heard.
	data := topup.EventData(c.topUp, "")
	data["dispute"] = map[string]any{"id": d.ID, "amount": d.Amount.Format(c.topUp.Currency), "status": string(d.Status), "reason": d.Reason,
		"created_at": ledger.FormatTime(d.CreatedAt)}
	return s.writeEvents(ctx, tx, []ledger.Event{{AccountID: c.acct.ID, Type: EventTopUpDisputed, Data: data}}, now)
}

// ListDisputes lists an account's disputes, newest first.
func (s *Refunds) ListDisputes(ctx context.Context, accountID string) ([]Dispute, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+disputeCols+` FROM disputes WHERE account_id = $1 ORDER BY created_at DESC, id DESC`, accountID)
	if err != nil {
		return nil, fmt.Errorf("disputes of %s: %w", accountID, err)
	}
	defer rows.Close()
	var out []Dispute
	for rows.Next() {
		d, err := scanDispute(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
