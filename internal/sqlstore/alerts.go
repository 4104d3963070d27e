package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

const budgetCols = `id, account_id, subject, kind, amount_limit, spent, period_start, created_at, updated_at`

func scanBudget(r rowScanner) (alert.Budget, error) {
	var b alert.Budget
	var kind string
	var start, created, updated int64
	if err := r.Scan(&b.ID, &b.AccountID, &b.Subject, &kind, nullAmount{&b.Limit}, &b.Spent, &start, &created, &updated); err != nil {
		return b, err
	}
	b.Kind, b.PeriodStart, b.CreatedAt, b.UpdatedAt = alert.Kind(kind), fromMicros(start), fromMicros(created), fromMicros(updated)
	return b, nil
}

// LowBalanceAlerts returns an account's low balance alert thresholds,
// largest first.
func (s *Outbox) LowBalanceAlerts(ctx context.Context, accountID string) ([]alert.Threshold, error) {
	var v string
	err := s.read.QueryRowContext(ctx, `SELECT low_balance_alerts FROM accounts WHERE id = $1`, accountID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("account", accountID)
	}
	if err != nil {
		return nil, err
	}
	ts, err := decodeThresholds(v)
	if ts == nil {
		ts = []alert.Threshold{}
	}
	return ts, err
}

// SetLowBalanceAlerts replaces an account's thresholds after checking them
// against the rules (alert.CheckThresholds, naming "thresholds[i]"). A
// threshold kept from before keeps the day it last fired, so saving the
// same list again cannot alert twice in a day; a new one is armed when the
// balance is at or above it.
func (s *Outbox) SetLowBalanceAlerts(ctx context.Context, accountID string, thresholds []money.Amount) ([]alert.Threshold, error) {
	var out []alert.Threshold
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if err := acct.May(ledger.ActAlerts); err != nil {
			return err
		}
		if err := alert.CheckThresholds(thresholds, acct.Currency); err != nil {
			return err
		}
		var v string
		if err := tx.QueryRowContext(ctx, `SELECT low_balance_alerts FROM accounts WHERE id = $1`, accountID).Scan(&v); err != nil {
			return err
		}
		cur, err := decodeThresholds(v)
		if err != nil {
			return err
		}
		day := map[money.Amount]string{}
		for _, t := range cur {
			day[t.Amount] = t.AlertedOn
		}
		sorted := slices.Clone(thresholds)
		alert.SortThresholds(sorted)
		out = make([]alert.Threshold, 0, len(sorted))
		for _, t := range sorted {
			out = append(out, alert.Threshold{Amount: t, AlertedOn: day[t]})
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET low_balance_alerts = $1 WHERE id = $2`, encodeThresholds(out), accountID); err != nil {
			return fmt.Errorf("save low balance alerts: %w", err)
		}
		return nil
	})
	return out, err
}

// Budget returns one budget of an account, rolled to the store's clock (a
// monthly budget whose month ended shows nothing spent).
func (s *Outbox) Budget(ctx context.Context, accountID, id string) (alert.Budget, error) {
	b, err := scanBudget(s.read.QueryRowContext(ctx, `SELECT `+budgetCols+` FROM budgets WHERE account_id = $1 AND id = $2`, accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, notFound("budget", id)
	}
	if err != nil {
		return b, err
	}
	b.Roll(s.clock.Now())
	return b, nil
}

// Budgets lists an account's budgets, newest first, rolled to the store's
// clock.
func (s *Outbox) Budgets(ctx context.Context, accountID string, p ledger.Page) ([]alert.Budget, bool, error) {
	if _, err := s.account(ctx, accountID); err != nil {
		return nil, false, err
	}
	now := s.clock.Now()
	return pageRows(ctx, s.core, keyset{sel: `SELECT ` + budgetCols + ` FROM budgets`, id: "id", where: "account_id = $1", args: []any{accountID}, what: "budget"}, p,
		func(r rowScanner) (alert.Budget, error) {
			b, err := scanBudget(r)
			b.Roll(now)
			return b, err
		})
}

// CreateBudget validates and saves a new budget (alert.BudgetInput.New's
// rules): another budget for the same subject, or a second one without
// subject, is a conflict.
func (s *Outbox) CreateBudget(ctx context.Context, accountID string, in alert.BudgetInput) (alert.Budget, error) {
	var out alert.Budget
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if err := acct.May(ledger.ActBudget); err != nil {
			return err
		}
		subject, kind, limit, err := in.New(acct.Currency)
		if err != nil {
			return err
		}
		var n, same int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN subject = $2 THEN 1 END) FROM budgets WHERE account_id = $1`, accountID, subject).
			Scan(&n, &same); err != nil {
			return err
		}
		if same > 0 {
			if subject == "" {
				return apperr.New(apperr.Conflict, "the account already has a budget without subject")
			}
			return &apperr.Error{Code: apperr.Conflict, Field: "subject", Message: fmt.Sprintf("the account already has a budget for subject %q", subject)}
		}
		if err := ledger.CheckLimit("budgets", n, ledger.MaxBudgets); err != nil {
			return err
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		out = alert.NewBudget(s.ids.New("bud"), accountID, subject, kind, limit, now)
		if _, err := tx.ExecContext(ctx, `INSERT INTO budgets (`+budgetCols+`, start_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			out.ID, out.AccountID, out.Subject, string(out.Kind), amountArg(out.Limit), int64(out.Spent), micros(out.PeriodStart),
			micros(out.CreatedAt), micros(out.UpdatedAt), acct.LastSeq); err != nil {
			return fmt.Errorf("insert budget: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET has_budgets = $1 WHERE id = $2`, true, accountID)
		return err
	})
	return out, err
}

