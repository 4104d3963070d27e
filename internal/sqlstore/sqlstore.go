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
	"log/slog"
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
	// RowLock locks selected rows for a change where the database has row
	// locks; SQLite's single writer needs none. On PostgreSQL it is FOR NO
	// KEY UPDATE: no code path changes a key column or deletes a row it
	// locked, and this mode does not conflict with the FOR KEY SHARE lock a
	// foreign-key check takes, so inserting a notification, a delivery or a
	// top-up of an account never waits for (or deadlocks with) a writer
	// holding the account.
	RowLock string
	// SkipLocked lets replicas claim different rows (" FOR NO KEY UPDATE
	// SKIP LOCKED"); empty on SQLite.
	SkipLocked string
	// MaxParams is the most bind parameters one statement may carry.
	MaxParams int
	// WriteMark is a query answering a value that changes whenever the
	// database is written (Store.WriteMark); empty when it has none.
	WriteMark string
	// OneWriter is true where the database takes one writer at a time
	// (SQLite): the store then orders its writers (writeGate), so that a
	// short write waits for at most one of the committer's groups.
	OneWriter bool
	// PruneUsageKeys deletes up to $2 usage idempotency rows created
	// before $1, oldest first, through the partial index of UsageScopes.
	// The two differ in how the DELETE finds the rows its subquery picked:
	// PostgreSQL's planner would join them to the table by a scan of the
	// whole table (it did, measured on 200,000 rows), so it takes them by
	// their address (ctid); SQLite looks each up by its primary key.
	PruneUsageKeys string
	// RetryReason names an error after which a transaction may simply be
	// run again ("busy", "serialization_failure", "deadlock"), and is ""
	// for every other error.
	RetryReason func(error) string
}

// core is the handle every store shares: the two pools, the dialect, the
// clock and the id generator, and the prepared debit statements. The
// helpers that run inside a transaction (taking ctx and tx) are its
// methods, so that an operation spanning concerns, such as a debit that
// writes entries, budgets, notifications and a pending top-up, stays one
// transaction in the store that owns it.
type core struct {
	write   *sql.DB
	read    *sql.DB
	dialect Dialect
	clock   clock.Clock
	ids     *ids.Generator
	bulk    Bulk
	// paidCreditExpiry is how long the paid credit of a top-up lasts
	// (TOPUP_PAID_CREDIT_EXPIRY); zero for ever.
	paidCreditExpiry time.Duration
	// usageKeyRetention is how long a usage key is remembered (zero:
	// retention.DefaultRetention).
	usageKeyRetention time.Duration
	// log and onRetry hear of every transaction run again (ObserveRetries).
	log     *slog.Logger
	onRetry func(reason string)
	// gate orders the writers where the database has one (Dialect.OneWriter);
	// nil otherwise.
	gate *writeGate
}

// Ledger stores accounts, API keys, postings and their entries, and the
// installation's meta values: ledger.Store, ledger.KeyStore and
// ledger.Poster.
type Ledger struct{ *core }

// Payments stores top-ups through their life with what they are paid by:
// Automatic Top-Up settings, cards and the provider's customer:
// topup.Store, topup.EventStore, billing.Store and httpapi.Billing. (Not
// "TopUps": that is its method listing an account's top-ups.)
type Payments struct{ *core }

// Outbox stores low balance alerts, budgets, webhook endpoints, the
// notifications they cause and their deliveries: notify.Store,
// billing.Alerts and httpapi.Alerts. Alerts and budgets live here, beside
// the events they send, because every consumer that edits them also edits
// endpoints and reads notifications.
type Outbox struct{ *core }

// Sandbox stores the sandbox provider's charges, cards and setup sessions:
// sandbox.Store.
type Sandbox struct{ *core }

// Console stores the console's sign-in links, sessions and the daily
// totals its chart and preview read.
type Console struct{ *core }

// DB is one database opened once: its stores by concern, sharing one
// handle. Each consumer is given the part it needs; the embedding lets
// tests and tools that inspect everything (the conformance suite, the
// simulator's checker) call any store's method on the whole.
type DB struct {
	*Ledger
	*Payments
	*Outbox
	*Sandbox
	*Console
	*Refunds
	core    *core
	closers []func() error
}

