package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/soak"
)

// asTopup, set in a child's environment, makes this test binary run as the
// topup command itself: the soak starts its replicas from it, with no
// separate build.
const asTopup = "TOPUP_TEST_RUN_AS_TOPUP"

// TestMain gives the package's PostgreSQL tests a database of their own
// (with CI=true, an unreachable PostgreSQL fails the package), and runs
// the binary as `topup` when the soak starts it as a replica.
func TestMain(m *testing.M) {
	if os.Getenv(asTopup) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(pgtest.Main(m))
}

// TestSoak is `topup soak` in short: 3 replicas of this binary as `topup
// serve` on one PostgreSQL, 1,000 accounts with Automatic Top-Up, a
// mixed load for 75 s with a replica SIGKILLed every ~15 s and
// restarted. Every check of the soak must hold: each acknowledged debit in
// the ledger once, each succeeded charge credited once and nothing else,
// never two open automatic top-ups, verify clean, no deadlock.
//
// TOPUP_SOAK=1 runs the full soak instead (10,000 accounts, 3 minutes, a
// kill every ~20 s; TOPUP_SOAK_ACCOUNTS and TOPUP_SOAK_DURATION change
// those two).
func TestSoak(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := soak.Config{Replicas: 3, Accounts: 1000, Duration: 75 * time.Second, Clients: 16, KillEvery: 15 * time.Second,
		Latency: 100 * time.Millisecond, Lease: 5 * time.Second, Quiet: 2 * time.Minute}
	if os.Getenv("TOPUP_SOAK") == "1" {
		cfg = fullSoak(t)
	}
	cfg.DB = pgtest.URL(t)
	cfg.Command = []string{exe, "serve"}
	cfg.Env = []string{asTopup + "=1"}
	var out bytes.Buffer
	sum, err := soak.Run(t.Context(), cfg, &out, &out)
	t.Logf("topup soak:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	// A soak that never killed, debited or charged proved nothing.
	if min := int(cfg.Duration/cfg.KillEvery) - 2; sum.Kills < min {
		t.Errorf("%d kills in %s; want at least %d (one every ~%s)", sum.Kills, cfg.Duration, min, cfg.KillEvery)
	}
	if sum.AckedDebits == 0 || sum.Charges == 0 || sum.ManualTopUps == 0 {
		t.Errorf("the soak acknowledged %d debits, %d charges and %d manual top-ups; want some of each", sum.AckedDebits, sum.Charges, sum.ManualTopUps)
	}
	for _, line := range []string{"ok   every acknowledged debit", "ok   every succeeded sandbox charge", "ok   never two open", "ok   verify: clean", "ok   deadlocks: 0"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("the report lacks %q", line)
		}
	}
}

// TestSoakFlags: a command line that makes no soak is a usage error,
// before anything starts.
func TestSoakFlags(t *testing.T) {
	t.Parallel()
	const db = "postgres://postgres@127.0.0.1:5432/soak"
	for _, args := range [][]string{
		{},
		{"--db", "sqlite:soak.db"},
		{"--db", db, "--replicas", "0"},
		{"--db", db, "--accounts", "0"},
		{"--db", db, "--duration", "0s"},
		{"--db", db, "--kill-every", "-1s"},
		{"--db", db, "--latency", "2s", "--lease", "1s"},
		{"--db", db, "extra"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"soak"}, args...), func(string) string { return "" }, &stdout, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("soak %v: got %v, want a usage error", args, err)
		}
	}
}

// fullSoak is the soak, with TOPUP_SOAK_ACCOUNTS and
// TOPUP_SOAK_DURATION when set.
func fullSoak(t *testing.T) soak.Config {
	cfg := soak.DefaultConfig()
	if v := os.Getenv("TOPUP_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("TOPUP_SOAK_DURATION: %v", err)
		}
		cfg.Duration = d
	}
	if v := os.Getenv("TOPUP_SOAK_ACCOUNTS"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil {
			t.Fatalf("TOPUP_SOAK_ACCOUNTS: %v", err)
		}
		cfg.Accounts = n
	}
	return cfg
}
