// Package soak is `topup soak`: several `topup serve` replicas on one
// PostgreSQL, a mixed load across them through the Go client, a replica
// SIGKILLed and restarted every so often, and at the end the proof that
// nothing acknowledged was lost or doubled: every acknowledged debit is in
// the ledger once, every succeeded sandbox charge is credited once and
// nothing else is, no account ever had two open automatic top-ups, verify
// is clean and PostgreSQL saw no deadlock.
//
// The replicas are real child processes (Config.Command), so that a kill is
// a kill: nothing in the soak's own process survives it.
package soak

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/ledger"
)

// Config is a `topup soak` command line.
type Config struct {
	// DB is a PostgreSQL URL. The soak works in a schema of its own made
	// there (soak_<run>), dropped at the end unless Keep is set or a check
	// failed.
	DB string
	// Replicas is how many `topup serve` processes run at once.
	Replicas int
	// Accounts is how many accounts the soak creates, each with a card,
	// an opening credit and Automatic Top-Up on.
	Accounts int
	// Duration is how long the load (and the kills) run.
	Duration time.Duration
	// Clients is how many concurrent clients send the load.
	Clients int
	// KillEvery is the mean time between two SIGKILLs (±25%); zero kills
	// nothing.
	KillEvery time.Duration
	// Latency is each sandbox charge's latency (TOPUP_SANDBOX_LATENCY).
	Latency time.Duration
	// Lease is TOPUP_WORKER_LEASE: how long a killed replica's claim on a
	// top-up keeps the others away.
	Lease time.Duration
	// Quiet bounds the wait, after the load, for every open top-up to
	// settle.
	Quiet time.Duration
	// Command starts one replica: the program and its first arguments
	// (`topup serve`); the soak adds --addr and --db. Empty: this
	// program's own executable with "serve".
	Command []string
	// Env is added to each replica's environment (after os.Environ()).
	Env []string
	// PGLog is PostgreSQL's log file, read for `deadlock detected` lines
	// written during the run; empty: the first readable
	// /var/log/postgresql/*.log, if any.
	PGLog string
	// Keep keeps the soak's schema and the replicas' logs.
	Keep bool
}

// DefaultConfig is the soak: 3 replicas, 10,000 accounts with
// Automatic Top-Up, sandbox latency 100 ms, a kill every ~20 s.
func DefaultConfig() Config {
	return Config{Replicas: 3, Accounts: 10_000, Duration: 3 * time.Minute, Clients: 32, KillEvery: 20 * time.Second,
		Latency: 100 * time.Millisecond, Lease: 5 * time.Second, Quiet: 2 * time.Minute}
}

// Validate refuses a Config that makes no soak, naming the flag.
func (c Config) Validate() error {
	switch {
	case !app.IsPostgres(c.DB):
		return errors.New("--db must be a postgres:// URL (the soak runs replicas on one PostgreSQL)")
	case c.Replicas < 1 || c.Replicas > 16:
		return errors.New("--replicas must be from 1 to 16")
	case c.Accounts < 1:
		return errors.New("--accounts must be at least 1")
	case c.Clients < 1:
		return errors.New("--clients must be at least 1")
	case c.Duration <= 0:
		return errors.New("--duration must be above zero")
	case c.KillEvery < 0:
		return errors.New("--kill-every must not be negative (0: no kills)")
	case c.Latency < 0:
		return errors.New("--latency must not be negative")
	case c.Lease <= c.Latency:
		return errors.New("--lease must be longer than --latency")
	case c.Quiet <= 0:
		return errors.New("--quiet must be above zero")
	}
	if _, err := url.Parse(c.DB); err != nil {
		return fmt.Errorf("--db: %w", err)
	}
	return nil
}

// soak is one run.
type soak struct {
	cfg      Config
	out      io.Writer
	stderr   io.Writer
	runID    string
	adminKey string
	schema   string
	dbURL    string  // the soak's schema on cfg.DB
	db       *sql.DB // the soak's own connection: monitor and checks
	logDir   string
	fleet    *fleet
	rec      *record
	accounts []*account
	kills    []kill       // written by the kill loop alone
	killed   atomic.Int64 // len(kills), for the progress bar
	polls    pollStats
	report   report
}

// Summary is what a run did, for a test to hold it to more than its
// checks: that it killed, debited and charged at all.
type Summary struct {
	Kills        int
	AckedDebits  int
	Charges      int
	ManualTopUps int
}

