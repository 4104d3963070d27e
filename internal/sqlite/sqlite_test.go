package sqlite_test

import (
	"database/sql"
	"flag"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/storetest"
)

// open returns a store on a new database file in the test's own temporary
// directory, closed when the test ends.
func open(tb testing.TB) *sqlstore.DB {
	tb.Helper()
	c := storetest.NewClock()
	s, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "topup.db"), c, storetest.NewIDs(c))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close sqlite: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
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
	path := filepath.Join(t.TempDir(), "topup.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.UpgradeKeepsAccountKeys(t, old, sqlite.Migrations(), func() *sqlstore.DB {
		c := storetest.NewClock()
		s, err := sqlite.Open(t.Context(), path, c, storetest.NewIDs(c))
		if err != nil {
			t.Fatalf("open the old database: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

var update = flag.Bool("update", false, "rewrite testdata/schema.golden")

// TestFreshSchema: a new database migrates to exactly the schema in
// testdata/schema.golden (tables, columns, indexes, triggers, versions).
func TestFreshSchema(t *testing.T) {
	t.Parallel()
	s := open(t)
	storetest.CheckSchema(t, s.DB(), "sqlite", "testdata/schema.golden", *update)
}

// oldDB returns a connection to a new, empty database file, for the
// upgrade tests to build as an older version did.
func oldDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConsoleMigrationBackfillsTopUpCredits(t *testing.T) {
	t.Parallel()
	storetest.ConsoleMigrationBackfillsTopUpCredits(t, oldDB(t), sqlite.Migrations())
}

func TestDailyTotalsMigrationBackfills(t *testing.T) {
	t.Parallel()
	storetest.DailyTotalsMigrationBackfills(t, oldDB(t), sqlite.Migrations())
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

// TestProcessesStartTogether: eight processes opening one new database
// file at once all open it, each migration applied once: the migrations'
// transactions begin IMMEDIATE (the write lock first, then the check of
// schema_migrations), and busy_timeout makes the others wait their turn.
func TestProcessesStartTogether(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "topup.db")
	storetest.ConcurrentOpen(t, 8, func() (*sqlstore.DB, error) {
		c := storetest.NewClock()
		return sqlite.Open(t.Context(), path, c, storetest.NewIDs(c))
	}, sqlite.Migrations())
}

// upgrade tells one of storetest's upgrade stories on a new database: the
// old schema written through old, then the store opened on it by reopen,
// which migrates it.
func upgrade(t *testing.T, story func(*testing.T, *sql.DB, fs.FS, func() *sqlstore.DB)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "topup.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	story(t, old, sqlite.Migrations(), func() *sqlstore.DB {
		c := storetest.NewClock()
		s, err := sqlite.Open(t.Context(), path, c, storetest.NewIDs(c))
		if err != nil {
			t.Fatalf("open the old database: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
