package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/topup/topup/internal/progress"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/statement"
)

// --explain prints the plan of every statement that the read path and the
// debit path run for one request, on the database's account with the most
// entries, against the
// database the run leaves: EXPLAIN (ANALYZE, BUFFERS) in a transaction
// rolled back on PostgreSQL, EXPLAIN QUERY PLAN on SQLite. Each statement
// is the store's own text (the package's constants where they are
// exported, a copy where not), and each says why its cost is bounded.

// explainArgs are the values the statements are planned with.
type explainArgs struct {
	account            string
	last, mid          int64  // the account's last entry and its middle one
	midID              string // the middle entry's id
	after, through     int64  // a statement month's range
	now, monthStart    int64
	idemScope, idemKey string
}

// explainQuery is one statement of a request.
type explainQuery struct {
	request, name, why string
	pg, sqlite         string // the statement; "" for the same text as pg
	args               func(a explainArgs) []any
}

// explainQueries are the statements of each request, in the order the
// request runs them.
var explainQueries = []explainQuery{
	{"account", "the account row", "primary key: one row", `SELECT id, balance, last_seq, held, held_until FROM accounts WHERE id = $1`, "",
		func(a explainArgs) []any { return []any{a.account} }},
	{"account", "held credit, once held_until has passed", "holds_active (account_id, expires_at) WHERE status = 'active': the account's active holds only",
		`SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM holds WHERE account_id = $1 AND status = 'active' AND expires_at > $2`, "",
		func(a explainArgs) []any { return []any{a.account, a.now} }},
	{"account", "paid and promotional credit", "grants_active (account_id) WHERE status = 'active': the account's active grants only",
		`SELECT category, CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM grants WHERE account_id = $1 AND status = 'active' GROUP BY category`, "",
		func(a explainArgs) []any { return []any{a.account} }},
	{"account", "Automatic Top-Up settings", "primary key: one row", `SELECT enabled, threshold, target FROM auto_top_up WHERE account_id = $1`, "",
		func(a explainArgs) []any { return []any{a.account} }},
	{"account", "automatic top-ups this month", "top_ups_auto_month (account_id, first_attempt_at) WHERE trigger <> 'manual' (migration 0021): this month's automatic top-ups only",
		`SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM top_ups WHERE account_id = $1 AND trigger <> 'manual' AND status IN ('succeeded', 'pending', 'processing', 'requires_action') AND first_attempt_at >= $2`, "",
		func(a explainArgs) []any { return []any{a.account, a.monthStart} }},
	{"account", "budgets that may stop the account", "budgets_subject (account_id, subject): the account's budgets",
		`SELECT id, spent, amount_limit FROM budgets WHERE account_id = $1 AND (subject = $2 OR subject = '')`, "",
		func(a explainArgs) []any { return []any{a.account, ""} }},

	{"transactions, first page", "the newest page", "entries_pkey (account_id, seq) read backwards from the end, LIMIT 101",
		`SELECT ` + explainEntryCols + ` FROM entries WHERE account_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT 101`, "",
		func(a explainArgs) []any { return []any{a.account, int64(1) << 62} }},
	{"transactions, deep page", "the cursor's entry", "entries_id_key (id): one row",
		`SELECT seq FROM entries WHERE account_id = $1 AND id = $2`, "",
		func(a explainArgs) []any { return []any{a.account, a.midID} }},
	{"transactions, deep page", "the page after it", "entries_pkey (account_id, seq) read backwards from the cursor's seq, LIMIT 101: the same cost at any depth",
		`SELECT ` + explainEntryCols + ` FROM entries WHERE account_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT 101`, "",
		func(a explainArgs) []any { return []any{a.account, a.mid} }},

	{"statement", "currency and last entry", "primary key: one row", `SELECT currency, last_seq FROM accounts WHERE id = $1`, "",
		func(a explainArgs) []any { return []any{a.account} }},
	{"statement", "one probe of the binary search (about 2·log2(entries) probes: 42 for 1.8 million)", "entries_pkey (account_id, seq): one row",
		`SELECT created_at FROM entries WHERE account_id = $1 AND seq = $2`, "",
		func(a explainArgs) []any { return []any{a.account, a.mid} }},
	{"statement", "the month's entries, streamed", "entries_pkey (account_id, seq) from the month's first entry to its last: the month's rows only, in index order (no sort)",
		`SELECT ` + explainEntryCols + ` FROM entries WHERE account_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq`, "",
		func(a explainArgs) []any { return []any{a.account, a.after, a.through} }},

	{"debit", "LockAccounts", "accounts_pkey and auto_top_up_pkey: one row per account of the group (SQLite: and its active grants, by grants_active)",
		sqlstore.LockColumnsWithoutGrants + ` WHERE a.id = ANY($1::text[]) ORDER BY a.id FOR NO KEY UPDATE OF a`,
		sqlstore.LockColumns + ` WHERE a.id IN ($1) ORDER BY a.id`,
		func(a explainArgs) []any { return []any{explainList(a.account)} }},
	{"debit", "LookupIdempotency, rows", "idempotency_pkey (scope, key): one probe per key of the group (rows of keys other than usage's, and usage's from before migration 0022)",
		`SELECT ` + sqlstore.IdemRowColumns + ` FROM idempotency i JOIN unnest($1::text[], $2::text[]) AS k(scope, key) ON i.scope = k.scope AND i.key = k.key`,
		`SELECT ` + sqlstore.IdemRowColumns + ` FROM idempotency i WHERE i.scope = $1 AND i.key = $2`,
		func(a explainArgs) []any { return []any{explainList(a.idemScope), explainList(a.idemKey)} }},
	{"debit", "LookupIdempotency, usage keys in their entries", "entries_usage_key (account_id, idempotency_key): one probe per usage key of the group",
		`SELECT e.* FROM unnest($1::text[], $2::text[]) AS u(account, key) CROSS JOIN LATERAL (SELECT ` + sqlstore.IdemEntryColumns +
			` FROM entries e WHERE e.account_id = u.account AND e.idempotency_key = u.key AND ` + sqlstore.UsageKeyWhere + ` OFFSET 0) AS e`,
		`SELECT ` + sqlstore.IdemEntryColumns + ` FROM entries e INDEXED BY entries_usage_key WHERE e.account_id = $1 AND e.idempotency_key = $2 AND ` + sqlstore.UsageKeyWhere,
		func(a explainArgs) []any { return []any{explainList(a.account), explainList(a.idemKey)} }},
	{"debit", "LoadGrants (PostgreSQL; SQLite reads them in LockAccounts)", "grants_active (account_id) WHERE status = 'active': the group's active grants only",
		`SELECT ` + sqlstore.GrantColumns + ` FROM grants WHERE status = 'active' AND account_id = ANY($1::text[])`, "-",
		func(a explainArgs) []any { return []any{explainList(a.account)} }},

	{"grants list", "a page of grants", "grants_account (account_id, id) read backwards, LIMIT 11",
		`SELECT ` + sqlstore.GrantColumns + ` FROM grants WHERE account_id = $1 ORDER BY id DESC LIMIT 11`, "",
		func(a explainArgs) []any { return []any{a.account} }},
	{"holds list", "a page of holds", "holds_account (account_id, id) read backwards, LIMIT 11",
		`SELECT id, amount, status, expires_at FROM holds WHERE account_id = $1 ORDER BY id DESC LIMIT 11`, "",
		func(a explainArgs) []any { return []any{a.account} }},
}

