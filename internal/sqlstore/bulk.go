package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/topup/topup/internal/debit"
	"github.com/topup/topup/internal/ledger"
)

// Bulk is the debit path's statements over many rows, one typed method
// each. The sqlite package implements them as multi-row VALUES statements
// in a few fixed sizes kept prepared (SQLite looks "$N" names up in a list,
// so a big statement cost the square of its parameters); the postgres
// package as one statement per kind whatever the group's size, taking one
// array per column through unnest. A query calls row for each row it
// answers, which the store scans.
type Bulk interface {
	// LockAccounts reads the accounts with ids (sorted), with
	// LockColumns, locking them in id order where the database has row
	// locks.
	LockAccounts(ctx context.Context, tx *sql.Tx, ids []string, row func(*sql.Rows) error) error
	// LookupIdempotency reads the idempotency rows of keys and the usage
	// entries keyed by usage's keys (UsageKeyWhere), with IdemRowColumns
	// and IdemEntryColumns: a usage key is kept in its entry
	// (ledger.KeptInEntry), and in a row when it was written before
	// migration 0022.
	LookupIdempotency(ctx context.Context, tx *sql.Tx, keys, usage []ledger.IdemKey, row func(*sql.Rows) error) error
	// SpendBudgets adds each key's amount to its budget, first resetting a
	// monthly budget whose period started before month (microseconds) to
	// start at month, and answers the budgets with BudgetColumns.
	SpendBudgets(ctx context.Context, tx *sql.Tx, month int64, spend []debit.Spend, row func(*sql.Rows) error) error
	// LoadGrants reads, with GrantColumns, the active grants of the
	// accounts with ids (sorted, locked) that LockAccounts did not already
	// answer; SQLite's does nothing.
	LoadGrants(ctx context.Context, tx *sql.Tx, ids []string, row func(*sql.Rows) error) error
	// InsertGrants inserts new grants (GrantArgs).
	InsertGrants(ctx context.Context, tx *sql.Tx, grants []*ledger.Grant) error
	// UpdateGrants writes each grant's remaining and status. A grant
	// whose status is active was active when loaded (no grant becomes
	// active again), so only its remaining changed.
	UpdateGrants(ctx context.Context, tx *sql.Tx, grants []*ledger.Grant) error
	// InsertEntries inserts entries (an empty TopUpID, GrantID or HoldID is
	// NULL; Funding is written by ledger.EncodeFunding; Answer as it is).
	InsertEntries(ctx context.Context, tx *sql.Tx, entries []ledger.Entry) error
	// InsertRecords inserts idempotency rows, their result written by
	// EncodeResult, created at now (microseconds).
	InsertRecords(ctx context.Context, tx *sql.Tx, recs []ledger.IdemRecord, now int64) error
	// UpdateBalances writes each account's balance, last sequence number,
	// turnover and overdraft (OverdraftNow), updated at now (microseconds).
	UpdateBalances(ctx context.Context, tx *sql.Tx, accounts []*ledger.AccountState, now int64) error
	// UpsertDaily folds rows into their account-day's totals with
	// DailyUpsert.
	UpsertDaily(ctx context.Context, tx *sql.Tx, rows []DailyRow) error
	// Write writes what one ledger transaction changed (a debit group, a
	// settled top-up, a refund or dispute), as the methods above would in
	// the order of Writes' fields: SQLite's runs them one by one;
	// PostgreSQL's sends them as one statement, one round trip.
	Write(ctx context.Context, tx *sql.Tx, w Writes) error
}

// Writes are the rows one ledger transaction writes, for Bulk.Write.
type Writes struct {
	// NewGrants are inserted, ChangedGrants' remaining and status updated.
	NewGrants, ChangedGrants []*ledger.Grant
	Entries                  []ledger.Entry
	// Records are the idempotency rows, created at Now.
	Records []ledger.IdemRecord
	// Balances are the touched accounts, updated at Now.
	Balances []*ledger.AccountState
	// Daily are the account-day totals the entries add to.
	Daily []DailyRow
	// Now is the transaction's time in microseconds.
	Now int64
}

