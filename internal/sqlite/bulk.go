package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/topup/topup/internal/debit"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/sqlstore"
)

// chunkSizes are the row counts a bulk statement is prepared in, largest
// first: a group is cut into chunks of these sizes, so each statement's
// text is one of a handful, parsed once.
var chunkSizes = [...]int{256, 64, 16, 4, 1}

// values is one multi-row statement with "?" placeholders: head (carrying
// lead parameters), then cell once per row joined by ",", then tail. It is
// kept prepared on the writer connection in every chunk size: parsing the
// statements again for every group cost a fifth of the committer's time.
type values struct {
	head, cell, tail string
	lead, cols       int
	stmts            [len(chunkSizes)]*sql.Stmt
}

func (v *values) text(rows int) string {
	return v.head + strings.Repeat(v.cell+",", rows-1) + v.cell + v.tail
}

func (v *values) prepare(ctx context.Context, db *sql.DB) error {
	for i, n := range chunkSizes {
		if n*v.cols+v.lead > Dialect.MaxParams {
			continue
		}
		st, err := db.PrepareContext(ctx, v.text(n))
		if err != nil {
			return err
		}
		v.stmts[i] = st
	}
	return nil
}

// each cuts n rows into chunks and calls fn with each chunk's bounds and
// its statement, bound to tx.
func (v *values) each(ctx context.Context, tx *sql.Tx, n int, fn func(st *sql.Stmt, from, to int) error) error {
	start := 0
	for i, size := range chunkSizes {
		if v.stmts[i] == nil {
			continue
		}
		for n-start >= size {
			if err := fn(tx.StmtContext(ctx, v.stmts[i]), start, start+size); err != nil {
				return err
			}
			start += size
		}
	}
	return nil
}

// padded is each for a statement that a row matching nothing leaves
// unchanged (an UPDATE … FROM (VALUES …) keyed by id): what remains after
// the biggest chunks goes in one statement of the smallest size that holds
// it, fn padding the rows from to to size; a few rows cost one statement,
// not one per bit of their count.
func (v *values) padded(ctx context.Context, tx *sql.Tx, n int, fn func(st *sql.Stmt, from, to, size int) error) error {
	start := 0
	for start < n {
		i := 0
		for k, size := range chunkSizes {
			if v.stmts[k] != nil && size >= n-start {
				i = k
			}
		}
		for v.stmts[i] == nil {
			i++
		}
		size := chunkSizes[i]
		to := min(n, start+size)
		if err := fn(tx.StmtContext(ctx, v.stmts[i]), start, to, size); err != nil {
			return err
		}
		start = to
	}
	return nil
}

// query runs st with args and calls row for each row it answers.
func query(ctx context.Context, st *sql.Stmt, args []any, row func(*sql.Rows) error) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// bulk is SQLite's sqlstore.Bulk.
type bulk struct {
	lock, idem, usageKeys, budgets, entries, records, balances, daily values
	newGrants, grantUpdates, grantRemaining                           values
}

var _ sqlstore.Bulk = (*bulk)(nil)

