// Package postgres opens Topup's production database through pgx. Several
// `topup serve` replicas may share one PostgreSQL database: writers lock the
// account rows they change, in id order.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the numbered migrations (the shared ones and this
// database's own), for tests and tools.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sqlstore.WithShared(sub)
}

// Dialect is PostgreSQL's: row locks with FOR NO KEY UPDATE (which
// foreign-key checks do not wait for), and a retry on serialization
// failures and deadlocks.
var Dialect = sqlstore.Dialect{
	Name:       "postgres",
	RowLock:    " FOR NO KEY UPDATE",
	SkipLocked: " FOR NO KEY UPDATE SKIP LOCKED",
	MaxParams:  65535,
	// The position of the write-ahead log: any writer of the cluster moves
	// it, which costs a checker only a needless Verify.
	WriteMark: `SELECT CAST(pg_current_wal_insert_lsn() AS TEXT)`,
	PruneUsageKeys: `DELETE FROM idempotency WHERE ctid = ANY(ARRAY(
SELECT ctid FROM idempotency WHERE ` + sqlstore.UsageScopes + ` AND created_at < $1 ORDER BY created_at LIMIT $2))`,
	RetryReason: func(err error) string {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			switch pe.Code {
			case "40001":
				return "serialization_failure"
			case "40P01":
				return "deadlock"
			}
		}
		return ""
	},
}

// Open connects to the PostgreSQL database at url, applies the migrations
// (under an advisory lock, so replicas starting together take turns) and
// returns its stores.
func Open(ctx context.Context, url string, c clock.Clock, g *ids.Generator) (*sqlstore.DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return sqlstore.New(db, db, Dialect, bulk{}, c, g), nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close()
	const lockID = 0x746f707570 // "topup"
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID)
	if err := sqlstore.Migrate(ctx, db, Migrations()); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	return nil
}
