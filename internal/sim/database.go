package sim

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver, for the schema of each run

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
)

// database is one run's fresh database: a SQLite file in a directory of
// its own, or a schema of its own in a PostgreSQL database. Each (re)start
// of the simulated process opens a new store on it.
type database struct {
	kind   string // "sqlite" or "postgres"
	path   string // the SQLite file
	dir    string
	url    string // PostgreSQL, with search_path set to the run's schema
	admin  *sql.DB
	schema string
}

// IsPostgres reports whether db names a PostgreSQL database.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

func openDatabase(ctx context.Context, cfg Config) (*database, error) {
	if IsPostgres(cfg.DB) || strings.Contains(cfg.DB, "=") {
		// A URL, or a keyword/value connection string (host=… dbname=…).
		return openSchema(ctx, cfg.DB)
	}
	if cfg.DB != "" && cfg.DB != "sqlite" {
		return nil, fmt.Errorf("sim: --db must be empty, sqlite or postgres://…, not %q", cfg.DB)
	}
	parent := cfg.Dir
	if parent == "" {
		parent = defaultDir()
	}
	dir, err := os.MkdirTemp(parent, "topup-sim-")
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return &database{kind: "sqlite", dir: dir, path: filepath.Join(dir, "sim.db")}, nil
}

// defaultDir is /dev/shm when it can be written, else the temporary
// directory.
func defaultDir() string {
	if f, err := os.CreateTemp("/dev/shm", "topup-sim-probe-"); err == nil {
		name := f.Name()
		f.Close()
		os.Remove(name)
		return "/dev/shm"
	}
	return os.TempDir()
}

// openSchema makes a fresh schema in the database at admin. The run's
// connections put it first on their search_path and commit without waiting
// for the disk (synchronous_commit=off): a simulated crash is a process's,
// not the machine's, and PostgreSQL keeps what a dead client committed.
func openSchema(ctx context.Context, admin string) (*database, error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return nil, fmt.Errorf("sim: open postgres: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sim: postgres: %w", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "sim_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sim: create schema: %w", err)
	}
	d := &database{kind: "postgres", admin: db, schema: schema}
	if !strings.Contains(admin, "://") {
		d.url = admin + " search_path=" + schema + " synchronous_commit=off"
		return d, nil
	}
	u, err := url.Parse(admin)
	if err != nil {
		d.drop()
		return nil, fmt.Errorf("sim: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	d.url = u.String()
	return d, nil
}

// open opens a store on the database (migrating it the first time), as a
// starting process does.
func (d *database) open(ctx context.Context, c clock.Clock, g *ids.Generator) (*sqlstore.DB, error) {
	if d.kind == "postgres" {
		return postgres.Open(ctx, d.url, c, g)
	}
	return sqlite.Open(ctx, d.path, c, g)
}

// drop removes the database.
func (d *database) drop() {
	if d.kind == "postgres" {
		d.admin.ExecContext(context.Background(), `DROP SCHEMA `+d.schema+` CASCADE`)
		d.admin.Close()
		return
	}
	os.RemoveAll(d.dir)
}

// writeMark is a value that changes whenever the database is written: on
// SQLite, the changes made by the store's one writer connection; on
// PostgreSQL, the position of the write-ahead log (any writer of the
// cluster moves it, which costs only a needless Verify). "" when unknown.
func (d *database) writeMark(ctx context.Context, store *sqlstore.DB) string {
	return store.WriteMark(ctx)
}
