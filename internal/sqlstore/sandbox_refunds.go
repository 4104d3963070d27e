package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
)

// This file is the refunds and disputes part of sandbox.Store (migration
// 0018_sandbox_refunds).

const sandboxRefundCols = `id, idempotency_key, refund_id, charge_id, top_up_id, amount, currency, reason, initial_status, status, failure_reason, created_at`

func scanSandboxRefund(r rowScanner) (sandbox.Refund, error) {
	var x sandbox.Refund
	var initial, status string
	var at int64
	err := r.Scan(&x.ID, &x.IdempotencyKey, &x.RefundID, &x.ChargeID, &x.TopUpID, &x.Amount, &x.Currency, &x.Reason,
		&initial, &status, &x.FailureReason, &at)
	x.InitialStatus, x.Status, x.CreatedAt = payment.RefundStatus(initial), payment.RefundStatus(status), fromMicros(at)
	return x, err
}

const sandboxDisputeCols = `id, charge_id, top_up_id, amount, currency, reason, status, funds_withdrawn, funds_reinstated, created_at, closed_at`

func scanSandboxDispute(r rowScanner) (sandbox.Dispute, error) {
	var d sandbox.Dispute
	var status string
	var at, closed int64
	err := r.Scan(&d.ID, &d.ChargeID, &d.TopUpID, &d.Amount, &d.Currency, &d.Reason, &status,
		&d.FundsWithdrawn, &d.FundsReinstated, &at, &closed)
	d.Status, d.CreatedAt = payment.DisputeStatus(status), fromMicros(at)
	if closed != 0 {
		d.ClosedAt = fromMicros(closed)
	}
	return d, err
}

