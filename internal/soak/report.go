package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/progress"
)

// report is what the run measured, printed at the end on one screen.
type report struct {
	started                        time.Time
	startTook, setupTook, loadTook time.Duration
	loadStart                      time.Time
	quietTook, verifyTook          time.Duration
	openAfterQuiet                 int
	retries                        int // "transaction retried" lines in the replicas' logs

	deadlocks    int64 // pg_stat_database.deadlocks, after less before
	logDeadlocks int   // `deadlock detected` lines of the soak's database in PostgreSQL's log
	logNote      string

	ackedDebits, sentDebits, ledgerDebits, recordedUnacked int
	charges                                                int
	refunds                                                int // succeeded sandbox refunds, each in the ledger once
	charged, credited                                      money.Amount
	autoTopUps                                             int
	topUps                                                 map[string]int // "trigger status" → count
}

// deadlocks reads how many deadlocks PostgreSQL counted in the soak's
// database so far.
func (s *soak) deadlocks(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("soak: read pg_stat_database: %w", err)
	}
	return n, nil
}

// pgLog is PostgreSQL's log file: --pg-log, or the newest readable file of
// /var/log/postgresql (Debian's place); "" when there is none.
func (s *soak) pgLog() string {
	if s.cfg.PGLog != "" {
		return s.cfg.PGLog
	}
	files, _ := filepath.Glob("/var/log/postgresql/*.log")
	var best string
	var newest time.Time
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			continue
		}
		if r, err := os.Open(f); err == nil && st.ModTime().After(newest) {
			r.Close()
			best, newest = f, st.ModTime()
		}
	}
	return best
}

// pgLogOffset is the log's size now: the run's lines come after it.
func (s *soak) pgLogOffset() int64 {
	st, err := os.Stat(s.pgLog())
	if err != nil {
		return 0
	}
	return st.Size()
}

// pgLogDeadlocks counts the `deadlock detected` lines that name the soak's
// database (log_line_prefix's %d, Debian's default) written since from.
func (s *soak) pgLogDeadlocks(from int64) (int, string) {
	path := s.pgLog()
	if path == "" {
		return 0, "PostgreSQL's log not found (--pg-log)"
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Sprintf("PostgreSQL's log %s not readable: %v", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < from {
		from = 0 // rotated or truncated meanwhile
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return 0, fmt.Sprintf("PostgreSQL's log %s: %v", path, err)
	}
	var db string
	if err := s.db.QueryRow(`SELECT current_database()`).Scan(&db); err != nil {
		return 0, fmt.Sprintf("PostgreSQL's log: %v", err)
	}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "deadlock detected") && strings.Contains(line, "@"+db+" ") {
			n++
		}
	}
	return n, fmt.Sprintf("%s, lines of database %s", path, db)
}

// printReport writes the one-screen report and the checks.
func (s *soak) printReport(problems []string) {
	r, cfg, w := &s.report, s.cfg, s.out
	fmt.Fprintf(w, "topup soak: %d replicas on %s (schema %s), %s accounts with a card and Automatic Top-Up (threshold %s, target %s), "+
		"%d clients for %s, a SIGKILL every ~%s, sandbox latency %s, TOPUP_WORKER_LEASE %s\n",
		cfg.Replicas, app.RedactDB(cfg.DB), s.schema, progress.Commas(int64(cfg.Accounts)), soakThreshold, soakTarget, cfg.Clients, cfg.Duration, cfg.KillEvery, cfg.Latency, cfg.Lease)
	fmt.Fprintf(w, "%d replicas started at once (migrations under their lock) in %s; accounts set up through them in %s\n\n",
		cfg.Replicas, span(r.startTook), span(r.setupTook))
	secs := r.loadTook.Seconds()
	fmt.Fprintf(w, "%-13s %9s %9s %8s %8s %9s %8s\n", "load", "requests", "acked", "refused", "unknown", "failovers", "acked/s")
	for _, op := range opOrder {
		st := s.rec.ops[op]
		fmt.Fprintf(w, "%-13s %9s %9s %8s %8s %9s %8.0f\n", op, progress.Commas(st.sent.Load()), progress.Commas(st.acked.Load()), progress.Commas(st.refused.Load()),
			progress.Commas(st.unknown.Load()), progress.Commas(st.failovers.Load()), float64(st.acked.Load())/secs)
	}
	fmt.Fprintf(w, "refused: %s\n", s.refusals())
	fmt.Fprintf(w, "debit events acknowledged: %s (%.0f/s: single, batched and captures); single debits %s\n",
		progress.Commas(int64(r.ackedDebits)), float64(r.ackedDebits)/secs, durations(s.rec.single))
	s.printKills()
	fmt.Fprintf(w, "quiet: %s after the load, %d top-ups open\n", span(r.quietTook), r.openAfterQuiet)
	var kinds []string
	for k, n := range r.topUps {
		kinds = append(kinds, fmt.Sprintf("%s %s", k, progress.Commas(int64(n))))
	}
	slices.Sort(kinds)
	fmt.Fprintf(w, "top-ups: %s\n\n", strings.Join(kinds, ", "))
	s.printChecks(problems)
}

