package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/progress"
	"github.com/topup/topup/internal/sqlstore"
)

func (b *bench) printTable(results []*benchPhase, dialect string) {
	var trivial *benchPhase
	for _, r := range results {
		if r.name == "trivial" {
			trivial = r
		}
	}
	var debitResults []*benchPhase
	for _, r := range results {
		if !r.read {
			debitResults = append(debitResults, r)
		}
	}
	if len(debitResults) > 0 {
		b.printDebitTable(debitResults, trivial)
	}
	b.printReadTable(results)
	for _, r := range results {
		if c := r.commits; c != nil && c.groups > 0 {
			fmt.Fprintf(b.out, "%s: %s group commits, %.1f postings and %s each on average; committer busy %.0f%% of the phase\n",
				r.label(), progress.Commas(int64(c.groups)), c.postings/c.groups, benchLatency(time.Duration(c.seconds/c.groups*float64(time.Second))),
				100*c.seconds/r.elapsed.Seconds()/float64(b.committerWorkers(dialect)))
		}
	}
	b.printGrantsCost(results)
	fmt.Fprintf(b.out, "peak RSS: %s (the whole process: Topup, the trivial handler and every client)\n", benchPeakRSS())

	t, ok := benchTargets[dialect]
	if !ok {
		return
	}
	var verdicts []string
	for _, r := range results {
		switch {
		case r.name == "single" && trivial != nil && trivial.debits > 0:
			share := r.rate() / trivial.rate()
			p99 := benchRatio(r.pct(0.99), trivial.pct(0.99))
			verdicts = append(verdicts,
				fmt.Sprintf("single rate ≥ %.0f%% of trivial: %.0f%% %s", 100*t.singleShare, 100*share, benchVerdict(share >= t.singleShare)),
				fmt.Sprintf("single p99 ≤ 2x trivial: %.1fx %s", p99, benchVerdict(p99 <= 2)))
		case r.name == "batch":
			verdicts = append(verdicts, fmt.Sprintf("batch ≥ %s/s: %s/s %s", progress.Commas(int64(t.batchRate)), progress.Commas(int64(r.rate())), benchVerdict(r.rate() >= t.batchRate)))
		}
	}
	if len(verdicts) > 0 {
		fmt.Fprintf(b.out, "targets (%s): %s\n", dialect, strings.Join(verdicts, "; "))
	}
}

// printDebitTable prints the trivial and debit phases' figures.
func (b *bench) printDebitTable(results []*benchPhase, trivial *benchPhase) {
	tw := newTable(b.out)
	fmt.Fprintln(tw, "phase\tclients\trequests\tdebits/s\tp50\tp99\tp99.9\terrors\tratio-to-trivial")
	for _, r := range results {
		ratio := "—"
		if r.name == "single" && trivial != nil && trivial.debits > 0 {
			ratio = fmt.Sprintf("rate %.0f%%, p99 %.1fx", 100*r.rate()/trivial.rate(), benchRatio(r.pct(0.99), trivial.pct(0.99)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s/s\t%s\t%s\t%s\t%s\t%s\n", r.label(), r.clients, progress.Commas(r.requests), progress.Commas(int64(r.rate())),
			benchLatency(r.pct(0.50)), benchLatency(r.pct(0.99)), benchLatency(r.pct(0.999)), progress.Commas(r.errors), ratio)
	}
	tw.Flush()
}

// newTable is the tab writer of the report's tables.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// label names a phase in the table: with --baseline-grants, with the
// grants of its accounts.
func (r *benchPhase) label() string {
	if r.grants == 0 {
		return r.name
	}
	return fmt.Sprintf("%s/%dg", r.name, r.grants)
}

// printGrantsCost compares, with --baseline-grants, each debit phase's
// rate on the accounts with --grants grants with the same phase's on the
// baseline accounts, against the bound (within 10%).
func (b *bench) printGrantsCost(results []*benchPhase) {
	if b.cfg.baselineGrants == 0 {
		return
	}
	var parts []string
	for i, r := range results {
		if r.grants != b.cfg.grants || i+1 >= len(results) {
			continue
		}
		base := results[i+1]
		if base.name != r.name || base.grants != b.cfg.baselineGrants || base.rate() == 0 {
			continue
		}
		ratio := r.rate() / base.rate()
		parts = append(parts, fmt.Sprintf("%s %.2f %s", r.name, ratio, benchVerdict(ratio >= 0.9)))
	}
	fmt.Fprintf(b.out, "grants: rate with %d grants / with %d (≥ 0.90): %s\n", b.cfg.grants, b.cfg.baselineGrants, strings.Join(parts, "; "))
}

// committerWorkers is how many commit loops the instances run.
func (b *bench) committerWorkers(dialect string) int {
	return app.CommitWorkers(dialect, b.cfg.commitWorkers) * max(len(b.urls), 1)
}

func benchVerdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func benchRatio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.Inf(1)
	}
	return float64(a) / float64(b)
}