// sandboxRowsQuerier is a pool or a transaction.
type sandboxRowsQuerier interface {
	sandboxQuerier
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

func sandboxRefundTx(ctx context.Context, q sandboxQuerier, id string) (sandbox.Refund, error) {
	r, err := scanSandboxRefund(q.QueryRowContext(ctx, `SELECT `+sandboxRefundCols+` FROM sandbox_refunds WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sandbox.Refund{}, fmt.Errorf("no sandbox refund %s: %w", id, payment.ErrNotFound)
	}
	if err != nil {
		return sandbox.Refund{}, fmt.Errorf("read sandbox refund %s: %w", id, err)
	}
	return r, nil
}

// sandboxRefundList runs a refund query.
func sandboxRefundList(ctx context.Context, q sandboxRowsQuerier, query string, args ...any) ([]sandbox.Refund, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list sandbox refunds: %w", err)
	}
	defer rows.Close()
	var out []sandbox.Refund
	for rows.Next() {
		r, err := scanSandboxRefund(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// sandboxChargeMoney loads a charge, locked, with its refunds and dispute.
func (s *Sandbox) sandboxChargeMoney(ctx context.Context, tx *sql.Tx, chargeID string) (sandbox.ChargeMoney, error) {
	var m sandbox.ChargeMoney
	c, err := scanSandboxCharge(tx.QueryRowContext(ctx, `SELECT `+sandboxChargeCols+` FROM sandbox_charges WHERE id = $1`+s.dialect.RowLock, chargeID))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("no sandbox charge %s: %w", chargeID, payment.ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("read sandbox charge %s: %w", chargeID, err)
	}
	m.Charge = c
	if m.Refunds, err = sandboxRefundList(ctx, tx, `SELECT `+sandboxRefundCols+` FROM sandbox_refunds WHERE charge_id = $1 ORDER BY created_at DESC, id DESC`, chargeID); err != nil {
		return m, err
	}
	d, err := scanSandboxDispute(tx.QueryRowContext(ctx, `SELECT `+sandboxDisputeCols+` FROM sandbox_disputes WHERE charge_id = $1`, chargeID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return m, fmt.Errorf("read the dispute of sandbox charge %s: %w", chargeID, err)
	default:
		m.Dispute = &d
	}
	return m, nil
}

// SandboxRefundForKey returns the refund an idempotency key made, if the
// key was used since forgetBefore.
func (s *Sandbox) SandboxRefundForKey(ctx context.Context, key string, forgetBefore time.Time) (sandbox.Refund, bool, error) {
	var id string
	err := s.read.QueryRowContext(ctx, `SELECT refund_id FROM sandbox_refund_keys WHERE idempotency_key = $1 AND created_at >= $2`,
		key, micros(forgetBefore)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return sandbox.Refund{}, false, nil
	}
	if err != nil {
		return sandbox.Refund{}, false, fmt.Errorf("read sandbox refund for key: %w", err)
	}
	r, err := sandboxRefundTx(ctx, s.read, id)
	return r, err == nil, err
}

// SandboxInsertRefund records r unless its idempotency key made a refund
// since forgetBefore, which it then returns. The key is claimed first, as
// for charges; then the charge is locked (PostgreSQL's row lock, SQLite's
// single writer), its refunds and dispute read, and check decides.
func (s *Sandbox) SandboxInsertRefund(ctx context.Context, r sandbox.Refund, forgetBefore time.Time, check func(sandbox.ChargeMoney) error) (sandbox.Refund, bool, error) {
	var out sandbox.Refund
	var inserted bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		inserted = false
		if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_refund_keys (idempotency_key, refund_id, created_at) VALUES ($1, $2, $3)
ON CONFLICT (idempotency_key) DO UPDATE SET refund_id = excluded.refund_id, created_at = excluded.created_at
WHERE sandbox_refund_keys.created_at < $4`, r.IdempotencyKey, r.ID, micros(r.CreatedAt), micros(forgetBefore)); err != nil {
			return fmt.Errorf("claim sandbox refund idempotency key: %w", err)
		}
		var refundID string
		if err := tx.QueryRowContext(ctx, `SELECT refund_id FROM sandbox_refund_keys WHERE idempotency_key = $1`, r.IdempotencyKey).Scan(&refundID); err != nil {
			return fmt.Errorf("read sandbox refund idempotency key: %w", err)
		}
		if refundID != r.ID {
			var err error
			out, err = sandboxRefundTx(ctx, tx, refundID)
			return err
		}
		m, err := s.sandboxChargeMoney(ctx, tx, r.ChargeID)
		if err != nil {
			return err
		}
		if err := check(m); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_refunds (`+sandboxRefundCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			r.ID, r.IdempotencyKey, r.RefundID, r.ChargeID, r.TopUpID, r.Amount, r.Currency, r.Reason,
			string(r.InitialStatus), string(r.Status), r.FailureReason, micros(r.CreatedAt)); err != nil {
			return fmt.Errorf("insert sandbox refund: %w", err)
		}
		out, inserted = r, true
		return nil
	})
	if err != nil {
		return sandbox.Refund{}, false, err
	}
	out.CreatedAt = fromMicros(micros(out.CreatedAt))
	return out, inserted, nil
}

// SandboxRefund returns a sandbox refund by id.
func (s *Sandbox) SandboxRefund(ctx context.Context, id string) (sandbox.Refund, error) {
	return sandboxRefundTx(ctx, s.read, id)
}

// SandboxRefundsOfCharge returns a charge's refunds, newest first.
func (s *Sandbox) SandboxRefundsOfCharge(ctx context.Context, chargeID string) ([]sandbox.Refund, error) {
	return sandboxRefundList(ctx, s.read, `SELECT `+sandboxRefundCols+` FROM sandbox_refunds WHERE charge_id = $1 ORDER BY created_at DESC, id DESC`, chargeID)
}

// SandboxUpdateRefund moves a refund from status from to status to.
func (s *Sandbox) SandboxUpdateRefund(ctx context.Context, id string, from, to payment.RefundStatus, failureReason string) (sandbox.Refund, error) {
	var out sandbox.Refund
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE sandbox_refunds SET status = $1, failure_reason = $2 WHERE id = $3 AND status = $4`,
			string(to), failureReason, id, string(from)); err != nil {
			return fmt.Errorf("update sandbox refund %s: %w", id, err)
		}
		var err error
		out, err = sandboxRefundTx(ctx, tx, id)
		return err
	})
	return out, err
}

