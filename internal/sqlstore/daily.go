package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/topup/topup/internal/ledger"
)

// dailyRows folds new entries into their account-day totals: one upsert
// row per account and day, whatever the number of entries.
func dailyRows(entries []ledger.Entry) []DailyRow {
	if len(entries) == 0 {
		return nil
	}
	byKey := map[[2]string]*DailyRow{}
	var keys [][2]string
	for i := range entries {
		e := &entries[i]
		k := [2]string{e.AccountID, e.CreatedAt.UTC().Format(time.DateOnly)}
		r := byKey[k]
		if r == nil {
			r = &DailyRow{Account: k[0], Day: k[1], Low: int64(e.BalanceAfter)}
			byKey[k] = r
			keys = append(keys, k)
		}
		switch {
		case e.Amount < 0 && e.Kind == ledger.KindUsage:
			r.Usage -= int64(e.Amount)
		case e.Amount < 0:
			// An expiration or a void is not usage: the console's burn
			// rate must not count it.
			r.Removed -= int64(e.Amount)
		default:
			r.Credits += int64(e.Amount)
		}
		if e.Kind == ledger.KindTopUp {
			r.TopUps++
			r.TopUpCredits += int64(e.Amount)
		}
		r.Closing = int64(e.BalanceAfter)
		r.Low = min(r.Low, int64(e.BalanceAfter))
	}
	// One order, so that concurrent groups on PostgreSQL take row locks alike.
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := compare(a[0], b[0]); c != 0 {
			return c
		}
		return compare(a[1], b[1])
	})
	rows := make([]DailyRow, len(keys))
	for i, k := range keys {
		rows[i] = *byKey[k]
	}
	return rows
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DailyTotals returns an account's days from since (inclusive), oldest
// first; days without a balance change are absent.
func (s *Console) DailyTotals(ctx context.Context, accountID string, since time.Time) ([]ledger.Day, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance, removed FROM daily_totals
WHERE account_id = $1 AND day >= $2 ORDER BY day`, accountID, since.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("daily totals: %w", err)
	}
	defer rows.Close()
	var out []ledger.Day
	for rows.Next() {
		var d ledger.Day
		var day string
		if err := rows.Scan(&day, &d.Usage, &d.Credits, &d.TopUps, &d.TopUpCredits, &d.Closing, &d.Low, &d.Removed); err != nil {
			return nil, err
		}
		if d.Day, err = time.Parse(time.DateOnly, day); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
