// Package sqlite opens Topup's embedded default database: one file, pure Go
// (modernc.org/sqlite), WAL, synchronous=FULL so that an acknowledged write
// survives a crash, one writer connection and a pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

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

// Dialect is SQLite's: no row locks (the one writer connection serializes
// writers). Bulk statements use "?" placeholders: SQLite treats "$N" as a
// name and looks it up in a list, in its parser and in the driver's binding,
// so a statement's cost grew with the square of its parameters.
var Dialect = sqlstore.Dialect{
	Name:      "sqlite",
	RowLock:   "",
	MaxParams: 32766,
	OneWriter: true,
	// The changes made through the one writer connection.
	WriteMark: `SELECT CAST(total_changes() AS TEXT)`,
	PruneUsageKeys: `DELETE FROM idempotency WHERE (scope, key) IN (
SELECT scope, key FROM idempotency WHERE ` + sqlstore.UsageScopes + ` AND created_at < $1 ORDER BY created_at LIMIT $2)`,
	RetryReason: func(err error) string {
		var se *sqlite.Error
		if errors.As(err, &se) {
			switch se.Code() & 0xff {
			case sqlite3.SQLITE_BUSY:
				return "busy"
			case sqlite3.SQLITE_LOCKED:
				return "locked"
			}
		}
		return ""
	},
}

func dsn(path string, write bool) string {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)",
		// Statement journals and cache spills stay in memory: a group commit of
		// thousands of rows otherwise writes temporary files.
		"temp_store(MEMORY)", "cache_size(-65536)"} {
		q.Add("_pragma", p)
	}
	if write {
		q.Set("_txlock", "immediate")
		// The checkpointer's connection checkpoints; the writer only when
		// the WAL passes the backstop (checkpoint.go).
		q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walBackstop)+")")
	}
	// The path is a URI path: escape what would end it early.
	path = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path, applies the
// migrations and returns its stores.
func Open(ctx context.Context, path string, c clock.Clock, g *ids.Generator) (*sqlstore.DB, error) {
	path = strings.TrimPrefix(path, "sqlite:")
	write, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := sqlstore.Migrate(ctx, write, Migrations()); err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		write.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	b, err := newBulk(ctx, write)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("prepare sqlite statements: %w", err)
	}
	cp, err := startCheckpointer(path)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	db := sqlstore.New(write, read, Dialect, b, c, g)
	db.OnClose(cp.Close)
	return db, nil
}
