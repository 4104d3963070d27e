package postgres

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"strings"
	"sync"

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
	// One statement, one round trip, for both places a key is kept: the
	// NULLs of the first part are typed, as a UNION's first part decides.
	// The entries are searched once per usage key, through
	// entries_usage_key: OFFSET 0 keeps the planner from flattening the
	// LATERAL subquery into a join, which, while the statistics still
	// counted the index empty (after the migration, or a burst of new
	// entries), walked the whole index once per group.
	lookupIdem = `SELECT i.scope, i.key, i.request_hash, i.result, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::bigint, NULL::text
FROM idempotency i JOIN unnest($1::text[], $2::text[]) AS k(scope, key) ON i.scope = k.scope AND i.key = k.key
UNION ALL
SELECT e.* FROM unnest($3::text[], $4::text[]) AS u(account, key) CROSS JOIN LATERAL (
SELECT ` + sqlstore.IdemEntryColumns + ` FROM entries e
WHERE e.account_id = u.account AND e.idempotency_key = u.key AND ` + sqlstore.UsageKeyWhere + ` OFFSET 0) AS e`
	spendBudgets = `UPDATE budgets SET spent = CASE WHEN kind = 'monthly' AND period_start < $1 THEN 0 ELSE spent END + v.v_amount,
period_start = CASE WHEN kind = 'monthly' AND period_start < $1 THEN $1 ELSE period_start END
FROM unnest($2::text[], $3::text[], $4::bigint[]) AS v(v_account, v_subject, v_amount)
WHERE budgets.account_id = v.v_account AND budgets.subject = v.v_subject RETURNING ` + sqlstore.BudgetColumns
	insertEntries = `INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, description, subject, idempotency_key, top_up_id, created_at, grant_id, hold_id, funding, answer)
SELECT u.a, u.b, u.c, u.d, u.e, u.f, u.g, u.h, u.i, NULLIF(u.j, ''), u.k, NULLIF(u.l, ''), NULLIF(u.m, ''), u.n, u.o
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[],
$12::text[], $13::text[], $14::text[], $15::text[])
AS u(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o)`
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

func (bulk) LookupIdempotency(ctx context.Context, tx *sql.Tx, keys, usage []ledger.IdemKey, row func(*sql.Rows) error) error {
	if len(keys) == 0 {
		return nil
	}
	scopes, names := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		scopes[i], names[i] = string(k.Scope), k.Key
	}
	accounts, usageNames := make([]string, len(usage)), make([]string, len(usage))
	for i, k := range usage {
		accounts[i], usageNames[i] = k.Scope.Account(), k.Key
	}
	return query(ctx, tx, lookupIdem, row, scopes, names, accounts, usageNames)
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
	return entriesStmt(entries).exec(ctx, tx)
}

func entriesStmt(entries []ledger.Entry) stmt {
	n := len(entries)
	accounts, ids, kinds, descs, subjects, keys, topUps := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	grants, holds, funding, answers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seqs, amounts, after, created := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range entries {
		e := &entries[i]
		accounts[i], seqs[i], ids[i], kinds[i] = e.AccountID, e.Seq, e.ID, string(e.Kind)
		amounts[i], after[i], descs[i], subjects[i] = int64(e.Amount), int64(e.BalanceAfter), e.Description, e.Subject
		keys[i], topUps[i], created[i] = e.IdempotencyKey, e.TopUpID, e.CreatedAt.UnixMicro()
		grants[i], holds[i], funding[i], answers[i] = e.GrantID, e.HoldID, ledger.EncodeFunding(e.Funding), e.Answer
	}
	return stmt{insertEntries, []any{accounts, seqs, ids, kinds, amounts, after, descs, subjects, keys, topUps, created,
		grants, holds, funding, answers}}
}

func (bulk) InsertRecords(ctx context.Context, tx *sql.Tx, recs []ledger.IdemRecord, now int64) error {
	if len(recs) == 0 {
		return nil
	}
	return recordsStmt(recs, now).exec(ctx, tx)
}

func recordsStmt(recs []ledger.IdemRecord, now int64) stmt {
	n := len(recs)
	scopes, keys, hashes, results, at := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	for i := range recs {
		r := &recs[i]
		scopes[i], keys[i], hashes[i], results[i], at[i] = string(r.Scope), r.Key, r.Hash, sqlstore.EncodeResult(r.Result), now
	}
	return stmt{insertRecords, []any{scopes, keys, hashes, results, at}}
}

func (bulk) UpdateBalances(ctx context.Context, tx *sql.Tx, accounts []*ledger.AccountState, now int64) error {
	if len(accounts) == 0 {
		return nil
	}
	return balancesStmt(accounts, now).exec(ctx, tx)
}