// Run runs the soak, prints its report on stdout (a progress bar on stderr
// when it is a terminal) and returns an error when a check failed or the
// soak could not run.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	if len(cfg.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return Summary{}, fmt.Errorf("soak: find this program to start replicas: %w", err)
		}
		cfg.Command = []string{exe, "serve"}
	}
	s := &soak{cfg: cfg, out: stdout, stderr: stderr, runID: newRunID(), adminKey: ledger.NewKey(ledger.AdminKeyPrefix), rec: newRecord()}
	s.schema = "soak_" + s.runID
	if err := s.open(ctx); err != nil {
		return Summary{}, err
	}
	failed, err := s.run(ctx)
	s.close(failed || err != nil)
	return Summary{Kills: len(s.kills), AckedDebits: s.report.ackedDebits, Charges: s.report.charges, ManualTopUps: len(s.rec.manual)}, err
}

func newRunID() string {
	var b [5]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// open makes the soak's schema and its log directory.
func (s *soak) open(ctx context.Context) error {
	admin, err := sql.Open("pgx", s.cfg.DB)
	if err != nil {
		return fmt.Errorf("soak: open %s: %w", app.RedactDB(s.cfg.DB), err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+s.schema); err != nil {
		return fmt.Errorf("soak: create schema %s: %w", s.schema, err)
	}
	u, _ := url.Parse(s.cfg.DB)
	q := u.Query()
	q.Set("search_path", s.schema)
	u.RawQuery = q.Encode()
	s.dbURL = u.String()
	if s.db, err = sql.Open("pgx", s.dbURL); err != nil {
		return fmt.Errorf("soak: open schema %s: %w", s.schema, err)
	}
	s.db.SetMaxOpenConns(4)
	if s.logDir, err = os.MkdirTemp("", "topup-soak-"+s.runID+"-"); err != nil {
		return fmt.Errorf("soak: log directory: %w", err)
	}
	return nil
}

// close stops what still runs and, unless the soak failed or Keep is set,
// drops the schema and removes the replicas' logs.
func (s *soak) close(failed bool) {
	if s.fleet != nil {
		s.fleet.stopAll()
	}
	if s.db != nil {
		s.db.Close()
	}
	if failed || s.cfg.Keep {
		fmt.Fprintf(s.out, "kept: schema %s in %s; replica logs in %s\n", s.schema, app.RedactDB(s.cfg.DB), s.logDir)
		return
	}
	os.RemoveAll(s.logDir)
	admin, err := sql.Open("pgx", s.cfg.DB)
	if err != nil {
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+s.schema+` CASCADE`); err != nil {
		fmt.Fprintf(s.stderr, "soak: drop schema %s: %v\n", s.schema, err)
	}
}

// run starts the replicas, sets the accounts up, runs the load with the
// kills, waits for the top-ups to settle, stops the replicas and checks
// what they left. failed reports a broken check (the error then says
// which).
func (s *soak) run(ctx context.Context) (failed bool, err error) {
	s.report.started = time.Now()
	before, err := s.deadlocks(ctx)
	if err != nil {
		return false, err
	}
	logAt := s.pgLogOffset()
	s.fleet = newFleet(s.cfg, s.adminKey, s.dbURL, s.logDir)
	t0 := time.Now()
	if err := s.fleet.startAll(ctx); err != nil {
		return false, err
	}
	s.report.startTook = time.Since(t0)
	t0 = time.Now()
	if err := s.setup(ctx); err != nil {
		return false, err
	}
	s.report.setupTook = time.Since(t0)
	if err := s.load(ctx); err != nil {
		return false, err
	}
	t0 = time.Now()
	s.report.openAfterQuiet, err = s.awaitQuiet(ctx)
	s.report.quietTook = time.Since(t0)
	if err != nil {
		return false, err
	}
	if err := s.fleet.terminateAll(); err != nil {
		return false, err
	}
	s.report.retries = s.fleet.countInLogs("transaction retried")
	// A backend counts its deadlocks in pg_stat_database when it flushes its
	// statistics, at the latest when it exits: the replicas' backends are
	// given a moment to.
	time.Sleep(time.Second)
	after, err := s.deadlocks(ctx)
	if err != nil {
		return false, err
	}
	s.report.deadlocks = after - before
	s.report.logDeadlocks, s.report.logNote = s.pgLogDeadlocks(logAt)
	problems, err := s.check(ctx)
	if err != nil {
		return false, err
	}
	s.printReport(problems)
	if len(problems) > 0 {
		return true, fmt.Errorf("soak: %d checks failed: %s", len(problems), strings.Join(problems, "; "))
	}
	return false, nil
}
