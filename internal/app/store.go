package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
)

// OpenStore opens the database named as --db names it (sqlite:PATH or
// postgres://…) and applies its migrations. The store reads c, which the
// demo sets to the moments of its history while it seeds them.
func OpenStore(ctx context.Context, db string, c clock.Clock, g *ids.Generator) (*sqlstore.DB, error) {
	if IsPostgres(db) {
		return postgres.Open(ctx, db, c, g)
	}
	path, ok := strings.CutPrefix(db, "sqlite:")
	if !ok || path == "" {
		return nil, fmt.Errorf("--db must be sqlite:PATH or postgres://…, not %q", db)
	}
	return sqlite.Open(ctx, path, c, g)
}

// IsPostgres tells whether db names a PostgreSQL database rather than a
// SQLite file.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// RedactDB hides a password in a PostgreSQL URL before it is printed.
func RedactDB(db string) string {
	if !IsPostgres(db) {
		return db
	}
	return "postgres://…"
}

// NewLogger returns the process logger: JSON lines on w, so that an
// operator's log shipper reads them as they are.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
