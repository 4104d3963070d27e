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
	lockAccounts = sqlstore.LockColumns + ` WHERE a.id = ANY($1::text[]) ORDER BY a.id FOR UPDATE OF a`
	lookupIdem   = `SELECT i.scope, i.key, i.request_hash, i.result FROM idempotency i
JOIN unnest($1::text[], $2::text[]) AS k(scope, key) ON i.scope = k.scope AND i.key = k.key`
	spendBudgets = `UPDATE budgets SET spent = CASE WHEN kind = 'monthly' AND period_start < $1 THEN 0 ELSE spent END + v.v_amount,
period_start = CASE WHEN kind = 'monthly' AND period_start < $1 THEN $1 ELSE period_start END
FROM unnest($2::text[], $3::text[], $4::bigint[]) AS v(v_account, v_subject, v_amount)
WHERE budgets.account_id = v.v_account AND budgets.subject = v.v_subject RETURNING ` + sqlstore.BudgetColumns
	insertEntries = `INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, description, subject, idempotency_key, top_up_id, created_at)
SELECT u.a, u.b, u.c, u.d, u.e, u.f, u.g, u.h, u.i, NULLIF(u.j, ''), u.k
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[])
AS u(a, b, c, d, e, f, g, h, i, j, k)`
	insertRecords = `INSERT INTO idempotency (scope, key, request_hash, result, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])`
	updateBalances = `UPDATE accounts SET balance = v.b, last_seq = v.s, turnover = v.t, updated_at = $1
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS v(id, b, s, t) WHERE accounts.id = v.id`
	upsertDaily = `INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])` + sqlstore.DailyUpsert
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
	seqs, amounts, after, created := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range entries {
		e := &entries[i]
		accounts[i], seqs[i], ids[i], kinds[i] = e.AccountID, e.Seq, e.ID, string(e.Kind)
		amounts[i], after[i], descs[i], subjects[i] = int64(e.Amount), int64(e.BalanceAfter), e.Description, e.Subject
		keys[i], topUps[i], created[i] = e.IdempotencyKey, e.TopUpID, e.CreatedAt.UnixMicro()
	}
	_, err := tx.ExecContext(ctx, insertEntries, accounts, seqs, ids, kinds, amounts, after, descs, subjects, keys, topUps, created)
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
	ids, balances, seqs, turnovers := make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, a := range accounts {
		ids[i], balances[i], seqs[i], turnovers[i] = a.ID, int64(a.Balance), a.LastSeq, int64(a.Turnover)
	}
	_, err := tx.ExecContext(ctx, updateBalances, now, ids, balances, seqs, turnovers)
	return err
}

func (bulk) UpsertDaily(ctx context.Context, tx *sql.Tx, rows []sqlstore.DailyRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	accounts, days := make([]string, n), make([]string, n)
	usage, credits, topUps, topUpCredits, closing, low := make([]int64, n), make([]int64, n), make([]int64, n),
		make([]int64, n), make([]int64, n), make([]int64, n)
	for i, r := range rows {
		accounts[i], days[i], usage[i], credits[i] = r.Account, r.Day, r.Usage, r.Credits
		topUps[i], topUpCredits[i], closing[i], low[i] = r.TopUps, r.TopUpCredits, r.Closing, r.Low
	}
	_, err := tx.ExecContext(ctx, upsertDaily, accounts, days, usage, credits, topUps, topUpCredits, closing, low)
	return err
}