// check fails the run on any refused benchRequest, then proves the ledger: a
// fresh store on the same database must verify clean, and each account's
// balance must be its grant less exactly the debits answered as recorded
// (plus, with --auto-top-up, the credits of its succeeded top-ups, which
// are reported and checked against the sandbox's charges first).
func (b *bench) check(ctx context.Context, results []*benchPhase) error {
	var failed []string
	for _, r := range results {
		if r.errors == 0 {
			continue
		}
		failed = append(failed, fmt.Sprintf("%s: %d errors", r.name, r.errors))
		fmt.Fprintf(b.out, "%s: %d errors; the first:\n", r.name, r.errors)
		for _, s := range r.samples {
			fmt.Fprintf(b.out, "    %s\n", s)
		}
	}

	store, err := app.OpenStore(ctx, b.cfg.db, clock.System, ids.New(clock.System))
	if err != nil {
		return errors.Join(err, benchFailed(failed))
	}
	defer store.Close()

	var credits map[string]money.Amount // top-up credits in the ledger, per account
	if b.cfg.autoTopUp {
		tu, err := b.loadTopUps(ctx, store)
		if err != nil {
			return errors.Join(err, benchFailed(failed))
		}
		b.reportTopUps(tu, results)
		failed = append(failed, b.checkTopUps(tu)...)
		credits = tu.credits
	}

	start := time.Now()
	violations, err := store.Verify(ctx)
	if err != nil {
		return errors.Join(fmt.Errorf("bench: verify: %w", err), benchFailed(failed))
	}
	if len(violations) == 0 {
		what := "every balance equals the sum of its entries"
		if b.cfg.autoTopUp {
			what += "; every top-up credit backed by a succeeded top-up, every succeeded top-up and sandbox charge credited once; at most one open automatic top-up per account"
		}
		fmt.Fprintf(b.out, "verify: clean (%s; %s)\n", what, time.Since(start).Round(time.Millisecond))
	} else {
		for _, v := range violations {
			fmt.Fprintf(b.out, "BROKEN %s: %s\n", v.AccountID, v.Problem)
		}
		failed = append(failed, fmt.Sprintf("verify: %d problems", len(violations)))
	}

	wrong, err := b.checkBalances(ctx, store, credits)
	if err != nil {
		return errors.Join(err, benchFailed(failed))
	}
	failed = append(failed, wrong...)
	if b.cfg.explain {
		if err := b.explain(ctx, store, b.out); err != nil {
			return errors.Join(err, benchFailed(failed))
		}
	}
	if app.IsPostgres(b.cfg.db) {
		fmt.Fprintf(b.out, "note: the %d bench accounts (bench-%s-N@example.com) and their entries stay in this database\n", len(b.accounts), b.runID)
	}
	return benchFailed(failed)
}

// checkBalances proves that each account's balance is its grant less
// exactly the debits answered as recorded, plus its top-up credits; it
// returns what failed.
func (b *bench) checkBalances(ctx context.Context, store *sqlstore.DB, credits map[string]money.Amount) ([]string, error) {
	var total int64
	wrong := 0
	for i, id := range b.accounts {
		a, err := store.Account(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("bench: read account %s: %w", id, err)
		}
		n := b.accepted[i].Load()
		total += n
		if want := b.grant - money.Amount(n)*b.cfg.amount + credits[id]; a.Balance != want {
			if wrong < benchMaxSamples {
				fmt.Fprintf(b.out, "BALANCE %s: %s, want %s (grant %s, %d debits answered as recorded, %s of top-up credits)\n", id, a.Balance, want, b.grant, n, credits[id])
			}
			wrong++
		}
	}
	if wrong > 0 {
		return []string{fmt.Sprintf("%d balances differ from the debits answered", wrong)}, nil
	}
	if b.cfg.autoTopUp {
		fmt.Fprintf(b.out, "balances: each of %d accounts is its grant less exactly the %s debits answered as recorded, plus the credits of its succeeded top-ups\n", len(b.accounts), progress.Commas(total))
	} else {
		fmt.Fprintf(b.out, "balances: each of %d accounts is its grant less exactly the %s debits answered as recorded\n", len(b.accounts), progress.Commas(total))
	}
	return nil, nil
}

// setupAutoTopUp gives every account the sandbox card AutoCard and
// Automatic Top-Up, through the API as a customer would: attaching a card
// needs the instance's payment provider.
func benchFailed(failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("bench: %s", strings.Join(failed, "; "))
}

// benchPeakRSS reads the process's high-water resident set from Linux's
// /proc/self/status; elsewhere it is "n/a".
func benchPeakRSS() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return "n/a"
		}
		return fmt.Sprintf("%d MiB", kb/1024)
	}
	return "n/a"
}

// benchLatency shows a latency in milliseconds with about three digits.
func benchLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 1:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

// benchSpan shows a duration as benchLatency does below a second, and in
// seconds above.
func benchSpan(d time.Duration) string {
	if d < time.Second {
		return benchLatency(d)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
