package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/topup/topup/internal/storetest"
)

// TestBulkPlansSearch shows that no statement of the debit path scans a
// table: each finds its rows through an index, so that its cost does not
// grow with the ledger. The idempotency lookup is a join driven by the
// keys: SQLite 3.40 plans a row value IN a VALUES list as a scan of the
// whole table (the driver's 3.54 does not, but the join leaves nothing to
// the planner's version); so is the lookup of usage keys in their entries,
// through the partial index entries_usage_key.
func TestBulkPlansSearch(t *testing.T) {
	c := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "topup.db")
	s, err := Open(t.Context(), path, c, storetest.NewIDs(c))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := newBulk(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	// A scan of the rows a statement brings (its VALUES list) is fine; a
	// scan of a table is not.
	allowed := regexp.MustCompile(`^(SCAN v|SCAN CONSTANT ROW|SCAN \d+ CONSTANT ROWS|SCAN \d+-ROW VALUES CLAUSE)$`)
	for name, v := range map[string]*values{"lock": &b.lock, "idempotency": &b.idem, "usage keys": &b.usageKeys, "budgets": &b.budgets, "entries": &b.entries,
		"records": &b.records, "balances": &b.balances, "daily": &b.daily, "new grants": &b.newGrants,
		"grant updates": &b.grantUpdates, "grant remaining": &b.grantRemaining} {
		for _, n := range []int{1, 4} {
			plan := explain(t, db, v.text(n), n*v.cols+v.lead)
			for _, step := range plan {
				if strings.HasPrefix(step, "SCAN ") && !allowed.MatchString(step) {
					t.Errorf("%s (%d rows) scans: %q\n%s\nplan: %v", name, n, step, v.text(n), plan)
				}
			}
			if name == "idempotency" && !strings.Contains(strings.Join(plan, "\n"), "SEARCH i USING PRIMARY KEY (scope=? AND key=?)") {
				t.Errorf("the idempotency lookup does not search the primary key: %v", plan)
			}
			if name == "usage keys" && !strings.Contains(strings.Join(plan, "\n"), "SEARCH e USING INDEX entries_usage_key (account_id=? AND idempotency_key=?)") {
				t.Errorf("the usage keys' lookup does not search entries_usage_key: %v", plan)
			}
		}
	}
}

// explain returns the steps of q's query plan, with args NULL.
func explain(t *testing.T, db *sql.DB, q string, args int) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, make([]any, args)...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(fmt.Errorf("explain %s: %w", q, err))
	}
	return steps
}
