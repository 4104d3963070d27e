package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

const usage = `topup — prepaid credit billing with Automatic Top-Up

Commands:
  topup serve   [--addr 127.0.0.1:8080] [--db sqlite:topup.db|postgres://…] [--payments sandbox|stripe]
  topup demo    [--addr 127.0.0.1:8080] [--db sqlite:topup-demo.db]   a server with a demo account
  topup account create --email EMAIL [--currency usd] [--db …]
  topup account list [--db …]
  topup migrate [--db …]
  topup verify  [--db …]        recompute every balance; exit 1 naming each broken account
  topup bench   [--db …] [--accounts M] [--clients N] [--duration D] [--alerts-budgets] [--grants G [--baseline-grants B]] [--amount A] [--auto-top-up [--sandbox-latency D]]
  topup soak    --db postgres://… [--replicas 3] [--accounts 10000] [--duration 3m] [--clients 32] [--kill-every 20s] [--latency 100ms]   replicas under kills, proved
  topup simulate [--seed N] [--steps K] [--seeds M | --duration D] [--db …]   the deterministic simulation
`

// errUsage marks a command line that could not be understood; run prints
// the usage with it.
var errUsage = errors.New("usage")

// run is the whole program: main calls it with the process's arguments,
// environment and output, and the end-to-end tests call it the same way.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: name a command", errUsage)
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(ctx, rest, getenv, stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, rest, getenv, stdout, stderr)
	case "account":
		err = cmdAccount(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, rest, getenv, stdout, stderr)
	case "verify":
		err = cmdVerify(ctx, rest, getenv, stdout, stderr)
	case "bench":
		err = cmdBench(ctx, rest, getenv, stdout, stderr)
	case "soak":
		err = cmdSoak(ctx, rest, getenv, stdout, stderr)
	case "simulate":
		err = cmdSimulate(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// newFlags returns a flag set that reports to stderr and does not exit.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("topup "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// dbFlag adds --db with the embedded default.
func dbFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("db", def, "database: sqlite:PATH or postgres://…")
}
