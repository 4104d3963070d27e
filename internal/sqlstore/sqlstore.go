// Package sqlstore is the storage code that SQLite and PostgreSQL share:
// the SQL both databases understand, on database/sql. The sqlite and
// postgres packages open their database, run their own migrations and hand
// a Dialect for the few places where the two differ.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
)

// Dialect is what differs between the databases.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// ForUpdate locks selected rows ("FOR UPDATE") where the database has row
	// locks; SQLite's single writer needs none.
	ForUpdate string
	// SkipLocked lets replicas claim different rows (" FOR UPDATE SKIP
	// LOCKED"); empty on SQLite.
	SkipLocked string
	// MaxParams is the most bind parameters one statement may carry.
	MaxParams int
	// WriteMark is a query answering a value that changes whenever the
	// database is written (Store.WriteMark); empty when it has none.
	WriteMark string
	// Retryable reports errors after which a transaction may simply be run
	// again: busy, serialization failure, deadlock.
	Retryable func(error) bool
}

// Store implements the storage interfaces on one database.
type Store struct {
	write    *sql.DB
	read     *sql.DB
	dialect  Dialect
	clock    clock.Clock
	ids      *ids.Generator
	cache    stmtCache
	lockBulk bulk
}

// New returns a store that writes through write and reads through read
// (the same pool on PostgreSQL; on SQLite, one writer connection and a pool
// of readers).
func New(write, read *sql.DB, d Dialect, c clock.Clock, g *ids.Generator) *Store {
	return &Store{write: write, read: read, dialect: d, clock: c, ids: g, lockBulk: lockBulkFor(d)}
}

// Prepare readies the debit path's statements; the database packages call
// it after migrating.
func (s *Store) Prepare(ctx context.Context) error {
	return s.prepareBulk(ctx, &entriesBulk, &recordsBulk, &balancesBulk, &idemLookup, &s.lockBulk, &dailyBulk,
		&budgetsSpend)
}

// Dialect returns the store's dialect name.
func (s *Store) DialectName() string { return s.dialect.Name }

// DB returns the pool that writes. It is for tests only, that must reach
// past the store, such as the conformance suite proving that the database
// itself refuses to change a ledger entry; production code, the simulator
// included, goes through the store's methods.
func (s *Store) DB() *sql.DB { return s.write }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.read.PingContext(ctx) }

// Close closes both pools.
func (s *Store) Close() error {
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// inTx runs fn in a write transaction, retrying it when the database says
// the conflict was transient.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.tryTx(ctx, fn)
		if err == nil || attempt >= 4 || s.dialect.Retryable == nil || !s.dialect.Retryable(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
}

func (s *Store) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Migrate applies the numbered migrations in files (NNNN_name.sql) that db
// has not seen yet, each in its own transaction, recording them in
// schema_migrations.
func Migrate(ctx context.Context, db *sql.DB, files fs.FS) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must start with a number and _", name)
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		if err := migrateOne(ctx, db, version, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func migrateOne(ctx context.Context, db *sql.DB, version int64, body string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}

// micros and fromMicros convert times to the BIGINT microseconds both
// databases store.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func notFound(what, id string) error {
	return apperr.NotFoundf("no %s %s", what, id)
}
