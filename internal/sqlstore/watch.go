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

// spendBudgets adds the group's usage to its budgets (rolling a monthly
// budget whose month is over) and returns them as they are after it; an
// account's budgets are read only when the plan spends on them.
func (s *core) spendBudgets(ctx context.Context, tx *sql.Tx, spend []debit.Spend, now time.Time) ([]alert.Budget, error) {
	var out []alert.Budget
	err := s.bulk.SpendBudgets(ctx, tx, micros(alert.MonthStart(now)), spend, func(rows *sql.Rows) error {
		b, err := scanBudget(rows)
		if err != nil {
			return err
		}
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record budget spend: %w", err)
	}
	return out, nil
}