// explainEntryCols is the store's entryCols.
const explainEntryCols = `id, seq, kind, amount, balance_after, description, subject, idempotency_key, COALESCE(top_up_id, ''), created_at,
COALESCE(grant_id, ''), COALESCE(hold_id, ''), funding`

// explainList is a one-element list, as the statements that take a
// group's accounts or keys receive them: an array on PostgreSQL; SQLite's
// texts take the element itself.
type explainList string

// explain prints each statement's plan for the account with the most
// entries in the database (this run's or an earlier one's).
func (b *bench) explain(ctx context.Context, store *sqlstore.DB, w io.Writer) error {
	pg := store.DialectName() == "postgres"
	db := store.DB()
	var a explainArgs
	if err := db.QueryRowContext(ctx, `SELECT id, last_seq FROM accounts ORDER BY last_seq DESC, id LIMIT 1`).Scan(&a.account, &a.last); err != nil {
		return fmt.Errorf("bench: explain: %w", err)
	}
	a.idemScope, a.idemKey = a.account+"/usage", b.runID+"-explain"
	a.mid = max(a.last/2, 1)
	if err := db.QueryRowContext(ctx, `SELECT id FROM entries WHERE account_id = $1 AND seq = $2`, a.account, a.mid).Scan(&a.midID); err != nil {
		return fmt.Errorf("bench: explain: %w", err)
	}
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	a.now, a.monthStart = now.UnixMicro(), month.UnixMicro()
	m, err := statement.ParseMonth(month.AddDate(0, -6, 0).Format("2006-01"))
	if err != nil {
		return err
	}
	r, err := store.StatementRange(ctx, a.account, m)
	if err != nil {
		return fmt.Errorf("bench: explain: %w", err)
	}
	a.after, a.through = r.After, r.Through
	fmt.Fprintf(w, "\nplans on %s for the account with the most entries, %s (%s entries; deep cursor: entry %s; statement %s: entries %s to %s):\n",
		store.DialectName(), a.account, progress.Commas(a.last), progress.Commas(a.mid), m, progress.Commas(a.after+1), progress.Commas(a.through))
	for _, q := range explainQueries {
		text := q.pg
		if !pg && q.sqlite == "-" {
			continue
		}
		if !pg && q.sqlite != "" {
			text = q.sqlite
		}
		args := q.args(a)
		for i, v := range args {
			if l, ok := v.(explainList); ok {
				if pg {
					args[i] = []string{string(l)}
				} else {
					args[i] = string(l)
				}
			}
		}
		var plan []string
		if pg {
			plan, err = explainPG(ctx, db, text, args)
		} else {
			plan, err = explainSQLite(ctx, db, text, args)
		}
		if err != nil {
			return fmt.Errorf("bench: explain %s, %s: %w", q.request, q.name, err)
		}
		fmt.Fprintf(w, "\n[%s] %s — %s\n    %s\n", q.request, q.name, q.why, strings.Join(strings.Fields(text), " "))
		for _, l := range plan {
			fmt.Fprintf(w, "    | %s\n", l)
		}
	}
	return nil
}

// explainPG runs EXPLAIN ANALYZE in a transaction it rolls back (the lock
// statement locks).
func explainPG(ctx context.Context, db *sql.DB, q string, args []any) ([]string, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY OFF) `+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// explainSQLite runs EXPLAIN QUERY PLAN and indents each step under its
// parent.
func explainSQLite(ctx context.Context, db *sql.DB, q string, args []any) ([]string, error) {
	rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	depth := map[int64]int{}
	var out []string
	for rows.Next() {
		var id, parent, notUsed int64
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			return nil, err
		}
		depth[id] = depth[parent] + 1
		out = append(out, strings.Repeat("  ", depth[id]-1)+detail)
	}
	return out, rows.Err()
}
