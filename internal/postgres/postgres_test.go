package postgres_test

import (
	"database/sql"
	"flag"
	"io/fs"
	"os"
	"testing"

	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/storetest"
)

// TestMain makes a database of its own for this run, so that runs never
// share state, and drops it afterwards (pgtest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open returns a store in a schema of its own, so tests in parallel each
// see an empty database and run the migrations themselves.
func open(tb testing.TB) *sqlstore.DB {
	tb.Helper()
	c := storetest.NewClock()
	return pgtest.Open(tb, c, storetest.NewIDs(c))
}

func TestStore(t *testing.T) {
	if r := pgtest.SkipReason(); r != "" {
		t.Skip(r)
	}
	t.Parallel()
	storetest.Run(t, func(t *testing.T) *sqlstore.DB { return open(t) })
}

func BenchmarkPost(b *testing.B) {
	storetest.BenchPost(b, open)
}

func BenchmarkPostGrants(b *testing.B) {
	storetest.BenchPostGrants(b, open)
}

// TestUpgradeKeepsAccountKeys: a database made before API keys were listed
// upgrades in place; its accounts' keys keep working and are listed.
func TestUpgradeKeepsAccountKeys(t *testing.T) {
	t.Parallel()
	u := pgtest.Schema(t)
	old, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	storetest.UpgradeKeepsAccountKeys(t, old, postgres.Migrations(), func() *sqlstore.DB {
		c := storetest.NewClock()
		s, err := postgres.Open(t.Context(), u, c, storetest.NewIDs(c))
		if err != nil {
			t.Fatalf("open the old database: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

var update = flag.Bool("update", false, "rewrite testdata/schema.golden")

// TestFreshSchema: a new database migrates to exactly the schema in
// testdata/schema.golden (tables, columns, indexes, triggers, functions,
// versions).
func TestFreshSchema(t *testing.T) {
	t.Parallel()
	s := open(t)
	storetest.CheckSchema(t, s.DB(), "postgres", "testdata/schema.golden", *update)
}

// oldDB returns a connection to a new, empty schema, for the upgrade tests
// to build as an older version did.
func oldDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConsoleMigrationBackfillsTopUpCredits(t *testing.T) {
	t.Parallel()
	storetest.ConsoleMigrationBackfillsTopUpCredits(t, oldDB(t), postgres.Migrations())
}

func TestDailyTotalsMigrationBackfills(t *testing.T) {
	t.Parallel()
	storetest.DailyTotalsMigrationBackfills(t, oldDB(t), postgres.Migrations())
}

// TestGrantsMigrationUpgrades: a database at 0011 upgrades in place, each
// balance becoming a grant or overdraft, verify clean.
func TestGrantsMigrationUpgrades(t *testing.T) {
	t.Parallel()
	upgrade(t, storetest.GrantsMigrationUpgrades)
}

// TestReceiptMigrationNumbers: a database before 0016 upgrades in place,
// its succeeded top-ups numbered in the order they completed.
func TestReceiptMigrationNumbers(t *testing.T) {
	t.Parallel()
	upgrade(t, storetest.ReceiptMigrationNumbers)
}

// TestUsageKeyRetentionUpgrades: a database before 0020 upgrades in place,
// its old usage keys pruned, its other keys kept.
func TestUsageKeyRetentionUpgrades(t *testing.T) {
	t.Parallel()
	upgrade(t, storetest.UsageKeyRetentionUpgrades)
}

// TestReplicasStartTogether: eight replicas starting at once on a new
// database (schema) all open it; the advisory lock makes them take turns,
// so each migration runs once.
func TestReplicasStartTogether(t *testing.T) {
	t.Parallel()
	u := pgtest.Schema(t)
	storetest.ConcurrentOpen(t, 8, func() (*sqlstore.DB, error) {
		c := storetest.NewClock()
		return postgres.Open(t.Context(), u, c, storetest.NewIDs(c))
	}, postgres.Migrations())
}

// upgrade tells one of storetest's upgrade stories on a new database: the
// old schema written through old, then the store opened on it by reopen,
// which migrates it.
func upgrade(t *testing.T, story func(*testing.T, *sql.DB, fs.FS, func() *sqlstore.DB)) {
	t.Helper()
	u := pgtest.Schema(t)
	old, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	story(t, old, postgres.Migrations(), func() *sqlstore.DB {
		c := storetest.NewClock()
		s, err := postgres.Open(t.Context(), u, c, storetest.NewIDs(c))
		if err != nil {
			t.Fatalf("open the old database: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