// New returns the stores of one database, writing through write and
// reading through read (the same pool on PostgreSQL; on SQLite, one writer
// connection and a pool of readers), running the debit path's bulk
// statements through b.
func New(write, read *sql.DB, d Dialect, b Bulk, c clock.Clock, g *ids.Generator) *DB {
	h := &core{write: write, read: read, dialect: d, clock: c, ids: g, bulk: b, log: slog.New(slog.DiscardHandler)}
	if d.OneWriter {
		h.gate = &writeGate{}
	}
	return &DB{Ledger: &Ledger{h}, Payments: &Payments{h}, Outbox: &Outbox{h}, Sandbox: &Sandbox{h}, Console: &Console{h}, Refunds: &Refunds{h}, core: h}
}

// SetPaidCreditExpiry sets how long the grant of a succeeded top-up lasts
// (TOPUP_PAID_CREDIT_EXPIRY; zero, the default, for ever). It is set once,
// when the store is wired, before any top-up is settled.
func (d *DB) SetPaidCreditExpiry(after time.Duration) { d.core.paidCreditExpiry = after }

// Clock returns the clock the store reads and stamps its writes with, for
// tests that move a manual one (past a hold's expiry, across a month's end).
func (d *DB) Clock() clock.Clock { return d.core.clock }

// ObserveRetries sets where a transaction run again after a transient
// conflict (a deadlock or serialization failure on PostgreSQL, a busy
// database on SQLite) is logged, with its reason and error, and counted:
// count is called with the reason (Metrics.ObserveRetry). It is set once,
// when the store is wired, before the store is used.
func (d *DB) ObserveRetries(log *slog.Logger, count func(reason string)) {
	d.core.log, d.core.onRetry = log, count
}

// DialectName returns the database's dialect name.
func (d *DB) DialectName() string { return d.core.dialect.Name }

// DB returns the pool that writes. It is for tests only, that must reach
// past the store, such as the conformance suite proving that the database
// itself refuses to change a ledger entry; production code, the simulator
// included, goes through the store's methods.
func (d *DB) DB() *sql.DB { return d.core.write }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.core.read.PingContext(ctx) }

// Ping checks that the database answers, for the health probe that holds
// only the ledger.
func (s *Ledger) Ping(ctx context.Context) error { return s.read.PingContext(ctx) }

// OnClose adds fn to what Close runs before it closes the pools: a
// database's own background work (SQLite's checkpointer) stops there.
func (d *DB) OnClose(fn func() error) { d.closers = append(d.closers, fn) }

// Close stops what OnClose registered and closes both pools.
func (d *DB) Close() error {
	var err error
	for _, fn := range d.closers {
		err = errors.Join(err, fn())
	}
	err = errors.Join(err, d.core.write.Close())
	if d.core.read != d.core.write {
		err = errors.Join(err, d.core.read.Close())
	}
	return err
}

// maxAttempts is how many times inTx runs a transaction that keeps
// meeting transient conflicts.
const maxAttempts = 5

// inTx runs fn in a write transaction, retrying it when the database says
// the conflict was transient; each retry is logged and counted
// (ObserveRetries), so that lock trouble is seen in Topup's own logs and
// metrics, not only in the database's.
func (s *core) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.runTx(ctx, false, fn)
}

// inGroupTx is inTx for the committer's group commits (Ledger.Post) and
// other bulk background work (pruning): where the database has one writer,
// every short write waiting for it goes first (writeGate).
func (s *core) inGroupTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.runTx(ctx, true, fn)
}

func (s *core) runTx(ctx context.Context, group bool, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, group, fn)
		if err == nil || attempt >= maxAttempts || s.dialect.RetryReason == nil {
			return err
		}
		reason := s.dialect.RetryReason(err)
		if reason == "" {
			return err
		}
		s.log.Warn("transaction retried", "reason", reason, "attempt", attempt, "err", err)
		if s.onRetry != nil {
			s.onRetry(reason)
		}
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
	}
}

func (s *core) tryTx(ctx context.Context, group bool, fn func(tx *sql.Tx) error) error {
	release, err := s.writerTurn(ctx, group)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer release()
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

// writerTurn waits for the writer's turn where the database has one writer
// (writeGate); release ends it.
func (s *core) writerTurn(ctx context.Context, group bool) (release func(), err error) {
	if s.gate == nil {
		return func() {}, nil
	}
	if err := s.gate.lock(ctx, group); err != nil {
		return nil, err
	}
	return s.gate.unlock, nil
}

// exec runs one write statement outside a transaction, in its turn.
func (s *core) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release, err := s.writerTurn(ctx, false)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.write.ExecContext(ctx, query, args...)
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