// newBulk prepares the debit path's statements on the writer connection,
// before any transaction holds it.
func newBulk(ctx context.Context, db *sql.DB) (*bulk, error) {
	b := &bulk{
		lock: values{head: sqlstore.LockColumns + ` WHERE a.id IN (`, cell: "?", cols: 1, tail: `) ORDER BY a.id`},
		// The keys drive the join, each found by the primary key, whatever
		// the planner's version: SQLite 3.40 (Debian's sqlite3 shell) plans
		// "(scope, key) IN (VALUES …)" as a scan of the whole table; the
		// driver's 3.54 searches the key (TestBulkPlansSearch).
		idem: values{head: `SELECT ` + sqlstore.IdemRowColumns + ` FROM (VALUES `,
			cell: "(?,?)", cols: 2, tail: `) AS v CROSS JOIN idempotency i ON i.scope = v.column1 AND i.key = v.column2`},
		// Likewise the usage keys drive the search of entries_usage_key,
		// named: without statistics the planner prefers the primary key's
		// prefix, every entry of the account.
		usageKeys: values{head: `SELECT ` + sqlstore.IdemEntryColumns + ` FROM (VALUES `,
			cell: "(?,?)", cols: 2, tail: `) AS v CROSS JOIN entries e INDEXED BY entries_usage_key ON e.account_id = v.column1 AND e.idempotency_key = v.column2 AND ` + sqlstore.UsageKeyWhere},
		budgets: values{head: `UPDATE budgets SET spent = CASE WHEN kind = 'monthly' AND period_start < ? THEN 0 ELSE spent END + v.column3,
period_start = CASE WHEN kind = 'monthly' AND period_start < ? THEN ? ELSE period_start END FROM (VALUES `, lead: 3,
			cell: "(?, ?, CAST(? AS BIGINT))", cols: 3,
			tail: `) AS v WHERE budgets.account_id = v.column1 AND budgets.subject = v.column2 RETURNING ` + sqlstore.BudgetColumns},
		entries: values{head: `INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, description, subject, idempotency_key, top_up_id, created_at, grant_id, hold_id, funding, answer) VALUES `,
			cell: "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cols: 15},
		newGrants: values{head: `INSERT INTO grants (` + sqlstore.GrantColumns + `) VALUES `,
			cell: "(?,?,?,?,?,?,?,?,?,?,?,?)", cols: 12},
		grantUpdates: values{head: `UPDATE grants SET remaining = v.column2, status = v.column3 FROM (VALUES `,
			cell: "(?, CAST(? AS BIGINT), ?)", cols: 3, tail: `) AS v WHERE grants.id = v.column1`},
		// Most changed grants are still active: writing their remaining
		// alone leaves the partial index grants_active untouched (SQLite
		// rewrites the entries of every index whose columns, or whose WHERE
		// clause's, an UPDATE sets), one B-tree write fewer per grant.
		grantRemaining: values{head: `UPDATE grants SET remaining = v.column2 FROM (VALUES `,
			cell: "(?, CAST(? AS BIGINT))", cols: 2, tail: `) AS v WHERE grants.id = v.column1`},
		records: values{head: `INSERT INTO idempotency (scope, key, request_hash, result, created_at) VALUES `,
			cell: "(?,?,?,?,?)", cols: 5},
		balances: values{head: `UPDATE accounts SET balance = v.column2, last_seq = v.column3, turnover = v.column4, overdraft = v.column5, updated_at = ? FROM (VALUES `, lead: 1,
			cell: "(?, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))", cols: 5, tail: `) AS v WHERE accounts.id = v.column1`},
		daily: values{head: `INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance, removed) VALUES `,
			cell: "(?,?,?,?,?,?,?,?,?)", cols: 9, tail: sqlstore.DailyUpsert},
	}
	for _, v := range []*values{&b.lock, &b.idem, &b.usageKeys, &b.budgets, &b.entries, &b.records, &b.balances, &b.daily, &b.newGrants, &b.grantUpdates, &b.grantRemaining} {
		if err := v.prepare(ctx, db); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *bulk) LockAccounts(ctx context.Context, tx *sql.Tx, ids []string, row func(*sql.Rows) error) error {
	return b.lock.each(ctx, tx, len(ids), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, to-from)
		for _, id := range ids[from:to] {
			args = append(args, id)
		}
		return query(ctx, st, args, row)
	})
}

func (b *bulk) LookupIdempotency(ctx context.Context, tx *sql.Tx, keys, usage []ledger.IdemKey, row func(*sql.Rows) error) error {
	err := b.idem.each(ctx, tx, len(keys), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, 2*(to-from))
		for _, k := range keys[from:to] {
			args = append(args, string(k.Scope), k.Key)
		}
		return query(ctx, st, args, row)
	})
	if err != nil {
		return err
	}
	return b.usageKeys.each(ctx, tx, len(usage), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, 2*(to-from))
		for _, k := range usage[from:to] {
			args = append(args, k.Scope.Account(), k.Key)
		}
		return query(ctx, st, args, row)
	})
}

func (b *bulk) SpendBudgets(ctx context.Context, tx *sql.Tx, month int64, spend []debit.Spend, row func(*sql.Rows) error) error {
	return b.budgets.each(ctx, tx, len(spend), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, 3+3*(to-from))
		args = append(args, month, month, month)
		for _, k := range spend[from:to] {
			args = append(args, k.AccountID, k.Subject, int64(k.Amount))
		}
		return query(ctx, st, args, row)
	})
}

