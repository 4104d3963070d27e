package main

import (
	"context"
	"fmt"
	"io"

	"github.com/topup/topup/internal/soak"
)

// cmdSoak reads `topup soak`'s flags and runs internal/soak: replicas of
// this program on one PostgreSQL, a mixed load, kills, and the proof that
// nothing acknowledged was lost or doubled.
func cmdSoak(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseSoakFlags(args, stderr)
	if err != nil {
		return err
	}
	_, err = soak.Run(ctx, cfg, stdout, stderr)
	return err
}

// parseSoakFlags reads the command line; one that makes no soak is a
// usage error, before anything starts.
func parseSoakFlags(args []string, stderr io.Writer) (soak.Config, error) {
	fs := newFlags("soak", stderr)
	cfg := soak.DefaultConfig()
	fs.StringVar(&cfg.DB, "db", "", "PostgreSQL URL (postgres://…); the soak works in a schema of its own there, dropped at the end")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "how many `topup serve` processes run at once")
	fs.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "accounts, each with a card, an opening credit of 10.00 and Automatic Top-Up (threshold 5.00, target 10.00)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the load and the kills run")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients of the mixed load")
	fs.DurationVar(&cfg.KillEvery, "kill-every", cfg.KillEvery, "mean time between two SIGKILLs of a random replica, ±25% (0: no kills)")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "each sandbox charge's latency (TOPUP_SANDBOX_LATENCY)")
	fs.DurationVar(&cfg.Lease, "lease", cfg.Lease, "TOPUP_WORKER_LEASE of the replicas")
	fs.DurationVar(&cfg.Quiet, "quiet", cfg.Quiet, "the longest wait, after the load, for every open top-up to settle")
	fs.StringVar(&cfg.PGLog, "pg-log", "", "PostgreSQL's log file, read for `deadlock detected` (default: the newest readable /var/log/postgresql/*.log)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the soak's schema and the replicas' logs")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: soak takes no arguments, got %q", errUsage, fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, nil
}
