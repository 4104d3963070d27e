package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/ledger"
)

// watchFlags say what an account watches, as the flags on its row say:
// the debit path reads them with the account lock, so an account without
// alerts or budgets costs one more column read and nothing else.
type watchFlags uint8

const (
	watchAlerts watchFlags = 1 << iota
	watchBudgets
)

func flagsOf(alerts, budgets bool) watchFlags {
	var f watchFlags
	if alerts {
		f |= watchAlerts
	}
	if budgets {
		f |= watchBudgets
	}
	return f
}

// The bulk statements of the watch: thresholds by account, budgets by
// (account, subject), spends written back in one statement.
var (
	alertsLookup = bulk{head: `SELECT account_id, threshold, alerted_on FROM low_balance_alerts WHERE account_id IN (`,
		cell: "%", cols: 1, sep: ",", tail: `)`}
	budgetsLookup = bulk{head: `SELECT ` + budgetCols + ` FROM budgets WHERE (account_id, subject) IN (VALUES `,
		cell: "(%,%)", cols: 2, sep: ",", tail: `)`}
	budgetsSpend = bulk{head: `UPDATE budgets SET spent = v.column2, period_start = v.column3 FROM (VALUES `,
		cell: "(%, CAST(% AS BIGINT), CAST(% AS BIGINT))", cols: 3, sep: ",", tail: `) AS v WHERE budgets.id = v.column1`}
)

// watchPostings applies low balance alerts and budgets to a group's fresh
// entries, in order, in the group's transaction: each balance change is
// observed with the balance before and after it, so a crossing is found
// exactly where it happened, and usage with a subject counts toward that
// subject's budget and the account-wide one. Results (and the stored first
// responses) of usage that a budget stops say spendable: false,
// budget_exhausted. Events go to the outbox with the change.
func (s *Store) watchPostings(ctx context.Context, tx *sql.Tx, accounts map[string]*ledger.AccountState, watched map[string]watchFlags,
	plan *ledger.Plan, now time.Time) error {
	if len(watched) == 0 || len(plan.Entries) == 0 {
		return nil
	}
	var alertIDs []string
	var budgetKeys [][2]string
	seen := map[[2]string]bool{}
	addKey := func(k [2]string) {
		if !seen[k] {
			seen[k] = true
			budgetKeys = append(budgetKeys, k)
		}
	}
	for id, f := range watched {
		if a := accounts[id]; a == nil || !a.Touched {
			continue
		}
		if f&watchAlerts != 0 {
			alertIDs = append(alertIDs, id)
		}
		if f&watchBudgets != 0 {
			addKey([2]string{id, ""})
		}
	}
	for i := range plan.Entries {
		e := &plan.Entries[i]
		if e.Subject != "" && e.Kind == ledger.KindUsage && watched[e.AccountID]&watchBudgets != 0 {
			addKey([2]string{e.AccountID, e.Subject})
		}
	}
	if len(alertIDs) == 0 && len(budgetKeys) == 0 {
		return nil
	}
	slices.Sort(alertIDs)
	watches := map[string]*alert.Watch{}
	watch := func(id string) *alert.Watch {
		w := watches[id]
		if w == nil {
			w = &alert.Watch{Currency: accounts[id].Currency}
			watches[id] = w
		}
		return w
	}
	if err := s.loadThresholds(ctx, tx, alertIDs, watch); err != nil {
		return err
	}
	if err := s.loadBudgets(ctx, tx, budgetKeys, watch); err != nil {
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
	for id := range watches {
		ids = append(ids, id)
	}
	slices.Sort(ids) // one order of writes, so concurrent groups lock alike
	var spends []*alert.Budget
	for _, id := range ids {
		w := watches[id]
		for i := range w.ChangedThresholds {
			t := w.Thresholds[i]
			if _, err := tx.ExecContext(ctx, `UPDATE low_balance_alerts SET alerted_on = $1 WHERE account_id = $2 AND threshold = $3`,
				t.AlertedOn, id, int64(t.Amount)); err != nil {
				return fmt.Errorf("record low balance alert: %w", err)
			}
		}
		for subject := range w.ChangedBudgets {
			spends = append(spends, w.Budgets[subject])
		}
	}
	slices.SortFunc(spends, func(a, b *alert.Budget) int { return compare(a.ID, b.ID) })
	err := s.eachChunk(&budgetsSpend, len(spends), func(from, to int, query string) error {
		args := make([]any, 0, budgetsSpend.cols*(to-from))
		for _, b := range spends[from:to] {
			args = append(args, b.ID, int64(b.Spent), micros(b.PeriodStart))
		}
		if err := s.bulkExec(ctx, tx, query, args); err != nil {
			return fmt.Errorf("record budget spend: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range notices {
		if err := s.notify(ctx, tx, n.account, n.Type, n.Data, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) loadThresholds(ctx context.Context, tx *sql.Tx, accountIDs []string, watch func(string) *alert.Watch) error {
	err := s.eachChunk(&alertsLookup, len(accountIDs), func(from, to int, query string) error {
		args := make([]any, 0, to-from)
		for _, id := range accountIDs[from:to] {
			args = append(args, id)
		}
		rows, err := s.bulkQuery(ctx, tx, query, args)
		if err != nil {
			return fmt.Errorf("read low balance alerts: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var t alert.Threshold
			if err := rows.Scan(&id, &t.Amount, &t.AlertedOn); err != nil {
				return err
			}
			w := watch(id)
			w.Thresholds = append(w.Thresholds, t)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, id := range accountIDs {
		w := watch(id)
		// Largest first: the order in which a falling balance crosses them.
		slices.SortFunc(w.Thresholds, func(a, b alert.Threshold) int { return cmp.Compare(b.Amount, a.Amount) })
	}
	return nil
}

func (s *Store) loadBudgets(ctx context.Context, tx *sql.Tx, keys [][2]string, watch func(string) *alert.Watch) error {
	return s.eachChunk(&budgetsLookup, len(keys), func(from, to int, query string) error {
		args := make([]any, 0, 2*(to-from))
		for _, k := range keys[from:to] {
			args = append(args, k[0], k[1])
		}
		rows, err := s.bulkQuery(ctx, tx, query, args)
		if err != nil {
			return fmt.Errorf("read budgets: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			b, err := scanBudget(rows)
			if err != nil {
				return err
			}
			w := watch(b.AccountID)
			if w.Budgets == nil {
				w.Budgets = map[string]*alert.Budget{}
			}
			w.Budgets[b.Subject] = &b
		}
		return rows.Err()
	})
}