// UpdateBudget changes a budget's limit and keeps what was spent: a limit
// lowered below the spend exhausts the budget at once, and the levels the
// change crossed are announced in the same transaction.
func (s *Outbox) UpdateBudget(ctx context.Context, accountID, id string, in alert.BudgetInput) (alert.Budget, error) {
	var out alert.Budget
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		b, err := scanBudget(tx.QueryRowContext(ctx, `SELECT `+budgetCols+` FROM budgets WHERE account_id = $1 AND id = $2`, accountID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("budget", id)
		}
		if err != nil {
			return err
		}
		if err := acct.May(ledger.ActBudget); err != nil {
			return err
		}
		limit, err := in.Change(&b, acct.Currency)
		if err != nil {
			return err
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		b.Roll(now)
		crossed := b.SetLimit(limit)
		b.UpdatedAt = now
		if _, err := tx.ExecContext(ctx, `UPDATE budgets SET amount_limit = $1, spent = $2, period_start = $3, updated_at = $4 WHERE id = $5`,
			amountArg(b.Limit), int64(b.Spent), micros(b.PeriodStart), micros(b.UpdatedAt), b.ID); err != nil {
			return fmt.Errorf("update budget: %w", err)
		}
		for _, n := range alert.BudgetNotices(&b, crossed, acct.Currency) {
			if err := s.notify(ctx, tx, accountID, n.Type, n.Data, now); err != nil {
				return err
			}
		}
		out = b
		return nil
	})
	return out, err
}

// DeleteBudget removes a budget.
func (s *Outbox) DeleteBudget(ctx context.Context, accountID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.lockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM budgets WHERE account_id = $1 AND id = $2`, accountID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("budget", id)
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET has_budgets = EXISTS (SELECT 1 FROM budgets WHERE account_id = $1) WHERE id = $1`, accountID)
		return err
	})
}

// Spendable says whether an account may spend, for usage with subject (""
// for the account as a whole): balance above zero, and neither the
// subject's budget nor the account-wide one exhausted (monthly budgets
// rolled to the store's clock). The budget that stops it is returned with
// the reason.
func (s *Outbox) Spendable(ctx context.Context, accountID, subject string) (bool, string, *alert.Budget, error) {
	acct, err := s.account(ctx, accountID)
	if err != nil {
		return false, "", nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+budgetCols+` FROM budgets WHERE account_id = $1 AND (subject = $2 OR subject = '')`, accountID, subject)
	if err != nil {
		return false, "", nil, fmt.Errorf("read budgets: %w", err)
	}
	defer rows.Close()
	var own, wide *alert.Budget
	for rows.Next() {
		b, err := scanBudget(rows)
		if err != nil {
			return false, "", nil, err
		}
		if b.Subject == "" {
			wide = &b
		} else {
			own = &b
		}
	}
	if err := rows.Err(); err != nil {
		return false, "", nil, err
	}
	ok, reason, stop := alert.Spendable(acct, s.clock.Now(), own, wide)
	if stop != nil {
		stop.Roll(s.clock.Now())
	}
	return ok, reason, stop, nil
}
