package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// The reads in this file serve the simulator, which checks Topup's
// invariants from outside the engine after every step: they read what the
// store wrote, each in a query of its own, so that a check never relies on
// the code it checks, and nobody reaches past the store for a table.

// WriteMark returns a value that changes whenever the database is written
// (Dialect.WriteMark), so that a checker can skip a Verify when nothing
// changed; "" when the database cannot tell.
func (d *DB) WriteMark(ctx context.Context) string {
	if d.core.dialect.WriteMark == "" {
		return ""
	}
	var m string
	if err := d.core.write.QueryRowContext(ctx, d.core.dialect.WriteMark).Scan(&m); err != nil {
		return ""
	}
	return m
}

// statusIn returns "status IN ($n, …)" for statuses, numbering its
// parameters from first, and appends them to args.
func statusIn(statuses []topup.Status, first int, args []any) (string, []any) {
	marks := make([]string, len(statuses))
	for i, st := range statuses {
		marks[i] = "$" + strconv.Itoa(first+i)
		args = append(args, string(st))
	}
	return "status IN (" + strings.Join(marks, ", ") + ")", args
}

// TopUpIDs lists the ids of every top-up in one of statuses, in id order.
func (s *Payments) TopUpIDs(ctx context.Context, statuses ...topup.Status) ([]string, error) {
	where, args := statusIn(statuses, 1, nil)
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM top_ups WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("top-up ids: %w", err)
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

// CountTopUps counts the top-ups in one of statuses, of every account.
func (s *Payments) CountTopUps(ctx context.Context, statuses ...topup.Status) (int, error) {
	where, args := statusIn(statuses, 1, nil)
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM top_ups WHERE `+where, args...).Scan(&n)
	return n, err
}

// AllTopUps returns every top-up of every account, in id order.
func (s *Payments) AllTopUps(ctx context.Context) ([]topup.TopUp, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+topUpCols+topUpFrom+` ORDER BY t.id`)
	if err != nil {
		return nil, fmt.Errorf("all top-ups: %w", err)
	}
	defer rows.Close()
	var out []topup.TopUp
	for rows.Next() {
		t, err := scanTopUp(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// AutomaticTopUpTotal adds up the amounts of an account's automatic
// top-ups in one of statuses whose amount was fixed (first attempted) in
// the calendar month (UTC) of month, leaving out the top-up except.
func (s *Payments) AutomaticTopUpTotal(ctx context.Context, accountID string, month time.Time, except string, statuses ...topup.Status) (money.Amount, error) {
	start := topup.MonthStart(month)
	where, args := statusIn(statuses, 5, []any{accountID, except, micros(start), micros(start.AddDate(0, 1, 0))})
	var sum int64
	err := s.read.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM top_ups
WHERE account_id = $1 AND id <> $2 AND trigger <> 'manual' AND amount IS NOT NULL
AND first_attempt_at >= $3 AND first_attempt_at < $4 AND `+where, args...).Scan(&sum)
	return money.Amount(sum), err
}

// AccountSeq is how far one account's ledger is numbered.
type AccountSeq struct {
	AccountID string
	LastSeq   int64
}

// AccountSeqs returns every account's last entry number, in id order.
func (s *Ledger) AccountSeqs(ctx context.Context) ([]AccountSeq, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, last_seq FROM accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("account seqs: %w", err)
	}
	defer rows.Close()
	var out []AccountSeq
	for rows.Next() {
		var a AccountSeq
		if err := rows.Scan(&a.AccountID, &a.LastSeq); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// EntriesAfter returns an account's entries numbered after seq, oldest
// first.
func (s *Ledger) EntriesAfter(ctx context.Context, accountID string, seq int64) ([]ledger.Entry, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE account_id = $1 AND seq > $2 ORDER BY seq`, accountID, seq)
	if err != nil {
		return nil, fmt.Errorf("entries after %d: %w", seq, err)
	}
	defer rows.Close()
	var out []ledger.Entry
	for rows.Next() {
		e, err := scanEntry(rows, accountID)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
