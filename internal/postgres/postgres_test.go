package postgres_test

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

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/storetest"
)

// defaultAdminURL is the local PostgreSQL the tests expect; set
// TOPUP_TEST_POSTGRES to use another server (a URL whose user may create
// databases).
const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	// adminURL and dbName say where the database made for this run is; each
	// test gets its own schema in it.
	adminURL, dbName string
	// testDB is an admin connection to that database.
	testDB *sql.DB
	// skipReason is set when PostgreSQL could not be reached outside CI.
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

// run makes a database of its own for this run, so that runs never share
// state, and drops it afterwards.
func run(m *testing.M) int {
	admin := os.Getenv("TOPUP_TEST_POSTGRES")
	if admin == "" {
		admin = defaultAdminURL
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
		skipReason = msg
		return m.Run()
	}
	defer adminDB.Close()

	adminURL = admin
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
	dbName = name
	testURL, err := withParams(admin, name, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testDB, err = sql.Open("pgx", testURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	testDB.Close() // before the drop, which would otherwise end it
	return code
}

func randomName() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withParams returns admin pointed at database name and, when schema is
// set, with search_path=schema, which pgx sends as a run-time parameter so
// that every connection of the pool starts in that schema. It accepts URLs
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

// open returns a store in a schema of its own, so tests in parallel each
// see an empty database and run the migrations themselves.
func open(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	if skipReason != "" {
		tb.Skip(skipReason)
	}
	ctx := tb.Context()
	schema := "s_" + randomName()
	if _, err := testDB.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	u, err := withParams(adminURL, dbName, schema)
	if err != nil {
		tb.Fatal(err)
	}
	c := storetest.NewClock()
	s, err := postgres.Open(ctx, u, c, storetest.NewIDs(c))
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close postgres: %v", err)
		}
		if _, err := testDB.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema: %v", err)
		}
	})
	// The suite's isolation rests on search_path reaching the server.
	var current string
	if err := s.DB().QueryRowContext(ctx, `SELECT current_schema()`).Scan(&current); err != nil || current != schema {
		tb.Fatalf("store works in schema %q (%v), want %q", current, err, schema)
	}
	return s
}

func TestStore(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	t.Parallel()
	storetest.Run(t, func(t *testing.T) *sqlstore.Store { return open(t) })
}

func BenchmarkPost(b *testing.B) {
	storetest.BenchPost(b, open)
}
