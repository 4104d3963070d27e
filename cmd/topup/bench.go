package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/topup/topup/internal/bench"
)

// cmdBench reads `topup bench`'s flags and runs internal/bench: a whole
// in-process Topup measured over HTTP beside a trivial handler.
func cmdBench(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	return bench.Run(ctx, cfg, stdout, stderr)
}

// parseBenchFlags reads the command line; one that makes no run is a
// usage error, before anything starts.
func parseBenchFlags(args []string, stderr io.Writer) (bench.Config, error) {
	fs := newFlags("bench", stderr)
	var cfg bench.Config
	fs.StringVar(&cfg.DB, "db", "", "database: sqlite:PATH or postgres://…")
	fs.IntVar(&cfg.Accounts, "accounts", 1000, "accounts to spread usage over (Zipf s=1.1)")
	fs.IntVar(&cfg.Clients, "clients", 64, "concurrent HTTP clients for the trivial and single phases")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long each phase runs")
	fs.IntVar(&cfg.BatchSize, "batch-size", 1000, "events per batch request")
	fs.IntVar(&cfg.BatchClients, "batch-clients", 4, "concurrent HTTP clients for the batch phase")
	phases := fs.String("phases", strings.Join(bench.DefaultPhases, ","), "comma-separated phases to run: trivial, single, batch, read (reads an account, a page of transactions, a deep page and a statement month)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the phases (server and clients) to this file")
	fs.BoolVar(&cfg.AlertsBudgets, "alerts-budgets", false, "give every account five low balance alerts and a monthly account-wide budget (measures their cost on the debit path)")
	fs.StringVar(&cfg.Amount, "amount", bench.DefaultAmount, "the amount every usage event debits (with --auto-top-up, e.g. 0.05 so that hot accounts cross the threshold every ~100 debits)")
	fs.BoolVar(&cfg.AutoTopUp, "auto-top-up", false, "give every account a sandbox card ("+bench.AutoCard+") and Automatic Top-Up (threshold "+bench.AutoThreshold+
		", target "+bench.AutoTarget+") over a grant of "+bench.AutoGrant.String()+", and report the top-ups and the time from crossing to credit")
	fs.IntVar(&cfg.Grants, "grants", 1, "split each account's opening credit into this many grants (promotional, paid expiring in a year, paid for ever, in turn), 1 to 10")
	fs.IntVar(&cfg.BaselineGrants, "baseline-grants", 0, "also run the single and batch phases on as many accounts again whose credit is split into this many grants, in the same run (e.g. --grants 3 --baseline-grants 1)")
	fs.DurationVar(&cfg.SandboxLatency, "sandbox-latency", 0, "how long each sandbox charge takes (as TOPUP_SANDBOX_LATENCY); needs --auto-top-up")
	fs.Int64Var(&cfg.SeedEntries, "seed-entries", 0, "before the phases, seed this many usage entries of history (13 months, Zipf over the accounts), generated inside the database; for the read phase")
	fs.IntVar(&cfg.PageSize, "page-size", 100, "transactions per page in the read phase, 1 to 100")
	fs.BoolVar(&cfg.Explain, "explain", false, "after the run, print the plan (PostgreSQL: EXPLAIN ANALYZE; SQLite: EXPLAIN QUERY PLAN) of each statement of the read and debit paths on the database's account with the most entries")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: bench takes no arguments, got %q", errUsage, fs.Args())
	}
	for _, p := range strings.Split(*phases, ",") {
		cfg.Phases = append(cfg.Phases, strings.TrimSpace(p))
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, nil
}
