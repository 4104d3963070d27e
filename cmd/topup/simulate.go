package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/progress"
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
	r := &seedRun{cfg: cfg, first: *seed, seeds: *seeds, duration: *duration, shrink: *shrink, start: time.Now(), stdout: stdout, stderr: stderr}
	if !*trace {
		r.bar = simulateBar(stderr, *seeds, *duration)
	}
	failed, err := r.run(ctx)
	r.bar.Finish()
	if err != nil || failed {
		return cmp.Or(err, errSimulationFailed)
	}
	if r.ran == 1 {
		fmt.Fprintf(stdout, "ok: seed %d, every invariant held after every step (run fingerprint %s)\n", *seed, r.fingerprint)
	} else {
		fmt.Fprintf(stdout, "ok: seeds %d to %d, every invariant held after every step\n", *seed, *seed+uint64(r.ran)-1)
	}
	printRate(stdout, r.ran, r.steps, time.Since(r.start), r.total)
	return nil
}

// simulateBar is the progress of a run on a terminal: seeds done, or
// seconds of --duration gone.
func simulateBar(w io.Writer, seeds int, duration time.Duration) *progress.Bar {
	if duration > 0 {
		return progress.New(w, int64(duration/time.Second), "simulate (seconds)")
	}
	if seeds > 1 {
		return progress.New(w, int64(seeds), "simulate (seeds)")
	}
	return nil
}

// seedRun runs consecutive seeds and adds up what they did.
type seedRun struct {
	cfg            sim.Config
	first          uint64
	seeds          int
	duration       time.Duration
	shrink         time.Duration
	start          time.Time
	stdout, stderr io.Writer
	bar            *progress.Bar

	ran, steps  int
	total       sim.Stats
	fingerprint string
}

// more says whether another seed should run.
func (r *seedRun) more(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	if r.duration > 0 {
		return time.Since(r.start) < r.duration
	}
	return r.ran < r.seeds
}

// run runs seeds until done; failed is true when a seed broke an invariant
// (reported, shrunk when asked).
func (r *seedRun) run(ctx context.Context) (failed bool, err error) {
	for r.more(ctx) {
		cfg := r.cfg
		cfg.Seed = r.first + uint64(r.ran)
		res, err := sim.Run(ctx, cfg)
		if err != nil {
			return false, fmt.Errorf("seed %d: %w", cfg.Seed, err)
		}
		r.ran++
		r.steps += res.Steps
		add(&r.total, res.Stats)
		r.fingerprint = res.Fingerprint
		if res.Failure != nil {
			r.bar.Finish()
			r.report(ctx, cfg, res)
			return true, nil
		}
		if r.duration > 0 {
			r.bar.Set(int64(time.Since(r.start) / time.Second))
			if r.ran%50 == 0 && r.bar == nil {
				printRate(r.stdout, r.ran, r.steps, time.Since(r.start), r.total)
			}
		} else {
			r.bar.Add(1)
		}
	}
	return false, nil
}

// report prints a failing seed, shrunk when asked.
func (r *seedRun) report(ctx context.Context, cfg sim.Config, res sim.Result) {
	var shrunk []sim.Step
	var sf *sim.Failure
	if r.shrink > 0 {
		fmt.Fprintf(r.stderr, "seed %d failed at step %d; shrinking for up to %s…\n", cfg.Seed, res.Failure.Step.N, r.shrink)
		shrunk, sf = sim.Shrink(ctx, cfg, res.Failure, r.shrink)
	}
	sim.Report(r.stdout, cfg, res, shrunk, sf)
	printRate(r.stdout, r.ran, r.steps, time.Since(r.start), r.total)
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
	t.Expirations += s.Expirations
	t.Replays += s.Replays
	t.Conflicts += s.Conflicts
	t.CardsRemoved += s.CardsRemoved
	t.Settings += s.Settings
	t.TopUps += s.TopUps
	t.TopUpsSucceeded += s.TopUpsSucceeded
	t.TopUpsFailed += s.TopUpsFailed
	t.TopUpsCanceled += s.TopUpsCanceled
	t.HoldsMade += s.HoldsMade
	t.HoldsRefused += s.HoldsRefused
	t.HoldTopUps += s.HoldTopUps
	t.HoldsCaptured += s.HoldsCaptured
	t.CapturesRefused += s.CapturesRefused
	t.HoldsReleased += s.HoldsReleased
	t.HoldsExpired += s.HoldsExpired
	t.ExpiryPasses += s.ExpiryPasses
	t.Warnings += s.Warnings
	t.Voids += s.Voids
	t.VoidsRefused += s.VoidsRefused
	t.RefundsAsked += s.RefundsAsked
	t.RefundsRefused += s.RefundsRefused
	t.RefundsSucceeded += s.RefundsSucceeded
	t.RefundsFailed += s.RefundsFailed
	t.RefundPasses += s.RefundPasses
	t.Disputes += s.Disputes
	t.DisputesWon += s.DisputesWon
	t.DisputesLost += s.DisputesLost
}

func printRate(w io.Writer, seeds, steps int, took time.Duration, t sim.Stats) {
	sec := took.Seconds()
	fmt.Fprintf(w, "%d seeds, %d steps in %s: %.2f seeds/s, %.0f steps/s\n", seeds, steps, took.Round(time.Millisecond), float64(seeds)/sec, float64(steps)/sec)
	fmt.Fprintf(w, "top-ups: %d (%d succeeded, %d failed, %d canceled)\n", t.TopUps, t.TopUpsSucceeded, t.TopUpsFailed, t.TopUpsCanceled)
	fmt.Fprintf(w, "exercised: %d crashes (%d inside a step), %d group commits of %d postings (%d replays, %d conflicts), %d charges (%d answers lost, %d failed before charging, %d landed late, %d searches), %d webhooks (+%d duplicates), %d 3-D Secure answers (%d stale), %d revived (%d past the monthly limit), %d manual top-ups, %d settings saves, %d cards removed, %d day-long jumps, %d month boundaries, %d grants expired with credit left\n",
		t.Crashes, t.MidStepCrashes, t.Groups, t.Postings, t.Replays, t.Conflicts, t.Charges, t.Lost, t.FailBefore, t.Late, t.Finds,
		t.Webhooks, t.Duplicates, t.Authenticated, t.StaleAuth, t.Revived, t.RevivedOverLimit, t.Manual, t.Settings, t.CardsRemoved, t.KeyExpiryJumps, t.MonthBoundaries, t.Expirations)
	fmt.Fprintf(w, "holds: %d made (%d triggering a top-up), %d refused 402, %d captured (%d refused 409), %d released, %d expired; expiry: %d passes, %d warnings, %d expirations; voids: %d (%d refused 409)\n",
		t.HoldsMade, t.HoldTopUps, t.HoldsRefused, t.HoldsCaptured, t.CapturesRefused, t.HoldsReleased, t.HoldsExpired,
		t.ExpiryPasses, t.Warnings, t.Expirations, t.Voids, t.VoidsRefused)
	fmt.Fprintf(w, "refunds: %d asked (%d refused), %d succeeded, %d failed, %d worker passes; disputes: %d opened, %d won, %d lost\n",
		t.RefundsAsked, t.RefundsRefused, t.RefundsSucceeded, t.RefundsFailed, t.RefundPasses, t.Disputes, t.DisputesWon, t.DisputesLost)
}
