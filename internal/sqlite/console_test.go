package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strconv"
	"testing"
	"testing/fstest"

	"github.com/topup/topup/internal/sqlstore"
)

// TestConsoleMigrationBackfillsTopUpCredits: migration 0006 fills the new
// daily_totals.top_up_credits from the ledger written before it, so the
// console's preview can leave real top-ups out of a month it replays.
func TestConsoleMigrationBackfillsTopUpCredits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), "x.db"), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := fstest.MapFS{}
	all := Migrations()
	names, _ := fs.Glob(all, "*.sql")
	for _, n := range names {
		if n < "0006" {
			b, _ := fs.ReadFile(all, n)
			before[n] = &fstest.MapFile{Data: b}
		}
	}
	if err := sqlstore.Migrate(ctx, db, before); err != nil {
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
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := sqlstore.Migrate(ctx, db, all); err != nil {
		t.Fatal(err)
	}
	var credits, topUpCredits int64
	if err := db.QueryRowContext(ctx, `SELECT credits, top_up_credits FROM daily_totals WHERE account_id = 'acct_1' AND day = '2026-11-20'`).Scan(&credits, &topUpCredits); err != nil {
		t.Fatal(err)
	}
	if credits != 70_000_000 || topUpCredits != 20_000_000 {
		t.Errorf("after 0006: credits %d, top_up_credits %d; want 70.00 and the top-up's 20.00", credits, topUpCredits)
	}
}