// SandboxRefunds lists every sandbox refund, newest first.
func (s *Sandbox) SandboxRefunds(ctx context.Context, limit int, startingAfter string) ([]sandbox.Refund, bool, error) {
	q := `SELECT ` + sandboxRefundCols + ` FROM sandbox_refunds`
	var args []any
	if startingAfter != "" {
		if _, err := s.SandboxRefund(ctx, startingAfter); err != nil {
			if errors.Is(err, payment.ErrNotFound) {
				return nil, false, apperr.Invalidf("starting_after", "no sandbox refund %s", startingAfter)
			}
			return nil, false, err
		}
		q += ` WHERE id < $1`
		args = append(args, startingAfter)
	}
	out, err := sandboxRefundList(ctx, s.read, q+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, max(limit, 0)+1), args...)
	if err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// SandboxInsertDispute opens the dispute decide makes of a charge that has
// none, under the charge's lock.
func (s *Sandbox) SandboxInsertDispute(ctx context.Context, chargeID string, decide func(sandbox.ChargeMoney) (sandbox.Dispute, error)) (sandbox.Dispute, bool, error) {
	var out sandbox.Dispute
	var inserted bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		inserted = false
		m, err := s.sandboxChargeMoney(ctx, tx, chargeID)
		if err != nil {
			return err
		}
		if m.Dispute != nil {
			out = *m.Dispute
			return nil
		}
		d, err := decide(m)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_disputes (`+sandboxDisputeCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			d.ID, chargeID, d.TopUpID, d.Amount, d.Currency, d.Reason, string(d.Status),
			d.FundsWithdrawn, d.FundsReinstated, micros(d.CreatedAt), closedMicros(d.ClosedAt)); err != nil {
			return fmt.Errorf("insert sandbox dispute: %w", err)
		}
		d.ChargeID = chargeID
		out, inserted = d, true
		return nil
	})
	if err != nil {
		return sandbox.Dispute{}, false, err
	}
	out.CreatedAt = fromMicros(micros(out.CreatedAt))
	return out, inserted, nil
}

// closedMicros is a closing time as stored: 0 for none.
func closedMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

func (s *Sandbox) sandboxDisputeWhere(ctx context.Context, q sandboxQuerier, col, v string) (sandbox.Dispute, error) {
	d, err := scanSandboxDispute(q.QueryRowContext(ctx, `SELECT `+sandboxDisputeCols+` FROM sandbox_disputes WHERE `+col+` = $1`, v))
	if errors.Is(err, sql.ErrNoRows) {
		return sandbox.Dispute{}, fmt.Errorf("no sandbox dispute with %s %s: %w", col, v, payment.ErrNotFound)
	}
	if err != nil {
		return sandbox.Dispute{}, fmt.Errorf("read sandbox dispute %s: %w", v, err)
	}
	return d, nil
}

// SandboxDispute returns a sandbox dispute by id.
func (s *Sandbox) SandboxDispute(ctx context.Context, id string) (sandbox.Dispute, error) {
	return s.sandboxDisputeWhere(ctx, s.read, "id", id)
}

// SandboxDisputeOfCharge returns the dispute of a charge.
func (s *Sandbox) SandboxDisputeOfCharge(ctx context.Context, chargeID string) (sandbox.Dispute, error) {
	return s.sandboxDisputeWhere(ctx, s.read, "charge_id", chargeID)
}

// SandboxCloseDispute closes an open dispute.
func (s *Sandbox) SandboxCloseDispute(ctx context.Context, id string, to payment.DisputeStatus, at time.Time) (sandbox.Dispute, error) {
	var out sandbox.Dispute
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE sandbox_disputes SET status = $1, funds_reinstated = $2, closed_at = $3
WHERE id = $4 AND closed_at = 0`, string(to), to == payment.DisputeWon, closedMicros(at), id); err != nil {
			return fmt.Errorf("close sandbox dispute %s: %w", id, err)
		}
		var err error
		out, err = s.sandboxDisputeWhere(ctx, tx, "id", id)
		return err
	})
	return out, err
}
