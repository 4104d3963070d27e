package postgres

import (
	"context"
	"database/sql"

	"github.com/topup/topup/internal/debit"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/sqlstore"
)

// bulk is PostgreSQL's sqlstore.Bulk: each statement takes one array per
// column through unnest, so any number of rows is one statement with one
// text, prepared once by pgx and sent in one round trip.
type bulk struct{}

var _ sqlstore.Bulk = bulk{}

const (
	lockAccounts = sqlstore.LockColumnsWithoutGrants + ` WHERE a.id = ANY($1::text[]) ORDER BY a.id FOR NO KEY UPDATE OF a`
	lookupIdem   = `SELECT i.scope, i.key, i.request_hash, i.result FROM idempotency i
JOIN unnest($1::text[], $2::text[]) AS k(scope, key) ON i.scope = k.scope AND i.key = k.key`
	spendBudgets = `UPDATE budgets SET spent = CASE WHEN kind = 'monthly' AND period_start < $1 THEN 0 ELSE spent END + v.v_amount,
period_start = CASE WHEN kind = 'monthly' AND period_start < $1 THEN $1 ELSE period_start END
FROM unnest($2::text[], $3::text[], $4::bigint[]) AS v(v_account, v_subject, v_amount)
WHERE budgets.account_id = v.v_account AND budgets.subject = v.v_subject RETURNING ` + sqlstore.BudgetColumns
	insertEntries = `INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, description, subject, idempotency_key, top_up_id, created_at, grant_id, hold_id, funding)
SELECT u.a, u.b, u.c, u.d, u.e, u.f, u.g, u.h, u.i, NULLIF(u.j, ''), u.k, NULLIF(u.l, ''), NULLIF(u.m, ''), u.n
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[],
$12::text[], $13::text[], $14::text[])
AS u(a, b, c, d, e, f, g, h, i, j, k, l, m, n)`
	loadGrants   = `SELECT ` + sqlstore.GrantColumns + ` FROM grants WHERE status = 'active' AND account_id = ANY($1::text[])`
	insertGrants = `INSERT INTO grants (` + sqlstore.GrantColumns + `)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[])`
	updateGrants  = `UPDATE grants SET remaining = v.r, status = v.s FROM unnest($1::text[], $2::bigint[], $3::text[]) AS v(id, r, s) WHERE grants.id = v.id`
	insertRecords = `INSERT INTO idempotency (scope, key, request_hash, result, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])`
	updateBalances = `UPDATE accounts SET balance = v.b, last_seq = v.s, turnover = v.t, overdraft = v.o, updated_at = $1
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS v(id, b, s, t, o) WHERE accounts.id = v.id`
	upsertDaily = `INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance, removed)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])` + sqlstore.DailyUpsert
)

// query runs q and calls row for each row it answers.
func query(ctx context.Context, tx *sql.Tx, q string, row func(*sql.Rows) error, args ...any) error {
	rows, err := tx.QueryContext(ctx, q, args...)
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

func (bulk) LockAccounts(ctx context.Context, tx *sql.Tx, ids []string, row func(*sql.Rows) error) error {
	if len(ids) == 0 {
		return nil
	}
	return query(ctx, tx, lockAccounts, row, ids)
}

func (bulk) LookupIdempotency(ctx context.Context, tx *sql.Tx, keys []ledger.IdemKey, row func(*sql.Rows) error) error {
	if len(keys) == 0 {
		return nil
	}
	scopes, names := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		scopes[i], names[i] = string(k.Scope), k.Key
	}
	return query(ctx, tx, lookupIdem, row, scopes, names)
}

func (bulk) SpendBudgets(ctx context.Context, tx *sql.Tx, month int64, spend []debit.Spend, row func(*sql.Rows) error) error {
	if len(spend) == 0 {
		return nil
	}
	accounts, subjects, amounts := make([]string, len(spend)), make([]string, len(spend)), make([]int64, len(spend))
	for i, k := range spend {
		accounts[i], subjects[i], amounts[i] = k.AccountID, k.Subject, int64(k.Amount)
	}
	return query(ctx, tx, spendBudgets, row, month, accounts, subjects, amounts)
}

