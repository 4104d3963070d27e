package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// dailyRow is one account-day's change.
type dailyRow struct {
	account, day   string
	usage, credits money.Amount
	topUps         int
	topUpCredits   money.Amount
	closing, low   money.Amount
}

// dailyUpsert folds a row into the account-day's totals.
const dailyUpsert = ` ON CONFLICT (account_id, day) DO UPDATE SET usage = daily_totals.usage + excluded.usage,
credits = daily_totals.credits + excluded.credits, top_ups = daily_totals.top_ups + excluded.top_ups,
top_up_credits = daily_totals.top_up_credits + excluded.top_up_credits,
closing_balance = excluded.closing_balance,
min_balance = CASE WHEN excluded.min_balance < daily_totals.min_balance THEN excluded.min_balance ELSE daily_totals.min_balance END`

var dailyBulk = bulk{head: `INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance) VALUES `,
	cell: "(%,%,%,%,%,%,%,%)", cols: 8, sep: ",", tail: dailyUpsert,
	pg: `INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])` + dailyUpsert}

// recordDaily folds new entries into their account-day totals: one upsert
// row per account and day, whatever the number of entries.
func (s *core) recordDaily(ctx context.Context, tx *sql.Tx, entries []ledger.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	byKey := map[[2]string]*dailyRow{}
	var keys [][2]string
	for i := range entries {
		e := &entries[i]
		k := [2]string{e.AccountID, e.CreatedAt.UTC().Format(time.DateOnly)}
		r := byKey[k]
		if r == nil {
			r = &dailyRow{account: k[0], day: k[1], low: e.BalanceAfter}
			byKey[k] = r
			keys = append(keys, k)
		}
		if e.Amount < 0 {
			r.usage -= e.Amount
		} else {
			r.credits += e.Amount
		}
		if e.Kind == ledger.KindTopUp {
			r.topUps++
			r.topUpCredits += e.Amount
		}
		r.closing = e.BalanceAfter
		r.low = min(r.low, e.BalanceAfter)
	}
	// One order, so that concurrent groups on PostgreSQL take row locks alike.
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := compare(a[0], b[0]); c != 0 {
			return c
		}
		return compare(a[1], b[1])
	})
	return s.eachChunk(&dailyBulk, len(keys), func(from, to int, query string) error {
		args := make([]any, 0, dailyBulk.cols*(to-from))
		for _, k := range keys[from:to] {
			r := byKey[k]
			args = append(args, r.account, r.day, int64(r.usage), int64(r.credits), r.topUps, int64(r.topUpCredits), int64(r.closing), int64(r.low))
		}
		if err := s.bulkExec(ctx, tx, query, args); err != nil {
			return fmt.Errorf("record daily totals: %w", err)
		}
		return nil
	})
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
	rows, err := s.read.QueryContext(ctx, `SELECT day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance FROM daily_totals
WHERE account_id = $1 AND day >= $2 ORDER BY day`, accountID, since.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("daily totals: %w", err)
	}
	defer rows.Close()
	var out []ledger.Day
	for rows.Next() {
		var d ledger.Day
		var day string
		if err := rows.Scan(&day, &d.Usage, &d.Credits, &d.TopUps, &d.TopUpCredits, &d.Closing, &d.Low); err != nil {
			return nil, err
		}
		if d.Day, err = time.Parse(time.DateOnly, day); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