// WriteEach is Bulk.Write for a database that sends each kind of row in a
// statement of its own.
func WriteEach(ctx context.Context, tx *sql.Tx, b Bulk, w Writes) error {
	steps := []struct {
		what string
		run  func() error
	}{
		{"insert grants", func() error { return b.InsertGrants(ctx, tx, w.NewGrants) }},
		{"update grants", func() error { return b.UpdateGrants(ctx, tx, w.ChangedGrants) }},
		{"insert entries", func() error { return b.InsertEntries(ctx, tx, w.Entries) }},
		{"insert idempotency keys", func() error { return b.InsertRecords(ctx, tx, w.Records, w.Now) }},
		{"update balances", func() error { return b.UpdateBalances(ctx, tx, w.Balances, w.Now) }},
		{"record daily totals", func() error { return b.UpsertDaily(ctx, tx, w.Daily) }},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
	}
	return nil
}

// IdemRowColumns are what LookupIdempotency answers of an idempotency
// row (i): its scope, key, request hash and first response, and NULL for
// the columns of IdemEntryColumns after them.
const IdemRowColumns = `i.scope, i.key, i.request_hash, i.result, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`

// IdemEntryColumns are what LookupIdempotency answers of a usage entry (e)
// that keeps its key: NULL for the request hash and result (the entry's
// columns after them rebuild both, ledger.ReplayOf), then its id, sequence
// number, amount, balance after, description, subject, time and answer.
// Its scope is its account's usage scope.
const IdemEntryColumns = `e.account_id || '/` + ledger.ScopeUsage + `', e.idempotency_key, NULL, NULL,
e.id, e.seq, e.amount, e.balance_after, e.description, e.subject, e.created_at, e.answer`

// UsageKeyWhere are the usage entries that keep their key: its terms must
// stay those of the WHERE clause of the index entries_usage_key (migration
// 0022), or the planners no longer use it.
const UsageKeyWhere = `e.kind = 'usage' AND e.hold_id IS NULL`

// lockAccountColumns are the account's columns of LockColumns.
const lockAccountColumns = `SELECT a.id, a.email, a.currency, a.balance, a.status, a.created_at, a.last_seq, a.turnover, a.overdraft, s.enabled, s.threshold, s.retry_after, a.low_balance_alerts, a.has_budgets, a.held, a.held_until`

// LockColumns is what LockAccounts selects, with its FROM clause: the
// account, its Automatic Top-Up threshold and back-off, its low balance
// alerts, whether it has budgets, its held credit, and its active grants as one text
// (DecodeWallet; NULL for none), so that the group's wallets cost no
// statement of their own. It is for a database whose lock statement reads
// the grants as they are after the lock: SQLite, whose one writer
// connection is the lock. Implementations add the WHERE clause (and ORDER
// BY a.id).
const LockColumns = lockAccountColumns + `,
(SELECT group_concat(g.id || ',' || g.category || ',' || g.priority || ',' || g.expires_at || ',' || g.created_at || ',' || g.remaining, ';')
FROM grants g WHERE g.account_id = a.id AND g.status = 'active')
FROM accounts a LEFT JOIN auto_top_up s ON s.account_id = a.id`

// LockColumnsWithoutGrants is LockColumns with NULL for the grants, for a
// database whose row locks wait: a statement that waited for a lock reads
// the other tables as they were when it began (PostgreSQL's READ
// COMMITTED), so the grants are read by LoadGrants, after the lock.
const LockColumnsWithoutGrants = lockAccountColumns + `, NULL::text
FROM accounts a LEFT JOIN auto_top_up s ON s.account_id = a.id`

// NullIfEmpty is nil for "", for a column where absence is NULL.
func NullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// BudgetColumns is what SpendBudgets returns, in the order scanBudget
// reads.
const BudgetColumns = budgetCols

// DailyRow is one account-day's change, folded into daily_totals.
type DailyRow struct {
	Account, Day               string
	Usage, Credits             int64
	TopUps                     int64
	TopUpCredits, Closing, Low int64
	// Removed is what left the balance other than as usage (expirations,
	// voids).
	Removed int64
}

// DailyUpsert folds an inserted row into the account-day's totals; it
// follows the INSERT's VALUES or SELECT.
const DailyUpsert = ` ON CONFLICT (account_id, day) DO UPDATE SET usage = daily_totals.usage + excluded.usage,
credits = daily_totals.credits + excluded.credits, top_ups = daily_totals.top_ups + excluded.top_ups,
top_up_credits = daily_totals.top_up_credits + excluded.top_up_credits, removed = daily_totals.removed + excluded.removed,
closing_balance = excluded.closing_balance,
min_balance = CASE WHEN excluded.min_balance < daily_totals.min_balance THEN excluded.min_balance ELSE daily_totals.min_balance END`