func (bulk) InsertEntries(ctx context.Context, tx *sql.Tx, entries []ledger.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	n := len(entries)
	accounts, ids, kinds, descs, subjects, keys, topUps := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	grants, holds, funding := make([]string, n), make([]string, n), make([]string, n)
	seqs, amounts, after, created := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range entries {
		e := &entries[i]
		accounts[i], seqs[i], ids[i], kinds[i] = e.AccountID, e.Seq, e.ID, string(e.Kind)
		amounts[i], after[i], descs[i], subjects[i] = int64(e.Amount), int64(e.BalanceAfter), e.Description, e.Subject
		keys[i], topUps[i], created[i] = e.IdempotencyKey, e.TopUpID, e.CreatedAt.UnixMicro()
		grants[i], holds[i], funding[i] = e.GrantID, e.HoldID, ledger.EncodeFunding(e.Funding)
	}
	_, err := tx.ExecContext(ctx, insertEntries, accounts, seqs, ids, kinds, amounts, after, descs, subjects, keys, topUps, created,
		grants, holds, funding)
	return err
}

func (bulk) InsertRecords(ctx context.Context, tx *sql.Tx, recs []ledger.IdemRecord, now int64) error {
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	scopes, keys, hashes, results, at := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	for i := range recs {
		r := &recs[i]
		scopes[i], keys[i], hashes[i], results[i], at[i] = string(r.Scope), r.Key, r.Hash, sqlstore.EncodeResult(r.Result), now
	}
	_, err := tx.ExecContext(ctx, insertRecords, scopes, keys, hashes, results, at)
	return err
}

func (bulk) UpdateBalances(ctx context.Context, tx *sql.Tx, accounts []*ledger.AccountState, now int64) error {
	if len(accounts) == 0 {
		return nil
	}
	n := len(accounts)
	ids, balances, seqs, turnovers, overdrafts := make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, a := range accounts {
		ids[i], balances[i], seqs[i], turnovers[i], overdrafts[i] = a.ID, int64(a.Balance), a.LastSeq, int64(a.Turnover), int64(a.OverdraftNow())
	}
	_, err := tx.ExecContext(ctx, updateBalances, now, ids, balances, seqs, turnovers, overdrafts)
	return err
}

func (bulk) UpsertDaily(ctx context.Context, tx *sql.Tx, rows []sqlstore.DailyRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	accounts, days := make([]string, n), make([]string, n)
	usage, credits, topUps, topUpCredits, closing, low, removed := make([]int64, n), make([]int64, n), make([]int64, n),
		make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, r := range rows {
		accounts[i], days[i], usage[i], credits[i] = r.Account, r.Day, r.Usage, r.Credits
		topUps[i], topUpCredits[i], closing[i], low[i], removed[i] = r.TopUps, r.TopUpCredits, r.Closing, r.Low, r.Removed
	}
	_, err := tx.ExecContext(ctx, upsertDaily, accounts, days, usage, credits, topUps, topUpCredits, closing, low, removed)
	return err
}

func (bulk) LoadGrants(ctx context.Context, tx *sql.Tx, ids []string, row func(*sql.Rows) error) error {
	if len(ids) == 0 {
		return nil
	}
	return query(ctx, tx, loadGrants, row, ids)
}

func (bulk) InsertGrants(ctx context.Context, tx *sql.Tx, grants []*ledger.Grant) error {
	if len(grants) == 0 {
		return nil
	}
	cols := make([][]any, 12)
	for _, g := range grants {
		for i, v := range sqlstore.GrantArgs(g) {
			cols[i] = append(cols[i], v)
		}
	}
	args := make([]any, 12)
	for i, c := range cols {
		args[i] = typed(c)
	}
	_, err := tx.ExecContext(ctx, insertGrants, args...)
	return err
}

// typed turns one column of values, all strings or all int64s, into the
// slice pgx sends as an array.
func typed(col []any) any {
	if _, ok := col[0].(string); ok {
		out := make([]string, len(col))
		for i, v := range col {
			out[i] = v.(string)
		}
		return out
	}
	out := make([]int64, len(col))
	for i, v := range col {
		out[i] = v.(int64)
	}
	return out
}

func (bulk) UpdateGrants(ctx context.Context, tx *sql.Tx, grants []*ledger.Grant) error {
	if len(grants) == 0 {
		return nil
	}
	n := len(grants)
	ids, remaining, status := make([]string, n), make([]int64, n), make([]string, n)
	for i, g := range grants {
		ids[i], remaining[i], status[i] = g.ID, int64(g.Remaining), string(g.Status)
	}
	_, err := tx.ExecContext(ctx, updateGrants, ids, remaining, status)
	return err
}
