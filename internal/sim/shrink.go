package sim

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Shrink looks for a shorter list of steps that still breaks the same
// invariant (delta debugging: drop chunks, halving them, then single steps,
// each candidate run from a fresh database), for at most budget. Steps keep
// their own seeds, so a step left in does the same things as long as the
// world it meets is alike. It returns the shortest failing list found and
// its failure (the original ones when nothing shorter fails).
func Shrink(ctx context.Context, cfg Config, f *Failure, budget time.Duration) ([]Step, *Failure) {
	deadline := time.Now().Add(budget)
	cfg.Trace = nil
	steps := generated(cfg, f.Ran)
	best := f
	fails := func(cand []Step) bool {
		res, err := RunSteps(ctx, cfg, cand)
		if err != nil || res.Failure == nil || res.Failure.Invariant != f.Invariant {
			return false
		}
		best = res.Failure
		steps = generated(cfg, res.Failure.Ran)
		return true
	}
	n := 2
	for len(steps) >= 2 && time.Now().Before(deadline) && ctx.Err() == nil {
		size := (len(steps) + n - 1) / n
		reduced := false
		for i := 0; i*size < len(steps) && time.Now().Before(deadline); i++ {
			cand := append(append([]Step(nil), steps[:i*size]...), steps[min(len(steps), (i+1)*size):]...)
			if fails(cand) {
				n = max(n-1, 2)
				reduced = true
				break
			}
		}
		if !reduced {
			if size == 1 {
				break
			}
			n = min(2*n, len(steps))
		}
	}
	return steps, best
}

// generated drops the setup and the final quiet period RunSteps adds
// around the schedule.
func generated(cfg Config, ran []Step) []Step {
	var out []Step
	for _, s := range ran {
		if s.N >= 0 && s.N < cfg.Steps {
			out = append(out, s)
		}
	}
	return out
}

// Command is the command line that replays a run of cfg, or of only some
// steps of its schedule.
func Command(cfg Config, only []Step) string {
	cmd := fmt.Sprintf("go run ./cmd/topup simulate --seed %d --steps %d", cfg.Seed, cfg.Steps)
	if cfg.DB != "" {
		cmd += " --db '" + cfg.DB + "'"
	}
	if !cfg.StrictLimit {
		cmd += " --strict-limit=false"
	}
	var ns []string
	for _, s := range only {
		ns = append(ns, strconv.Itoa(s.N))
	}
	if only == nil {
		for _, n := range cfg.Only {
			ns = append(ns, strconv.Itoa(n))
		}
	}
	if len(ns) > 0 {
		cmd += " --only " + strings.Join(ns, ",")
	}
	return cmd
}

// Report writes a failure: the invariant, the command that replays the
// seed, the shrunk schedule (each step with what it did in the shrunk run)
// and the command that replays just those steps.
func Report(w io.Writer, cfg Config, res Result, shrunk []Step, sf *Failure) {
	f := res.Failure
	at := fmt.Sprintf("after step %d of %d (%s)", f.Step.N, cfg.Steps, f.Step.Kind)
	switch {
	case f.Step.Kind == KindSetup:
		at = "after the setup"
	case f.Step.N == cfg.Steps:
		at = "in the quiet period that ends the run"
	}
	fmt.Fprintf(w, "FAIL seed %d: %s %s\n  %s\n", cfg.Seed, f.Invariant, at, f.Detail)
	fmt.Fprintf(w, "replay: %s\n", Command(cfg, nil))
	ran := sf
	if sf == nil {
		ran, shrunk = f, generated(cfg, f.Ran)
		fmt.Fprintf(w, "schedule, not shrunk (%d steps; the last %d):\n", len(shrunk), min(len(shrunk), notShrunk))
	} else if len(shrunk) == 0 {
		fmt.Fprintf(w, "the world of the seed alone breaks it, before any step (replay: %s --only -1):\n", Command(cfg, nil))
	} else {
		fmt.Fprintf(w, "schedule, shrunk from %d to %d steps (replay them alone: %s):\n", len(generated(cfg, f.Ran)), len(shrunk), Command(cfg, shrunk))
	}
	traces := map[int][]string{}
	if tr := rerunTraces(cfg, shrunk); tr != nil {
		traces = tr
	}
	sf = ran
	steps := sf.Ran
	if len(steps) > notShrunk {
		steps = steps[len(steps)-notShrunk:]
	}
	if len(steps) == 0 || steps[0].N >= 0 {
		// The world the steps start from.
		steps = append([]Step{{N: -1, Kind: KindSetup}}, steps...)
	}
	for _, s := range steps {
		fmt.Fprintf(w, "  %s\n", s)
		lines := traces[s.N]
		if s.N == sf.Step.N {
			lines = sf.Trace
		}
		most := 14
		if s.Kind == KindSetup {
			most = 40
		}
		for i, l := range lines {
			if i == most && s.N != sf.Step.N {
				fmt.Fprintf(w, "        … %d more\n", len(lines)-most)
				break
			}
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
	if sf.Invariant != f.Invariant || sf.Detail != f.Detail {
		fmt.Fprintf(w, "the shrunk schedule fails with: %s: %s\n", sf.Invariant, sf.Detail)
	}
}

// notShrunk is how many of the last steps an unshrunk schedule shows.
const notShrunk = 30

// rerunTraces runs steps again and returns what each did.
func rerunTraces(cfg Config, steps []Step) map[int][]string {
	var buf traceBuf
	cfg.Trace = &buf
	if _, err := RunSteps(context.Background(), cfg, steps); err != nil {
		return nil
	}
	return buf.steps
}

// traceBuf collects a run's trace by step.
type traceBuf struct {
	cur   int
	steps map[int][]string
}

func (b *traceBuf) Write(p []byte) (int, error) {
	if b.steps == nil {
		b.steps = map[int][]string{}
	}
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.Fields(line[1:])[0]))
			b.cur = n
			continue
		}
		b.steps[b.cur] = append(b.steps[b.cur], strings.TrimSpace(line))
	}
	return len(p), nil
}
