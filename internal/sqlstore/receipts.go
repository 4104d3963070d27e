package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/topup"
)

// issueReceipt gives a top-up that has just succeeded the next receipt
// number, in the transaction that marks it succeeded, and keeps the
// brand and last four of the card it was charged to. The counter is one
// row: UPDATE … RETURNING takes its row lock (PostgreSQL) or runs on the
// one writer (SQLite), so concurrent settles on any number of replicas
// take consecutive numbers in turn, and a settle that rolls back gives
// its number back with everything else. Settle calls it last, so the
// counter is held only until the commit that follows.
func (s *core) issueReceipt(ctx context.Context, tx *sql.Tx, t topup.TopUp) error {
	var n int64
	if err := tx.QueryRowContext(ctx, `UPDATE receipt_counter SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&n); err != nil {
		return fmt.Errorf("receipt number for top-up %s: %w", t.ID, err)
	}
	_, err := tx.ExecContext(ctx, `UPDATE top_ups SET receipt_number = $1,
card_brand = COALESCE((SELECT brand FROM payment_methods WHERE id = $2), ''),
card_last4 = COALESCE((SELECT last4 FROM payment_methods WHERE id = $2), '') WHERE id = $3`, n, t.PaymentMethod, t.ID)
	if err != nil {
		return fmt.Errorf("receipt number for top-up %s: %w", t.ID, err)
	}
	return nil
}

// Receipt returns what the receipt of an account's succeeded top-up
// shows. A top-up that did not succeed has no receipt: NotFound, as for
// an unknown one.
func (s *Payments) Receipt(ctx context.Context, accountID, topUpID string) (receipt.Record, error) {
	var r receipt.Record
	var num sql.NullInt64
	var amount sql.NullInt64
	var cur string
	var completed int64
	err := s.read.QueryRowContext(ctx, `SELECT t.id, t.account_id, a.email, a.currency, t.amount, t.receipt_number, t.card_brand, t.card_last4, t.completed_at
FROM top_ups t JOIN accounts a ON a.id = t.account_id WHERE t.id = $1 AND t.account_id = $2 AND t.status = 'succeeded'`, topUpID, accountID).
		Scan(&r.TopUpID, &r.AccountID, &r.Email, &cur, &amount, &num, &r.CardBrand, &r.CardLast4, &completed)
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("receipt for top-up", topUpID)
	}
	if err != nil {
		return r, fmt.Errorf("receipt of top-up %s: %w", topUpID, err)
	}
	if !num.Valid || !amount.Valid {
		return r, fmt.Errorf("receipt of top-up %s: a succeeded top-up without a receipt number or amount", topUpID)
	}
	r.Number, r.Amount, r.PaidAt = num.Int64, money.Amount(amount.Int64), fromMicros(completed)
	if r.Currency, err = money.LookupCurrency(cur); err != nil {
		return r, err
	}
	r.Refunds, err = s.receiptRefunds(ctx, topUpID)
	return r, err
}

// receiptRefunds lists the money a top-up's receipt shows going back: its
// succeeded refunds, oldest first, as of when the provider confirmed them
// (a refund still pending, or one that failed, gave nothing back).
func (s *Payments) receiptRefunds(ctx context.Context, topUpID string) ([]receipt.Refund, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, amount, completed_at FROM refunds WHERE top_up_id = $1 AND status = 'succeeded'
ORDER BY completed_at, id`, topUpID)
	if err != nil {
		return nil, fmt.Errorf("refunds on the receipt of top-up %s: %w", topUpID, err)
	}
	defer rows.Close()
	var out []receipt.Refund
	for rows.Next() {
		var f receipt.Refund
		var at int64
		if err := rows.Scan(&f.ID, &f.Amount, &at); err != nil {
			return nil, err
		}
		f.At = fromMicros(at)
		out = append(out, f)
	}
	return out, rows.Err()
}

// ReceiptNumbers lists every receipt number with its top-up, in number
// order, for the checks of tests and verify.
func (s *Payments) ReceiptNumbers(ctx context.Context) (map[int64]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT receipt_number, id FROM top_ups WHERE receipt_number IS NOT NULL ORDER BY receipt_number`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var n int64
		var id string
		if err := rows.Scan(&n, &id); err != nil {
			return nil, err
		}
		out[n] = id
	}
	return out, rows.Err()
}