func balancesStmt(accounts []*ledger.AccountState, now int64) stmt {
	n := len(accounts)
	ids, balances, seqs, turnovers, overdrafts := make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, a := range accounts {
		ids[i], balances[i], seqs[i], turnovers[i], overdrafts[i] = a.ID, int64(a.Balance), a.LastSeq, int64(a.Turnover), int64(a.OverdraftNow())
	}
	return stmt{updateBalances, []any{now, ids, balances, seqs, turnovers, overdrafts}}
}

func (bulk) UpsertDaily(ctx context.Context, tx *sql.Tx, rows []sqlstore.DailyRow) error {
	if len(rows) == 0 {
		return nil
	}
	return dailyStmt(rows).exec(ctx, tx)
}

func dailyStmt(rows []sqlstore.DailyRow) stmt {
	n := len(rows)
	accounts, days := make([]string, n), make([]string, n)
	usage, credits, topUps, topUpCredits, closing, low, removed := make([]int64, n), make([]int64, n), make([]int64, n),
		make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, r := range rows {
		accounts[i], days[i], usage[i], credits[i] = r.Account, r.Day, r.Usage, r.Credits
		topUps[i], topUpCredits[i], closing[i], low[i], removed[i] = r.TopUps, r.TopUpCredits, r.Closing, r.Low, r.Removed
	}
	return stmt{upsertDaily, []any{accounts, days, usage, credits, topUps, topUpCredits, closing, low, removed}}
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
	return newGrantsStmt(grants).exec(ctx, tx)
}

func newGrantsStmt(grants []*ledger.Grant) stmt {
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
	return stmt{insertGrants, args}
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
	return changedGrantsStmt(grants).exec(ctx, tx)
}

func changedGrantsStmt(grants []*ledger.Grant) stmt {
	n := len(grants)
	ids, remaining, status := make([]string, n), make([]int64, n), make([]string, n)
	for i, g := range grants {
		ids[i], remaining[i], status[i] = g.ID, int64(g.Remaining), string(g.Status)
	}
	return stmt{updateGrants, []any{ids, remaining, status}}
}

// Write sends a ledger transaction's writes as one statement: each kind of
// row is a data-modifying WITH query of it, so that a debit group's five
// or six writes cost one round trip instead of one each. The WITH queries
// share the statement's snapshot and none reads what another writes: they
// touch different tables, or different rows of one (the grants made and
// those changed); foreign keys are checked at the statement's end, so an
// entry may name a grant inserted beside it. Any failure fails the whole
// statement, and so the transaction, as a failure of one of them did.
func (bulk) Write(ctx context.Context, tx *sql.Tx, w sqlstore.Writes) error {
	var parts []stmt
	if len(w.NewGrants) > 0 {
		parts = append(parts, newGrantsStmt(w.NewGrants))
	}
	if len(w.ChangedGrants) > 0 {
		parts = append(parts, changedGrantsStmt(w.ChangedGrants))
	}
	if len(w.Entries) > 0 {
		parts = append(parts, entriesStmt(w.Entries))
	}
	if len(w.Records) > 0 {
		parts = append(parts, recordsStmt(w.Records, w.Now))
	}
	if len(w.Balances) > 0 {
		parts = append(parts, balancesStmt(w.Balances, w.Now))
	}
	if len(w.Daily) > 0 {
		parts = append(parts, dailyStmt(w.Daily))
	}
	if len(parts) == 0 {
		return nil
	}
	return combine(parts).exec(ctx, tx)
}

// stmt is one statement and its arguments.
type stmt struct {
	q    string
	args []any
}

func (s stmt) exec(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, s.q, s.args...)
	return err
}

// placeholder matches a statement's $N.
var placeholder = regexp.MustCompile(`\$[0-9]+`)

// combine makes one statement of data-modifying statements: all but the
// last become WITH queries (w0, w1, …) of the last, and each one's $N is
// moved past the arguments of those before it. The text depends only on
// which kinds of rows are written, so it is made once per combination
// (combined) and pgx prepares a handful of them once.
func combine(parts []stmt) stmt {
	if len(parts) == 1 {
		return parts[0]
	}
	texts := make([]string, len(parts))
	var args []any
	for i, p := range parts {
		texts[i] = p.q
		args = append(args, p.args...)
	}
	key := strings.Join(texts, "\x00")
	if q, ok := combined.Load(key); ok {
		return stmt{q.(string), args}
	}
	var b strings.Builder
	offset := 0
	for i, p := range parts {
		q := placeholder.ReplaceAllStringFunc(p.q, func(m string) string {
			n, _ := strconv.Atoi(m[1:])
			return "$" + strconv.Itoa(n+offset)
		})
		offset += len(p.args)
		switch {
		case i == 0:
			b.WriteString("WITH w0 AS (" + q + ")")
		case i < len(parts)-1:
			b.WriteString(", w" + strconv.Itoa(i) + " AS (" + q + ")")
		default:
			b.WriteString("\n" + q)
		}
	}
	q, _ := combined.LoadOrStore(key, b.String())
	return stmt{q.(string), args}
}

// combined caches combine's texts by the texts they join.
var combined sync.Map
