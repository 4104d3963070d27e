package storetest

import (
	"database/sql"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/topup/topup/internal/sqlstore"
)

// ConsoleMigrationBackfillsTopUpCredits: migration 0006 fills the new
// daily_totals.top_up_credits from the ledger written before it, so the
// console's preview can leave real top-ups out of a month it replays. db is
// a connection to an empty database and files its full migration list.
func ConsoleMigrationBackfillsTopUpCredits(t *testing.T, db *sql.DB, files fs.FS) {
	t.Helper()
	if err := sqlstore.Migrate(ctx(t), db, Before(files, 6)); err != nil {
		t.Fatal(err)
	}
	// 2026-11-20: a 50.00 grant, a 20.00 top-up, 5.00 of usage.
	const day = int64(1_795_132_800_000_000) // 2026-11-20T00:00:00Z in microseconds
	for _, q := range []string{
		`INSERT INTO accounts (id, email, currency, balance, last_seq, api_key_hash, created_at, updated_at) VALUES ('acct_1', 'a@example.com', 'usd', 65000000, 3, 'h', 0, 0)`,
		`INSERT INTO top_ups (id, account_id, status, trigger, amount, next_attempt_at, crossed_at, created_at) VALUES ('tu_1', 'acct_1', 'succeeded', 'threshold', 20000000, 0, 0, 0)`,
		`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_1', 1, 'ent_1', 'credit', 50000000, 50000000, ` + strconv.FormatInt(day+1, 10) + `)`,
		`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_1', 2, 'ent_2', 'usage', -5000000, 45000000, ` + strconv.FormatInt(day+2, 10) + `)`,
		`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, top_up_id, created_at) VALUES ('acct_1', 3, 'ent_3', 'top_up', 20000000, 65000000, 'tu_1', ` + strconv.FormatInt(day+3, 10) + `)`,
		`INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, closing_balance, min_balance) VALUES ('acct_1', '2026-11-20', 5000000, 70000000, 1, 65000000, 45000000)`,
	} {
		if _, err := db.ExecContext(ctx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := sqlstore.Migrate(ctx(t), db, files); err != nil {
		t.Fatal(err)
	}
	var credits, topUpCredits int64
	if err := db.QueryRowContext(ctx(t), `SELECT credits, top_up_credits FROM daily_totals WHERE account_id = 'acct_1' AND day = '2026-11-20'`).Scan(&credits, &topUpCredits); err != nil {
		t.Fatal(err)
	}
	if credits != 70_000_000 || topUpCredits != 20_000_000 {
		t.Errorf("after 0006: credits %d, top_up_credits %d; want 70.00 and the top-up's 20.00", credits, topUpCredits)
	}
}

// DailyTotalsMigrationBackfills: migration 0004 builds each day's totals
// from the ledger written before it, with the same day boundaries (UTC) on
// both databases.
func DailyTotalsMigrationBackfills(t *testing.T, db *sql.DB, files fs.FS) {
	t.Helper()
	if err := sqlstore.Migrate(ctx(t), db, Before(files, 4)); err != nil {
		t.Fatal(err)
	}
	const day = int64(1_795_132_800_000_000) // 2026-11-20T00:00:00Z in microseconds
	at := func(us int64) string { return strconv.FormatInt(us, 10) }
	for _, q := range []string{
		`INSERT INTO accounts (id, email, currency, balance, last_seq, api_key_hash, created_at, updated_at) VALUES ('acct_1', 'a@example.com', 'usd', 40000000, 4, 'h', 0, 0)`,
		`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_1', 1, 'ent_1', 'credit', 50000000, 50000000, ` + at(day-1) + `)`,
		`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_1', 2, 'ent_2', 'usage', -15000000, 35000000, ` + at(day) + `)`,
		`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_1', 3, 'ent_3', 'top_up', 10000000, 45000000, ` + at(day+5) + `)`,
		`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_1', 4, 'ent_4', 'usage', -5000000, 40000000, ` + at(day+86_399_999_999) + `)`,
	} {
		if _, err := db.ExecContext(ctx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := sqlstore.Migrate(ctx(t), db, Before(files, 5)); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx(t), `SELECT day, usage, credits, top_ups, closing_balance, min_balance FROM daily_totals WHERE account_id = 'acct_1' ORDER BY day`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var d string
		var usage, credits, topUps, closing, low int64
		if err := rows.Scan(&d, &usage, &credits, &topUps, &closing, &low); err != nil {
			t.Fatal(err)
		}
		got = append(got, d+" "+at(usage)+" "+at(credits)+" "+at(topUps)+" "+at(closing)+" "+at(low))
	}
	want := []string{
		"2026-11-19 0 50000000 0 50000000 50000000",
		"2026-11-20 20000000 10000000 1 40000000 35000000",
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("after 0004 the daily totals are %q; want %q", got, want)
	}
}

// ConcurrentOpen: replicas that start together on one new database all
// open it, and every migration is applied exactly once. open opens the
// database as `topup serve` does (migrating it); files is its full
// migration list. A migration run twice fails (its CREATE TABLE finds the
// table), and schema_migrations would hold a version twice or not at all.
func ConcurrentOpen(t *testing.T, n int, open func() (*sqlstore.DB, error), files fs.FS) {
	t.Helper()
	stores := make([]*sqlstore.DB, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = open()
		})
	}
	close(start)
	wg.Wait()
	for i, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
		if errs[i] != nil {
			t.Errorf("replica %d of %d starting at once: %v", i+1, n, errs[i])
		}
	}
	if t.Failed() {
		return
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]bool{}
	for _, name := range names {
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", name, err)
		}
		want[v] = true
	}
	rows, err := stores[0].DB().QueryContext(ctx(t), `SELECT version, COUNT(*) FROM schema_migrations GROUP BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int64]bool{}
	for rows.Next() {
		var v, count int64
		if err := rows.Scan(&v, &count); err != nil {
			t.Fatal(err)
		}
		if count != 1 || !want[v] {
			t.Errorf("schema_migrations holds version %d %d times; want once, and only the embedded versions", v, count)
		}
		got[v] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("schema_migrations holds %d versions, want the %d embedded", len(got), len(want))
	}
}
