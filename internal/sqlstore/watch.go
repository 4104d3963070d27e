package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/debit"
	"github.com/topup/topup/internal/money"
)

// encodeThresholds writes thresholds as accounts.low_balance_alerts keeps
// them: "micros:day" items, largest first, comma-separated.
func encodeThresholds(ts []alert.Threshold) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(t.Amount), 10))
		b.WriteByte(':')
		b.WriteString(t.AlertedOn)
	}
	return b.String()
}

func decodeThresholds(s string) ([]alert.Threshold, error) {
	if s == "" {
		return nil, nil
	}
	items := strings.Split(s, ",")
	out := make([]alert.Threshold, 0, len(items))
	for _, item := range items {
		amount, day, ok := strings.Cut(item, ":")
		n, err := strconv.ParseInt(amount, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("low_balance_alerts %q is malformed", s)
		}
		out = append(out, alert.Threshold{Amount: money.Amount(n), AlertedOn: day})
	}
	return out, nil
}

// budgetsSpend adds each key's usage of the group to its budget, first
// resetting a monthly budget whose month is over (the lead parameters are
// the current month's start), and returns the budgets as they are after
// it: budgets are read and written by this one statement.
var budgetsSpend = bulk{head: `UPDATE budgets SET spent = CASE WHEN kind = 'monthly' AND period_start < % THEN 0 ELSE spent END + v.column3,
period_start = CASE WHEN kind = 'monthly' AND period_start < % THEN % ELSE period_start END FROM (VALUES `, lead: 3,
	cell: "(%, %, CAST(% AS BIGINT))", cols: 3, sep: ",",
	tail: `) AS v WHERE budgets.account_id = v.column1 AND budgets.subject = v.column2 RETURNING ` + budgetCols,
	pg: `UPDATE budgets SET spent = CASE WHEN kind = 'monthly' AND period_start < $1 THEN 0 ELSE spent END + v.v_amount,
period_start = CASE WHEN kind = 'monthly' AND period_start < $2 THEN $3 ELSE period_start END
FROM unnest($4::text[], $5::text[], $6::bigint[]) AS v(v_account, v_subject, v_amount)
WHERE budgets.account_id = v.v_account AND budgets.subject = v.v_subject RETURNING ` + budgetCols}

// spendBudgets adds the group's usage to its budgets (rolling a monthly
// budget whose month is over) and returns them as they are after it; an
// account's budgets are read only when the plan spends on them.
func (s *core) spendBudgets(ctx context.Context, tx *sql.Tx, spend []debit.Spend, now time.Time) ([]alert.Budget, error) {
	var out []alert.Budget
	month := micros(alert.MonthStart(now))
	err := s.eachChunk(&budgetsSpend, len(spend), func(from, to int, query string) error {
		args := make([]any, 0, budgetsSpend.lead+budgetsSpend.cols*(to-from))
		args = append(args, month, month, month)
		for _, k := range spend[from:to] {
			args = append(args, k.AccountID, k.Subject, int64(k.Amount))
		}
		rows, err := s.bulkQuery(ctx, tx, query, args)
		if err != nil {
			return fmt.Errorf("record budget spend: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			b, err := scanBudget(rows)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return rows.Err()
	})
	return out, err
}
