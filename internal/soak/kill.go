package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/topup/topup/internal/progress"
)

// kill is one SIGKILL: which replica, when, the top-ups open at that
// moment (some of them in the killed replica's hands) and how long the
// restart took until /healthz answered.
type kill struct {
	replica int
	at      time.Time
	open    []string
	restart time.Duration
	// settled is, for the automatic [0] and the manual [1] top-ups of
	// open, how long after the kill the last of them settled (set after
	// the quiet period).
	settled [2]settling
}

// settling is how a kind of top-up open at a kill settled: how many were
// open, how many never settled, and when the last one did.
type settling struct {
	open, never int
	last        time.Duration
}

// killLoop SIGKILLs a random replica every ~KillEvery (±25%) until
// loadCtx ends, and restarts it at once on the same port.
func (s *soak) killLoop(ctx, loadCtx context.Context) error {
	if s.cfg.KillEvery == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for {
		jitter := time.Duration(rng.Int64N(int64(s.cfg.KillEvery)/2+1)) - s.cfg.KillEvery/4
		select {
		case <-loadCtx.Done():
			return nil
		case <-time.After(s.cfg.KillEvery + jitter):
		}
		r := s.fleet.replicas[rng.IntN(len(s.fleet.replicas))]
		k := kill{replica: r.index}
		open, err := s.openTopUps(ctx)
		if err != nil {
			return err
		}
		k.open = open
		k.at = time.Now()
		r.kill()
		t0 := time.Now()
		if err := s.fleet.start(ctx, r); err != nil {
			return fmt.Errorf("soak: restart replica %d after its kill: %w", r.index, err)
		}
		k.restart = time.Since(t0)
		s.kills = append(s.kills, k)
		s.killed.Add(1)
	}
}

// openTopUps are the ids of the top-ups open now.
func (s *soak) openTopUps(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM top_ups WHERE status IN ('pending', 'processing')`)
	if err != nil {
		return nil, fmt.Errorf("soak: read open top-ups: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// pollStats is what the monitor saw: how many times it looked for an
// account with two open automatic top-ups, and how many it found.
type pollStats struct {
	samples, doubles int
	err              error
}

// monitor looks, twice a second while the load runs, for an account with
// two open automatic top-ups (the partial unique index forbids it), and
// draws the progress bar.
func (s *soak) monitor(loadCtx context.Context) {
	bar := progress.New(s.stderr, int64(s.cfg.Duration/time.Second), "soak")
	defer bar.Finish()
	start := time.Now()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-loadCtx.Done():
			return
		case <-t.C:
		}
		var n int
		err := s.db.QueryRowContext(loadCtx, `SELECT count(*) FROM (SELECT account_id FROM top_ups
			WHERE trigger <> 'manual' AND status IN ('pending', 'processing', 'requires_action')
			GROUP BY account_id HAVING count(*) > 1) AS d`).Scan(&n)
		switch {
		case err == nil:
			s.polls.samples++
			s.polls.doubles += n
		case loadCtx.Err() == nil:
			s.polls.err = err
		}
		bar.Set(int64(time.Since(start) / time.Second))
		bar.Describe(fmt.Sprintf("soak: %s debits acknowledged, %d kills", progress.Commas(s.rec.events.Load()), s.killed.Load()))
	}
}

// awaitQuiet waits, at most Quiet, for every top-up to settle, and returns
// how many are still open.
func (s *soak) awaitQuiet(ctx context.Context) (int, error) {
	deadline := time.Now().Add(s.cfg.Quiet)
	for {
		open, err := s.openTopUps(ctx)
		if err != nil || len(open) == 0 || time.Now().After(deadline) {
			return len(open), err
		}
		select {
		case <-ctx.Done():
			return len(open), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
