package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// watchRow is what the statement that locks an account read of its watch:
// its low balance alerts (kept in the row) and whether it has budgets. An
// account with neither costs the debit path two column reads and nothing
// else.
type watchRow struct {
	thresholds []alert.Threshold
	budgets    bool
}

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

// watchPostings applies low balance alerts and budgets to a group's fresh
// entries, in order, in the group's transaction: each balance change is
// observed with the balance before and after it, so a crossing is found
// exactly where it happened, and usage with a subject counts toward that
// subject's budget and the account-wide one. Results (and the stored first
// responses) of usage that a budget stops say spendable: false,
// budget_exhausted. Events go to the outbox with the change.
func (s *Store) watchPostings(ctx context.Context, tx *sql.Tx, accounts map[string]*ledger.AccountState, watched map[string]*watchRow,
	plan *ledger.Plan, now time.Time) error {
	if len(watched) == 0 || len(plan.Entries) == 0 {
		return nil
	}
	watches := map[string]*alert.Watch{}
	watch := func(id string) *alert.Watch {
		w := watches[id]
		if w == nil {
			w = &alert.Watch{Currency: accounts[id].Currency}
			watches[id] = w
		}
		return w
	}
	// The usage of the group per budget key; every changed account with
	// budgets has its account-wide key, so that a credit too sees it.
	spend := map[[2]string]money.Amount{}
	var keys [][2]string
	add := func(k [2]string, amount money.Amount) {
		if _, ok := spend[k]; !ok {
			keys = append(keys, k)
		}
		spend[k] += amount
	}
	for id, row := range watched {
		if a := accounts[id]; a == nil || !a.Touched {
			continue
		}
		if len(row.thresholds) > 0 {
			watch(id).Thresholds = row.thresholds
		}
		if row.budgets {
			add([2]string{id, ""}, 0)
		}
	}
	for i := range plan.Entries {
		e := &plan.Entries[i]
		if row := watched[e.AccountID]; row == nil || !row.budgets || e.Kind != ledger.KindUsage {
			continue
		}
		add([2]string{e.AccountID, ""}, -e.Amount)
		if e.Subject != "" {
			add([2]string{e.AccountID, e.Subject}, -e.Amount)
		}
	}
	if len(watches) == 0 && len(keys) == 0 {
		return nil
	}
	// One order of writes, so that concurrent groups lock alike.
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := compare(a[0], b[0]); c != 0 {
			return c
		}
		return compare(a[1], b[1])
	})
	month := micros(alert.MonthStart(now))
	err := s.eachChunk(&budgetsSpend, len(keys), func(from, to int, query string) error {
		args := make([]any, 0, budgetsSpend.lead+budgetsSpend.cols*(to-from))
		args = append(args, month, month, month)
		for _, k := range keys[from:to] {
			args = append(args, k[0], k[1], int64(spend[k]))
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
			// Observe replays the group's usage from where it began.
			b.Spent -= spend[[2]string{b.AccountID, b.Subject}]
			w := watch(b.AccountID)
			if w.Budgets == nil {
				w.Budgets = map[string]*alert.Budget{}
			}
			w.Budgets[b.Subject] = &b
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}

	type notice struct {
		account string
		alert.Notice
	}
	var notices []notice
	plan.EachFresh(func(_ int, e *ledger.Entry, res *ledger.Result, rec *ledger.IdemRecord) {
		w := watches[e.AccountID]
		if w == nil {
			return
		}
		ns, stop := w.Observe(now, e.Kind, e.Subject, e.BalanceAfter-e.Amount, e.BalanceAfter)
		for _, n := range ns {
			notices = append(notices, notice{e.AccountID, n})
		}
		if stop != nil && res.Spendable {
			res.Spendable, res.Reason = false, ledger.ReasonBudgetExhausted
			rec.Result.Spendable, rec.Result.Reason = false, ledger.ReasonBudgetExhausted
		}
	})
	ids := make([]string, 0, len(watches))
	for id, w := range watches {
		if len(w.ChangedThresholds) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		// Rare: only when a threshold fired.
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET low_balance_alerts = $1 WHERE id = $2`, encodeThresholds(watches[id].Thresholds), id); err != nil {
			return fmt.Errorf("record low balance alert: %w", err)
		}
	}
	for _, n := range notices {
		if err := s.notify(ctx, tx, n.account, n.Type, n.Data, now); err != nil {
			return err
		}
	}
	return nil
}
