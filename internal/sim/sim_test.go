package sim_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/sim"
)

// Seeds and steps CI runs: a bounded budget on two shared cores. More runs
// with `topup simulate --seeds M` or `--duration 8h`; SIM_SEEDS and
// SIM_STEPS change the budget of this test.
const (
	sqliteSeeds   = 40
	postgresSeeds = 8
	ciSteps       = 400
)

func budget(t *testing.T, seeds int) (int, int) {
	t.Helper()
	steps := ciSteps
	if v := os.Getenv("SIM_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SIM_SEEDS=%q: %v", v, err)
		}
		seeds = n
	}
	if v := os.Getenv("SIM_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SIM_STEPS=%q: %v", v, err)
		}
		steps = n
	}
	return seeds, steps
}

// runSeeds runs consecutive seeds and fails with the report of the first
// broken invariant: the command that replays it (on show, the database the
// command names) and the shrunk schedule.
func runSeeds(t *testing.T, db, show string, first uint64, seeds, steps int) {
	t.Helper()
	start := time.Now()
	total := 0
	for i := range seeds {
		cfg := sim.Config{Seed: first + uint64(i), Steps: steps, DB: db, StrictLimit: true}
		res, err := sim.Run(t.Context(), cfg)
		if err != nil {
			t.Fatalf("seed %d: %v", cfg.Seed, err)
		}
		total += res.Steps
		if res.Failure != nil {
			shrunk, sf := sim.Shrink(t.Context(), cfg, res.Failure, 30*time.Second)
			var b bytes.Buffer
			cfg.DB = show
			sim.Report(&b, cfg, res, shrunk, sf)
			t.Fatalf("%s", b.String())
		}
	}
	took := time.Since(start)
	t.Logf("%d seeds, %d steps in %s: %.2f seeds/s, %.0f steps/s", seeds, total, took.Round(time.Millisecond),
		float64(seeds)/took.Seconds(), float64(total)/took.Seconds())
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestSimulateSQLite runs the CI budget of seeds on SQLite: every invariant
// holds after every step of every seed.
func TestSimulateSQLite(t *testing.T) {
	t.Parallel()
	seeds, steps := budget(t, sqliteSeeds)
	runSeeds(t, "", "", 1, seeds, steps)
}

// TestSimulatePostgres runs seeds on PostgreSQL, each in a fresh schema of
// the test run's database (pgtest): required when CI=true, skipped with a
// message otherwise when PostgreSQL cannot be reached.
func TestSimulatePostgres(t *testing.T) {
	t.Parallel()
	if why := pgtest.SkipReason(); why != "" {
		t.Skip(why)
	}
	url := pgtest.Schema(t)
	show := os.Getenv("TOPUP_TEST_POSTGRES")
	if show == "" {
		show = pgtest.DefaultAdminURL
	}
	seeds, steps := budget(t, postgresSeeds)
	runSeeds(t, url, show, 1_000_001, seeds, steps)

	// PostgreSQL too replays a seed bit for bit.
	cfg := sim.Config{Seed: 1_000_001, Steps: 150, DB: url}
	a, err := sim.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint != b.Fingerprint || a.Stats != b.Stats {
		t.Fatalf("seed %d ran twice differently on PostgreSQL: fingerprints %s and %s", cfg.Seed, a.Fingerprint, b.Fingerprint)
	}
}

// TestSameSeedSameRun: a seed replays bit for bit — the same steps, the
// same ids, the same faults, crashes and answers (the run's fingerprint
// hashes every line of its trace).
func TestSameSeedSameRun(t *testing.T) {
	t.Parallel()
	cfg := sim.Config{Seed: 4242, Steps: 300}
	var first, second bytes.Buffer
	cfg.Trace = &first
	a, err := sim.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Trace = &second
	b, err := sim.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint != b.Fingerprint || first.String() != second.String() {
		t.Fatalf("seed %d ran twice differently: fingerprints %s and %s", cfg.Seed, a.Fingerprint, b.Fingerprint)
	}
	if a.Stats != b.Stats {
		t.Fatalf("stats differ: %+v and %+v", a.Stats, b.Stats)
	}
	if !strings.Contains(first.String(), "tu_") {
		t.Fatalf("the run made no top-up:\n%s", first.String())
	}
}

// TestScheduleIsTheSeeds: the schedule is a function of the seed alone, and
// Only keeps exactly the steps it names.
func TestScheduleIsTheSeeds(t *testing.T) {
	t.Parallel()
	a, b := sim.Generate(7, 500), sim.Generate(7, 500)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d differs: %v and %v", i, a[i], b[i])
		}
	}
	if c := sim.Generate(8, 500); c[0] == a[0] && c[1] == a[1] {
		t.Fatal("seeds 7 and 8 start alike")
	}
	got := sim.Only(a, []int{3, 17, 499})
	if len(got) != 3 || got[0] != a[3] || got[1] != a[17] || got[2] != a[499] {
		t.Fatalf("Only: %v", got)
	}
}
