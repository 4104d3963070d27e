package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/topup/topup/client"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/progress"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/topup"
)

// setupAutoTopUp gives every account a card and Automatic Top-Up, through
// the client, eight accounts at a time.
func (b *bench) setupAutoTopUp(ctx context.Context) error {
	settings := client.AutoTopUpParams{Enabled: true, Threshold: client.MoneyPtr(AutoThreshold), Target: client.MoneyPtr(AutoTarget)}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, min(8, len(b.accounts)))
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(b.accounts) || ctx.Err() != nil {
					return
				}
				if _, err := b.api.AttachPaymentMethod(ctx, b.accounts[i], AutoCard); err != nil {
					errs[w] = fmt.Errorf("bench: attach a card to account %d: %w", i, err)
					return
				}
				if _, err := b.api.SetAutoTopUp(ctx, b.accounts[i], settings); err != nil {
					errs[w] = fmt.Errorf("bench: Automatic Top-Up of account %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// topUpReader is what the bench reads of the store after the load: the
// top-ups of its accounts, their ledger entries and the sandbox's charges,
// through the store's own queries, each account at a time (a PostgreSQL
// database may hold other accounts).
type topUpReader interface {
	TopUps(ctx context.Context, accountID string, p ledger.Page) ([]topup.TopUp, bool, error)
	TopUpByID(ctx context.Context, id string) (topup.TopUp, error)
	Entries(ctx context.Context, accountID string, p ledger.Page) ([]ledger.Entry, bool, error)
	SandboxChargesForTopUp(ctx context.Context, customer, topUpID string) ([]sandbox.Charge, error)
}

// readPage is how many rows the bench reads at a time.
const readPage = 1000

// awaitTopUps waits, at most benchSettleWait, for the automatic top-ups of
// the bench's accounts still open when the load stopped to settle, then
// reads how many credits /metrics observed.
func (b *bench) awaitTopUps(ctx context.Context, store topUpReader, apiURL string) (*benchSettle, error) {
	start := time.Now()
	st := &benchSettle{}
	var open []string
	for {
		var err error
		if open, err = b.stillOpen(ctx, store, open); err != nil {
			return nil, err
		}
		st.open, st.took = len(open), time.Since(start)
		if st.open == 0 || st.took >= benchSettleWait || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	err := b.awaitMetrics(ctx, store, apiURL, st)
	return st, errors.Join(err, ctx.Err())
}

// awaitMetrics reads into st how many crossing→credit times /metrics
// counted. The histogram hears of a credit just after its transaction
// commits: the last one is given a moment to be counted.
func (b *bench) awaitMetrics(ctx context.Context, store topUpReader, apiURL string, st *benchSettle) error {
	tus, err := b.allTopUps(ctx, store)
	if err != nil {
		return err
	}
	credited := 0
	for _, t := range tus {
		if t.Trigger != topup.TriggerManual && t.Status == topup.Succeeded {
			credited++
		}
	}
	for deadline := time.Now().Add(time.Second); ; {
		if err := b.scrape(ctx, apiURL, map[string]*float64{"topup_crossing_to_credit_seconds_count": &st.metrics}); err != nil {
			return err
		}
		if int(st.metrics) >= credited || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stillOpen returns which of the automatic top-ups open are open still,
// reading each again; when none is (or none was known), it looks at every
// account once more, since a settled top-up may have been followed by
// another.
func (b *bench) stillOpen(ctx context.Context, store topUpReader, open []string) ([]string, error) {
	var still []string
	for _, id := range open {
		t, err := store.TopUpByID(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("bench: read top-up %s: %w", id, err)
		}
		if t.Status.Open() {
			still = append(still, id)
		}
	}
	if len(still) > 0 {
		return still, nil
	}
	tus, err := b.allTopUps(ctx, store)
	for _, t := range tus {
		if t.Trigger != topup.TriggerManual && t.Status.Open() {
			still = append(still, t.ID)
		}
	}
	return still, err
}

// allTopUps reads every top-up of the bench's accounts.
func (b *bench) allTopUps(ctx context.Context, store topUpReader) ([]topup.TopUp, error) {
	var out []topup.TopUp
	for _, acct := range b.accounts {
		for p := (ledger.Page{Limit: readPage}); ; {
			page, more, err := store.TopUps(ctx, acct, p)
			if err != nil {
				return nil, fmt.Errorf("bench: read top-ups of %s: %w", acct, err)
			}
			out = append(out, page...)
			if !more || len(page) == 0 {
				break
			}
			p.StartingAfter = page[len(page)-1].ID
		}
	}
	return out, nil
}

// benchTopUp is a top-up as the checks read it, times in Unix
// microseconds (completed 0 while open).
type benchTopUp struct {
	id, account, status, trigger string
	amount                       money.Amount // 0 until fixed
	crossed, created, completed  int64
}

// benchCharge is a sandbox charge made for a top-up.
type benchCharge struct {
	id, topUp, status string
	amount            money.Amount
}

// benchTopUps is what the bench's accounts left in top_ups, in the
// ledger's top-up credits and in the sandbox's charge log.
type benchTopUps struct {
	topUps  []benchTopUp             // automatic ones, by account then creation
	manual  int                      // manual top-ups (the bench makes none)
	credits map[string]money.Amount  // top-up credits in the ledger, per account
	entries map[string]money.Amount  // the same, per top-up
	charges map[string][]benchCharge // sandbox charges, per top-up
}

// loadTopUps reads what the bench's accounts left: their top-ups, the
// top-up credits in their ledgers and the sandbox's charges for them.
func (b *bench) loadTopUps(ctx context.Context, store topUpReader) (*benchTopUps, error) {
	out := &benchTopUps{credits: map[string]money.Amount{}, entries: map[string]money.Amount{}, charges: map[string][]benchCharge{}}
	tus, err := b.allTopUps(ctx, store)
	if err != nil {
		return nil, err
	}
	for _, t := range tus {
		if t.Trigger == topup.TriggerManual {
			out.manual++
			continue
		}
		bt := benchTopUp{id: t.ID, account: t.AccountID, status: string(t.Status), trigger: string(t.Trigger),
			crossed: micros(t.CrossedAt), created: micros(t.CreatedAt), completed: micros(t.CompletedAt)}
		if t.Amount != nil {
			bt.amount = *t.Amount
		}
		out.topUps = append(out.topUps, bt)
	}
	slices.SortFunc(out.topUps, func(x, y benchTopUp) int {
		if c := strings.Compare(x.account, y.account); c != 0 {
			return c
		}
		if c := cmp.Compare(x.created, y.created); c != 0 {
			return c
		}
		return strings.Compare(x.id, y.id)
	})
	if err := b.loadCredits(ctx, store, out); err != nil {
		return nil, err
	}
	return out, b.loadCharges(ctx, store, out)
}

// micros is t in Unix microseconds, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// loadCredits reads the top-up credits in the bench's accounts' ledgers,
// per account and per top-up.
func (b *bench) loadCredits(ctx context.Context, store topUpReader, out *benchTopUps) error {
	for _, acct := range b.accounts {
		for p := (ledger.Page{Limit: readPage}); ; {
			page, more, err := store.Entries(ctx, acct, p)
			if err != nil {
				return fmt.Errorf("bench: read the ledger of %s: %w", acct, err)
			}
			for _, e := range page {
				if e.TopUpID != "" {
					out.credits[acct] += e.Amount
					out.entries[e.TopUpID] += e.Amount
				}
			}
			if !more || len(page) == 0 {
				break
			}
			p.StartingAfter = page[len(page)-1].ID
		}
	}
	return nil
}

// loadCharges reads the sandbox's charges for the bench's automatic
// top-ups. The sandbox, as a card network, counts in the currency's minor
// units.
func (b *bench) loadCharges(ctx context.Context, store topUpReader, out *benchTopUps) error {
	for _, t := range out.topUps {
		cs, err := store.SandboxChargesForTopUp(ctx, "", t.id)
		if err != nil {
			return fmt.Errorf("bench: read sandbox charges of %s: %w", t.id, err)
		}
		for _, c := range cs {
			cur, err := money.LookupCurrency(c.Currency)
			var amount money.Amount
			if err == nil {
				amount, err = money.FromMinor(c.Amount, cur)
			}
			if err != nil {
				return fmt.Errorf("bench: sandbox charge %s of %d %s: %w", c.ID, c.Amount, c.Currency, err)
			}
			out.charges[t.id] = append(out.charges[t.id], benchCharge{id: c.ID, topUp: t.id, status: string(c.Status), amount: amount})
		}
	}
	return nil
}

// reportTopUps prints how many automatic top-ups the run made and the time
// from crossing to credit of the succeeded threshold ones
// (completed_at - crossed_at), overall and by the phase in which the
// balance crossed.
func (b *bench) reportTopUps(tu *benchTopUps, results []*benchPhase) {
	status := map[string]int{}
	accounts := map[string]bool{}
	var credited, largest money.Amount
	var all []time.Duration
	var phases []*benchPhase
	for _, r := range results {
		if r.name != "trivial" {
			phases = append(phases, r)
		}
	}
	byPhase := make([][]time.Duration, len(phases))
	for _, t := range tu.topUps {
		status[t.status]++
		accounts[t.account] = true
		if t.status != "succeeded" {
			continue
		}
		credited += t.amount
		largest = max(largest, t.amount)
		if t.trigger != "threshold" {
			continue
		}
		d := time.Duration(t.completed-t.crossed) * time.Microsecond
		all = append(all, d)
		crossed := time.UnixMicro(t.crossed)
		for i := len(phases) - 1; i >= 0; i-- {
			if !crossed.Before(phases[i].start) {
				byPhase[i] = append(byPhase[i], d)
				break
			}
		}
	}
	open := status["pending"] + status["processing"] + status["requires_action"]
	mean := 0.0
	if n := status["succeeded"]; n > 0 {
		mean = float64(credited) / float64(n) / money.MicrosPerUnit
	}
	fmt.Fprintf(b.out, "\nautomatic top-ups: %s (%s succeeded, %s failed, %s canceled, %s open) on %d of %d accounts; %s credited (mean %.2f, largest %s)\n",
		progress.Commas(int64(len(tu.topUps))), progress.Commas(int64(status["succeeded"])), progress.Commas(int64(status["failed"])),
		progress.Commas(int64(status["canceled"])), progress.Commas(int64(open)), len(accounts), len(b.accounts), credited, mean, largest)
	if st := b.settle; st != nil {
		if st.open == 0 {
			fmt.Fprintf(b.out, "settled: no automatic top-up open %s after the last phase\n", benchSpan(st.took))
		} else {
			fmt.Fprintf(b.out, "settled: WARNING %d automatic top-ups still open %s after the last phase (their crossing→credit times are missing below)\n", st.open, benchSpan(st.took))
		}
	}
	line := "crossing→credit (succeeded threshold top-ups, completed_at - crossed_at): " + benchDurations(all)
	if st := b.settle; st != nil {
		line += fmt.Sprintf("; /metrics topup_crossing_to_credit_seconds counted %s", progress.Commas(int64(st.metrics)))
	}
	fmt.Fprintln(b.out, line)
	for i, r := range phases {
		fmt.Fprintf(b.out, "  crossed during %s: %s\n", r.name, benchDurations(byPhase[i]))
	}
}

// benchDurations is "p50 …, p99 …, max … (n=…)" of ds.
func benchDurations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none (n=0)"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n=%s)", benchSpan(at(0.50)), benchSpan(at(0.99)), benchSpan(ds[len(ds)-1]), progress.Commas(int64(len(ds))))
}

// checkTopUps proves what the top-ups left: no account ever had two open
// automatic top-ups (each was created at or after the previous one of its
// account closed, both stamped inside their serialized transactions), every
// succeeded top-up was charged once and credited once with its amount, no
// other top-up was charged or credited, and the sandbox's succeeded charges
// add up to the ledger's top-up credits.
func (b *bench) checkTopUps(tu *benchTopUps) []string {
	var failed []string
	problems := 0
	broken := func(format string, args ...any) {
		if problems < 2*benchMaxSamples {
			fmt.Fprintf(b.out, "BROKEN "+format+"\n", args...)
		}
		problems++
	}
	overlaps := 0
	for i := 1; i < len(tu.topUps); i++ {
		prev, t := tu.topUps[i-1], tu.topUps[i]
		if prev.account == t.account && (prev.completed == 0 || t.created < prev.completed) {
			broken("%s: automatic top-up %s created while %s was open", t.account, t.id, prev.id)
			overlaps++
		}
	}
	var charged, creditsTotal, succeededTotal money.Amount
	var charges int
	for _, t := range tu.topUps {
		var ok []benchCharge
		for _, c := range tu.charges[t.id] {
			if c.status == "succeeded" {
				ok = append(ok, c)
				charged += c.amount
				charges++
			}
		}
		credit, credited := tu.entries[t.id]
		switch {
		case t.status == "succeeded":
			succeededTotal += t.amount
			if len(ok) != 1 || ok[0].amount != t.amount {
				broken("%s: top-up %s of %s succeeded with %d succeeded sandbox charges %v", t.account, t.id, t.amount, len(ok), ok)
			}
			if !credited || credit != t.amount {
				broken("%s: top-up %s of %s succeeded but the ledger credits %s for it", t.account, t.id, t.amount, credit)
			}
		case len(ok) > 0 || credited:
			broken("%s: top-up %s is %s but has %d succeeded sandbox charges and %s of credits", t.account, t.id, t.status, len(ok), credit)
		}
	}
	for _, c := range tu.credits {
		creditsTotal += c
	}
	if tu.manual > 0 {
		broken("%d manual top-ups on bench accounts (the bench makes none)", tu.manual)
	}
	if charged != creditsTotal || creditsTotal != succeededTotal {
		broken("the sandbox's succeeded charges add up to %s, the ledger's top-up credits to %s, the succeeded top-ups to %s", charged, creditsTotal, succeededTotal)
	}
	if problems > 0 {
		return append(failed, fmt.Sprintf("top-ups: %d problems (%d overlapping open automatic top-ups)", problems, overlaps))
	}
	fmt.Fprintf(b.out, "top-ups: never two open automatic top-ups on one account (each of %s created at or after the previous one of its account closed); "+
		"%s succeeded sandbox charges add up to %s = the top-up credits in the ledger, one per succeeded top-up and of its amount\n",
		progress.Commas(int64(len(tu.topUps))), progress.Commas(int64(charges)), charged)
	return nil
}
