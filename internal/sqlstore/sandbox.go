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

// This file is sandbox.Store: the sandbox payment provider's charges, cards
// and setup sessions (migration 0003_sandbox).

var _ sandbox.Store = (*Sandbox)(nil)

const sandboxChargeCols = `id, idempotency_key, top_up_id, customer, payment_method, amount, currency, status, decline_code, client_secret, off_session, created_at`

func scanSandboxCharge(r rowScanner) (sandbox.Charge, error) {
	var c sandbox.Charge
	var status string
	var at int64
	err := r.Scan(&c.ID, &c.IdempotencyKey, &c.TopUpID, &c.Customer, &c.PaymentMethod, &c.Amount, &c.Currency,
		&status, &c.DeclineCode, &c.ClientSecret, &c.OffSession, &at)
	c.Status, c.CreatedAt = payment.ChargeStatus(status), fromMicros(at)
	return c, err
}

// sandboxQuerier is a pool or a transaction.
type sandboxQuerier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func sandboxChargeTx(ctx context.Context, q sandboxQuerier, id string) (sandbox.Charge, error) {
	c, err := scanSandboxCharge(q.QueryRowContext(ctx, `SELECT `+sandboxChargeCols+` FROM sandbox_charges WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sandbox.Charge{}, fmt.Errorf("no sandbox charge %s: %w", id, payment.ErrNotFound)
	}
	if err != nil {
		return sandbox.Charge{}, fmt.Errorf("read sandbox charge %s: %w", id, err)
	}
	return c, nil
}

// SandboxChargeForKey returns the charge an idempotency key made, if the
// key was used since forgetBefore.
func (s *Sandbox) SandboxChargeForKey(ctx context.Context, key string, forgetBefore time.Time) (sandbox.Charge, bool, error) {
	c, err := scanSandboxCharge(s.read.QueryRowContext(ctx, `SELECT c.id, c.idempotency_key, c.top_up_id, c.customer, c.payment_method, c.amount, c.currency,
c.status, c.decline_code, c.client_secret, c.off_session, c.created_at
FROM sandbox_idempotency_keys k JOIN sandbox_charges c ON c.id = k.charge_id
WHERE k.idempotency_key = $1 AND k.created_at >= $2`, key, micros(forgetBefore)))
	if errors.Is(err, sql.ErrNoRows) {
		return sandbox.Charge{}, false, nil
	}
	if err != nil {
		return sandbox.Charge{}, false, fmt.Errorf("read sandbox charge for key: %w", err)
	}
	return c, true, nil
}

// SandboxInsertCharge records c unless its idempotency key made a charge
// since forgetBefore, which it then returns. The key row is claimed first,
// with an upsert that only takes over a forgotten key, so that two
// transactions racing with one key (PostgreSQL's row lock, SQLite's single
// writer) make one charge between them.
func (s *Sandbox) SandboxInsertCharge(ctx context.Context, c sandbox.Charge, forgetBefore time.Time) (sandbox.Charge, bool, error) {
	var out sandbox.Charge
	var inserted bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		inserted = false
		if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_idempotency_keys (idempotency_key, charge_id, created_at) VALUES ($1, $2, $3)
ON CONFLICT (idempotency_key) DO UPDATE SET charge_id = excluded.charge_id, created_at = excluded.created_at
WHERE sandbox_idempotency_keys.created_at < $4`, c.IdempotencyKey, c.ID, micros(c.CreatedAt), micros(forgetBefore)); err != nil {
			return fmt.Errorf("claim sandbox idempotency key: %w", err)
		}
		var chargeID string
		if err := tx.QueryRowContext(ctx, `SELECT charge_id FROM sandbox_idempotency_keys WHERE idempotency_key = $1`, c.IdempotencyKey).Scan(&chargeID); err != nil {
			return fmt.Errorf("read sandbox idempotency key: %w", err)
		}
		if chargeID != c.ID {
			var err error
			out, err = sandboxChargeTx(ctx, tx, chargeID)
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_charges (`+sandboxChargeCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			c.ID, c.IdempotencyKey, c.TopUpID, c.Customer, c.PaymentMethod, c.Amount, c.Currency,
			string(c.Status), c.DeclineCode, c.ClientSecret, c.OffSession, micros(c.CreatedAt)); err != nil {
			return fmt.Errorf("insert sandbox charge: %w", err)
		}
		out, inserted = c, true
		return nil
	})
	if err != nil {
		return sandbox.Charge{}, false, err
	}
	// What was written reads back at the database's microseconds.
	out.CreatedAt = fromMicros(micros(out.CreatedAt))
	return out, inserted, nil
}

// SandboxCharge returns a sandbox charge by id.
func (s *Sandbox) SandboxCharge(ctx context.Context, id string) (sandbox.Charge, error) {
	return sandboxChargeTx(ctx, s.read, id)
}

// SandboxChargesForTopUp returns the charges made for a top-up, of customer
// unless it is empty, newest first.
func (s *Sandbox) SandboxChargesForTopUp(ctx context.Context, customer, topUpID string) ([]sandbox.Charge, error) {
	q := `SELECT ` + sandboxChargeCols + ` FROM sandbox_charges WHERE top_up_id = $1`
	args := []any{topUpID}
	if customer != "" {
		q += ` AND customer = $2`
		args = append(args, customer)
	}
	cs, _, err := s.sandboxChargeList(ctx, q+` ORDER BY created_at DESC, id DESC`, args, -1)
	return cs, err
}

// SandboxUpdateCharge moves a charge from status from to status to.
func (s *Sandbox) SandboxUpdateCharge(ctx context.Context, id string, from, to payment.ChargeStatus, declineCode string) (sandbox.Charge, error) {
	var out sandbox.Charge
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE sandbox_charges SET status = $1, decline_code = $2 WHERE id = $3 AND status = $4`,
			string(to), declineCode, id, string(from)); err != nil {
			return fmt.Errorf("update sandbox charge %s: %w", id, err)
		}
		var err error
		out, err = sandboxChargeTx(ctx, tx, id)
		return err
	})
	return out, err
}

