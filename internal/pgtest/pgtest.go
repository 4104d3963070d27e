// Package pgtest gives tests a PostgreSQL of their own: one database per
// test binary run, created by Main and dropped afterwards, and one schema
// per store, so that tests in parallel each see an empty database and run
// the migrations themselves.
//
// The server is TOPUP_TEST_POSTGRES (a URL whose user may create
// databases), or the local one at 127.0.0.1:5432. When it cannot be
// reached, tests fail with CI=true and skip with a message otherwise.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sqlstore"
)

// DefaultAdminURL is the local PostgreSQL the tests expect.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var run struct {
	adminURL, dbName string
	db               *sql.DB // an admin connection to the run's database
	skip             string  // why PostgreSQL tests skip, outside CI
}

// Main runs a package's tests with a database made for this run. Call it
// from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	admin := os.Getenv("TOPUP_TEST_POSTGRES")
	if admin == "" {
		admin = DefaultAdminURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adminDB, err := sql.Open("pgx", admin)
	if err == nil {
		err = adminDB.PingContext(ctx)
	}
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL unreachable (%v): start PostgreSQL at 127.0.0.1:5432 or set TOPUP_TEST_POSTGRES to an admin URL", err)
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "FAIL:", msg)
			return 1
		}
		run.skip = msg
		return m.Run()
	}
	defer adminDB.Close()
	name := "topup_test_" + randomName()
	if _, err := adminDB.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		fmt.Fprintf(os.Stderr, "create database %s: %v\n", name, err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adminDB.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			fmt.Fprintf(os.Stderr, "drop database %s: %v\n", name, err)
		}
	}()
	u, err := withParams(admin, name, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if run.db, err = sql.Open("pgx", u); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	run.adminURL, run.dbName = admin, name
	code := m.Run()
	run.db.Close() // before the drop, which would otherwise end it
	return code
}

// SkipReason says why PostgreSQL tests skip; empty when they run.
func SkipReason() string { return run.skip }

// Open returns a migrated store in a fresh schema, closed and dropped when
// the test ends. It skips the test when PostgreSQL is unreachable outside CI.
func Open(t testing.TB, c clock.Clock, g *ids.Generator) *sqlstore.DB {
	t.Helper()
	if run.skip != "" {
		t.Skip(run.skip)
	}
	if run.db == nil {
		t.Fatal("pgtest: PostgreSQL tests need TestMain to call pgtest.Main")
	}
	u := Schema(t)
	s, err := postgres.Open(t.Context(), u, c, g)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close postgres: %v", err)
		}
	})
	return s
}

// URL returns the URL of this run's database, for a test that makes its
// own schemas in it (the soak). It skips the test when PostgreSQL is
// unreachable outside CI.
func URL(t testing.TB) string {
	t.Helper()
	if run.skip != "" {
		t.Skip(run.skip)
	}
	if run.db == nil {
		t.Fatal("pgtest: PostgreSQL tests need TestMain to call pgtest.Main")
	}
	u, err := withParams(run.adminURL, run.dbName, "")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Schema creates an empty schema (dropped when the test ends) and returns
// the URL whose connections all work in it.
func Schema(t testing.TB) string {
	t.Helper()
	if run.skip != "" {
		t.Skip(run.skip)
	}
	schema := "s_" + randomName()
	if _, err := run.db.ExecContext(t.Context(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := run.db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := withParams(run.adminURL, run.dbName, schema)
	if err != nil {
		t.Fatal(err)
	}
	// Isolation rests on search_path reaching the server.
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var current string
	if err := db.QueryRowContext(t.Context(), `SELECT current_schema()`).Scan(&current); err != nil || current != schema {
		t.Fatalf("connections work in schema %q (%v), want %q", current, err, schema)
	}
	return u
}

func randomName() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withParams returns admin pointed at database name and, when schema is
// set, with search_path=schema, which pgx sends as a run-time parameter so
// that every connection of a pool starts in that schema. It accepts URLs
// and keyword/value strings.
func withParams(admin, name, schema string) (string, error) {
	if !strings.Contains(admin, "://") {
		s := admin + " dbname=" + name
		if schema != "" {
			s += " search_path=" + schema
		}
		return s, nil
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("TOPUP_TEST_POSTGRES: %w", err)
	}
	u.Path = "/" + name
	if schema != "" {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}
