package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/sim"
)

// errSimulationFailed is returned when a seed broke an invariant; the
// report is already printed.
var errSimulationFailed = errors.New("the simulation found a broken invariant")

// cmdSimulate runs the deterministic simulation (internal/sim): one seed,
// many seeds one after another, or seeds for a while; a failing seed is
// shrunk and printed with the command that replays it.
func cmdSimulate(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("simulate", stderr)
	seed := fs.Uint64("seed", 1, "the seed (with --seeds or --duration, the first of consecutive seeds)")
	steps := fs.Int("steps", 400, "steps per seed")
	seeds := fs.Int("seeds", 1, "how many seeds to run")
	duration := fs.Duration("duration", 0, "run consecutive seeds for this long (instead of --seeds)")
	db := fs.String("db", "", "database: empty for a fresh SQLite file per seed, or postgres://… (a fresh schema per seed)")
	only := fs.String("only", "", "run only these steps of the seed's schedule (a shrunk schedule), as 3,17,40")
	trace := fs.Bool("trace", false, "print every step and what it did")
	shrink := fs.Duration("shrink", 2*time.Minute, "how long to shrink a failing schedule (0: do not)")
	strict := fs.Bool("strict-limit", true, "fail when a top-up credited after it was given up on takes its month past monthly_limit (--strict-limit=false only counts it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *steps <= 0 || *seeds <= 0 {
		fs.Usage()
		return fmt.Errorf("%w: simulate takes flags only, with --steps and --seeds above zero", errUsage)
	}
	cfg := sim.Config{Seed: *seed, Steps: *steps, DB: *db, StrictLimit: *strict}
	if *only != "" {
		for _, f := range strings.Split(*only, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("%w: --only %q: %v", errUsage, *only, err)
			}
			cfg.Only = append(cfg.Only, n)
		}
	}
	if *trace {
		cfg.Trace = stdout
	}
	start := time.Now()
	var total sim.Stats
	ran, stepsRun, fingerprint := 0, 0, ""
	for i := 0; ; i++ {
		if *duration > 0 {
			if time.Since(start) >= *duration {
				break
			}
		} else if i >= *seeds {
			break
		}
		if err := ctx.Err(); err != nil {
			break
		}
		cfg.Seed = *seed + uint64(i)
		res, err := sim.Run(ctx, cfg)
		if err != nil {
			return fmt.Errorf("seed %d: %w", cfg.Seed, err)
		}
		ran++
		stepsRun += res.Steps
		add(&total, res.Stats)
		fingerprint = res.Fingerprint
		if res.Failure != nil {
			var shrunk []sim.Step
			var sf *sim.Failure
			if *shrink > 0 {
				fmt.Fprintf(stderr, "seed %d failed at step %d; shrinking for up to %s…\n", cfg.Seed, res.Failure.Step.N, *shrink)
				shrunk, sf = sim.Shrink(ctx, cfg, res.Failure, *shrink)
			}
			sim.Report(stdout, cfg, res, shrunk, sf)
			printRate(stdout, ran, stepsRun, time.Since(start), total)
			return errSimulationFailed
		}
		if *duration > 0 && ran%50 == 0 {
			printRate(stdout, ran, stepsRun, time.Since(start), total)
		}
	}
	if ran == 1 {
		fmt.Fprintf(stdout, "ok: seed %d, every invariant held after every step (run fingerprint %s)\n", *seed, fingerprint)
	} else {
		fmt.Fprintf(stdout, "ok: seeds %d to %d, every invariant held after every step\n", *seed, *seed+uint64(ran)-1)
	}
	printRate(stdout, ran, stepsRun, time.Since(start), total)
	return nil
}

func add(t *sim.Stats, s sim.Stats) {
	t.Steps += s.Steps
	t.Crashes += s.Crashes
	t.MidStepCrashes += s.MidStepCrashes
	t.Postings += s.Postings
	t.Groups += s.Groups
	t.Charges += s.Charges
	t.Lost += s.Lost
	t.FailBefore += s.FailBefore
	t.Late += s.Late
	t.Finds += s.Finds
	t.Webhooks += s.Webhooks
	t.Duplicates += s.Duplicates
	t.Authenticated += s.Authenticated
	t.StaleAuth += s.StaleAuth
	t.Revived += s.Revived
	t.RevivedOverLimit += s.RevivedOverLimit
	t.Manual += s.Manual
	t.KeyExpiryJumps += s.KeyExpiryJumps
	t.MonthBoundaries += s.MonthBoundaries
	t.Quiet += s.Quiet
	t.Replays += s.Replays
	t.Conflicts += s.Conflicts
	t.CardsRemoved += s.CardsRemoved
	t.Settings += s.Settings
	t.TopUps += s.TopUps
	t.TopUpsSucceeded += s.TopUpsSucceeded
	t.TopUpsFailed += s.TopUpsFailed
	t.TopUpsCanceled += s.TopUpsCanceled
}

func printRate(w io.Writer, seeds, steps int, took time.Duration, t sim.Stats) {
	sec := took.Seconds()
	fmt.Fprintf(w, "%d seeds, %d steps in %s: %.2f seeds/s, %.0f steps/s\n", seeds, steps, took.Round(time.Millisecond), float64(seeds)/sec, float64(steps)/sec)
	fmt.Fprintf(w, "top-ups: %d (%d succeeded, %d failed, %d canceled)\n", t.TopUps, t.TopUpsSucceeded, t.TopUpsFailed, t.TopUpsCanceled)
	fmt.Fprintf(w, "exercised: %d crashes (%d inside a step), %d group commits of %d postings (%d replays, %d conflicts), %d charges (%d answers lost, %d failed before charging, %d landed late, %d searches), %d webhooks (+%d duplicates), %d 3-D Secure answers (%d stale), %d revived (%d past the monthly limit), %d manual top-ups, %d settings saves, %d cards removed, %d day-long jumps, %d month boundaries\n",
		t.Crashes, t.MidStepCrashes, t.Groups, t.Postings, t.Replays, t.Conflicts, t.Charges, t.Lost, t.FailBefore, t.Late, t.Finds,
		t.Webhooks, t.Duplicates, t.Authenticated, t.StaleAuth, t.Revived, t.RevivedOverLimit, t.Manual, t.Settings, t.CardsRemoved, t.KeyExpiryJumps, t.MonthBoundaries)
}