func (b *bulk) InsertEntries(ctx context.Context, tx *sql.Tx, entries []ledger.Entry) error {
	return b.entries.each(ctx, tx, len(entries), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, 15*(to-from))
		for i := from; i < to; i++ {
			e := &entries[i]
			args = append(args, e.AccountID, e.Seq, e.ID, string(e.Kind), int64(e.Amount), int64(e.BalanceAfter),
				e.Description, e.Subject, e.IdempotencyKey, sqlstore.NullIfEmpty(e.TopUpID), e.CreatedAt.UnixMicro(),
				sqlstore.NullIfEmpty(e.GrantID), sqlstore.NullIfEmpty(e.HoldID), ledger.EncodeFunding(e.Funding), e.Answer)
		}
		_, err := st.ExecContext(ctx, args...)
		return err
	})
}

func (b *bulk) InsertRecords(ctx context.Context, tx *sql.Tx, recs []ledger.IdemRecord, now int64) error {
	return b.records.each(ctx, tx, len(recs), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, 5*(to-from))
		for i := from; i < to; i++ {
			r := &recs[i]
			args = append(args, string(r.Scope), r.Key, r.Hash, sqlstore.EncodeResult(r.Result), now)
		}
		_, err := st.ExecContext(ctx, args...)
		return err
	})
}

func (b *bulk) UpdateBalances(ctx context.Context, tx *sql.Tx, accounts []*ledger.AccountState, now int64) error {
	return b.balances.each(ctx, tx, len(accounts), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, 1+5*(to-from))
		args = append(args, now)
		for _, a := range accounts[from:to] {
			args = append(args, a.ID, int64(a.Balance), a.LastSeq, int64(a.Turnover), int64(a.OverdraftNow()))
		}
		_, err := st.ExecContext(ctx, args...)
		return err
	})
}

func (b *bulk) UpsertDaily(ctx context.Context, tx *sql.Tx, rows []sqlstore.DailyRow) error {
	return b.daily.each(ctx, tx, len(rows), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, 9*(to-from))
		for _, r := range rows[from:to] {
			args = append(args, r.Account, r.Day, r.Usage, r.Credits, r.TopUps, r.TopUpCredits, r.Closing, r.Low, r.Removed)
		}
		_, err := st.ExecContext(ctx, args...)
		return err
	})
}

// LoadGrants does nothing: LockAccounts read the grants (LockColumns).
// Write runs each kind of row's statement in turn: on SQLite a statement
// costs no round trip.
func (b *bulk) Write(ctx context.Context, tx *sql.Tx, w sqlstore.Writes) error {
	return sqlstore.WriteEach(ctx, tx, b, w)
}

func (b *bulk) LoadGrants(context.Context, *sql.Tx, []string, func(*sql.Rows) error) error {
	return nil
}

func (b *bulk) InsertGrants(ctx context.Context, tx *sql.Tx, grants []*ledger.Grant) error {
	return b.newGrants.each(ctx, tx, len(grants), func(st *sql.Stmt, from, to int) error {
		args := make([]any, 0, 12*(to-from))
		for _, g := range grants[from:to] {
			args = append(args, sqlstore.GrantArgs(g)...)
		}
		_, err := st.ExecContext(ctx, args...)
		return err
	})
}

func (b *bulk) UpdateGrants(ctx context.Context, tx *sql.Tx, grants []*ledger.Grant) error {
	// A grant that is still active was active when loaded (grants never
	// become active again): only its remaining changed.
	var active, ended []*ledger.Grant
	for _, g := range grants {
		if g.Status == ledger.GrantActive {
			active = append(active, g)
		} else {
			ended = append(ended, g)
		}
	}
	err := b.grantRemaining.padded(ctx, tx, len(active), func(st *sql.Stmt, from, to, size int) error {
		args := make([]any, 0, 2*size)
		for _, g := range active[from:to] {
			args = append(args, g.ID, int64(g.Remaining))
		}
		for range size - (to - from) {
			args = append(args, "", int64(0)) // no grant has the id ""
		}
		_, err := st.ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return err
	}
	return b.grantUpdates.padded(ctx, tx, len(ended), func(st *sql.Stmt, from, to, size int) error {
		args := make([]any, 0, 3*size)
		for _, g := range ended[from:to] {
			args = append(args, g.ID, int64(g.Remaining), string(g.Status))
		}
		for range size - (to - from) {
			args = append(args, "", int64(0), "") // no grant has the id ""
		}
		_, err := st.ExecContext(ctx, args...)
		return err
	})
}