// SandboxCharges lists every sandbox charge, newest first.
func (s *Sandbox) SandboxCharges(ctx context.Context, limit int, startingAfter string) ([]sandbox.Charge, bool, error) {
	q := `SELECT ` + sandboxChargeCols + ` FROM sandbox_charges`
	var args []any
	if startingAfter != "" {
		if _, err := s.SandboxCharge(ctx, startingAfter); err != nil {
			if errors.Is(err, payment.ErrNotFound) {
				return nil, false, apperr.Invalidf("starting_after", "no sandbox charge %s", startingAfter)
			}
			return nil, false, err
		}
		q += ` WHERE id < $1`
		args = append(args, startingAfter)
	}
	return s.sandboxChargeList(ctx, q+` ORDER BY id DESC`, args, limit)
}

// sandboxChargeList runs a charge query, reading limit rows and telling
// whether there were more (all rows when limit is negative).
func (s *core) sandboxChargeList(ctx context.Context, q string, args []any, limit int) ([]sandbox.Charge, bool, error) {
	if limit >= 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit+1)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list sandbox charges: %w", err)
	}
	defer rows.Close()
	var out []sandbox.Charge
	for rows.Next() {
		c, err := scanSandboxCharge(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := limit >= 0 && len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// SandboxInsertCard saves an attached test card.
func (s *Sandbox) SandboxInsertCard(ctx context.Context, c sandbox.SavedCard) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sandbox_cards (id, token, customer, brand, last4, exp_month, exp_year, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.ID, c.Token, c.Customer, c.Brand, c.Last4, c.ExpMonth, c.ExpYear, micros(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert sandbox card: %w", err)
		}
		return nil
	})
}

// SandboxCard returns a sandbox card by id.
func (s *Sandbox) SandboxCard(ctx context.Context, id string) (sandbox.SavedCard, error) {
	c := sandbox.SavedCard{ID: id}
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT token, customer, brand, last4, exp_month, exp_year, created_at FROM sandbox_cards WHERE id = $1`, id).
		Scan(&c.Token, &c.Customer, &c.Brand, &c.Last4, &c.ExpMonth, &c.ExpYear, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return sandbox.SavedCard{}, fmt.Errorf("no sandbox card %s: %w", id, payment.ErrNotFound)
	}
	if err != nil {
		return sandbox.SavedCard{}, fmt.Errorf("read sandbox card %s: %w", id, err)
	}
	c.CreatedAt = fromMicros(at)
	return c, nil
}

// SandboxDetachCard takes a card from its customer; the row stays, so that
// detaching again succeeds and the card cannot be used again.
func (s *Sandbox) SandboxDetachCard(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sandbox_cards SET customer = '' WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("detach sandbox card %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no sandbox card %s: %w", id, payment.ErrNotFound)
		}
		return nil
	})
}

// SandboxInsertSession records a hosted setup session.
func (s *Sandbox) SandboxInsertSession(ctx context.Context, ss sandbox.Session) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sandbox_sessions (id, customer, account_id, success_url, cancel_url, card_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, ss.ID, ss.Customer, ss.AccountID, ss.SuccessURL, ss.CancelURL, ss.CardID, micros(ss.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert sandbox session: %w", err)
		}
		return nil
	})
}

// SandboxSession returns a hosted setup session by id.
func (s *Sandbox) SandboxSession(ctx context.Context, id string) (sandbox.Session, error) {
	ss := sandbox.Session{ID: id}
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT customer, account_id, success_url, cancel_url, card_id, created_at FROM sandbox_sessions WHERE id = $1`, id).
		Scan(&ss.Customer, &ss.AccountID, &ss.SuccessURL, &ss.CancelURL, &ss.CardID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return sandbox.Session{}, fmt.Errorf("no sandbox setup session %s: %w", id, payment.ErrNotFound)
	}
	if err != nil {
		return sandbox.Session{}, fmt.Errorf("read sandbox setup session %s: %w", id, err)
	}
	ss.CreatedAt = fromMicros(at)
	return ss, nil
}

// SandboxCompleteSession records the card a session saved, unless it has
// one already, and returns the session's card.
func (s *Sandbox) SandboxCompleteSession(ctx context.Context, id, cardID string) (string, error) {
	var out string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE sandbox_sessions SET card_id = $1 WHERE id = $2 AND card_id = ''`, cardID, id); err != nil {
			return fmt.Errorf("complete sandbox setup session %s: %w", id, err)
		}
		err := tx.QueryRowContext(ctx, `SELECT card_id FROM sandbox_sessions WHERE id = $1`, id).Scan(&out)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no sandbox setup session %s: %w", id, payment.ErrNotFound)
		}
		return err
	})
	return out, err
}