// refusals is the refusals by operation and code.
func (s *soak) refusals() string {
	var parts []string
	for _, op := range opOrder {
		st := s.rec.ops[op]
		st.mu.Lock()
		for code, n := range st.codes {
			parts = append(parts, fmt.Sprintf("%s %s × %s", op, progress.Commas(int64(n)), code))
		}
		st.mu.Unlock()
	}
	if len(parts) == 0 {
		return "none"
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// printKills writes the kills' lines: how many, the restarts, and how
// soon the automatic and the manual top-ups open at each kill had all
// settled.
func (s *soak) printKills() {
	var restarts []time.Duration
	for _, k := range s.kills {
		restarts = append(restarts, k.restart)
	}
	fmt.Fprintf(s.out, "kills: %d SIGKILLs, each replica restarted on its port: to /healthz %s\n", len(s.kills), durations(restarts))
	for c, what := range []string{"automatic", "manual"} {
		var last []time.Duration
		open, never := 0, 0
		for _, k := range s.kills {
			st := k.settled[c]
			if st.open > 0 && st.never == 0 {
				last = append(last, st.last)
			}
			open += st.open
			never += st.never
		}
		if open == 0 {
			continue
		}
		fmt.Fprintf(s.out, "resume: the %s top-ups open at a kill (%s, the killed replica's among them) had all settled %s after it", what, progress.Commas(int64(open)), durations(last))
		if never > 0 {
			fmt.Fprintf(s.out, "; %d never did", never)
		}
		fmt.Fprintln(s.out)
	}
}

// printChecks writes one line per check, and the broken ones.
func (s *soak) printChecks(problems []string) {
	r, w := &s.report, s.out
	broken := map[string]bool{}
	for _, p := range problems {
		broken[strings.SplitN(p, ":", 2)[0]] = true
	}
	mark := func(names ...string) string {
		for _, n := range names {
			if broken[n] {
				return "FAIL"
			}
		}
		return "ok  "
	}
	fmt.Fprintf(w, "%s every acknowledged debit is in the ledger exactly once: %s acknowledged of %s sent; %s sent without an answer are recorded once, none twice; none recorded that was never sent\n",
		mark("debits"), progress.Commas(int64(r.ackedDebits)), progress.Commas(int64(r.sentDebits)), progress.Commas(int64(r.recordedUnacked)))
	fmt.Fprintf(w, "%s every succeeded sandbox charge is credited exactly once: %s charges of %s = %s top-up credits; no other credit than the %s opening ones\n",
		mark("charges", "credits", "top-ups"), progress.Commas(int64(r.charges)), r.charged, r.credited, progress.Commas(int64(len(s.accounts))))
	fmt.Fprintf(w, "%s every sandbox refund is in the ledger exactly once, and every acknowledged refund succeeded: %s refunds (%s acknowledged)\n",
		mark("refunds"), progress.Commas(int64(r.refunds)), progress.Commas(int64(len(s.rec.refund))))
	fmt.Fprintf(w, "%s never two open automatic top-ups on one account: %s in order, %d polls during the run found none\n",
		mark("one open", "polls"), progress.Commas(int64(r.autoTopUps)), s.polls.samples)
	fmt.Fprintf(w, "%s verify: %s (%s)\n", mark("verify"), map[bool]string{true: "broken", false: "clean"}[broken["verify"]], span(r.verifyTook))
	fmt.Fprintf(w, "%s deadlocks: %d in pg_stat_database; %d `deadlock detected` in %s\n", mark("deadlocks"), r.deadlocks, r.logDeadlocks, r.logNote)
	fmt.Fprintf(w, "%s every top-up settled in the quiet period\n", mark("quiet"))
	fmt.Fprintf(w, "%s every refusal is one the load is owed (a hold beyond the credit, a top-up on a card just removed)\n", mark("refusals"))
	fmt.Fprintf(w, "     transactions retried (deadlock, serialization): %d in the replicas' logs\n", r.retries)
	for _, p := range problems {
		fmt.Fprintf(w, "BROKEN %s\n", p)
	}
}

// durations is "p50 …, p99 …, max … (n=…)" of ds.
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none (n=0)"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n=%s)", span(at(0.50)), span(at(0.99)), span(ds[len(ds)-1]), progress.Commas(int64(len(ds))))
}

// span is a duration rounded for reading.
func span(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
