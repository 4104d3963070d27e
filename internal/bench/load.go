package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/topup/topup/client"
	"github.com/topup/topup/internal/progress"
)

type benchPhase struct {
	name string
	// grants is how many grants each account of the phase has, when the
	// run compares two sets (--baseline-grants); 0 otherwise.
	grants   int
	clients  string
	start    time.Time
	requests int64
	debits   int64 // events answered as recorded (for trivial: 201s)
	errors   int64
	samples  []string
	elapsed  time.Duration
	lat      []time.Duration // sorted
	commits  *benchCommits   // the committer's work during the phase; nil for trivial
	// read marks a read phase: debits counts its answered requests, bytes
	// the bytes of their answers.
	read  bool
	bytes int64
}

func (r *benchPhase) rate() float64 { return float64(r.debits) / r.elapsed.Seconds() }

// pct returns the q-quantile of the sorted latencies (nearest rank).
func (r *benchPhase) pct(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(r.lat)))) - 1
	return r.lat[max(0, min(i, len(r.lat)-1))]
}

func (b *bench) phases(ctx context.Context, apiURL string) (results []*benchPhase, err error) {
	if b.cfg.cpuProfile != "" {
		f, ferr := os.Create(b.cfg.cpuProfile)
		if ferr != nil {
			return nil, fmt.Errorf("bench: %w", ferr)
		}
		if perr := pprof.StartCPUProfile(f); perr != nil {
			f.Close()
			return nil, fmt.Errorf("bench: cpu profile: %w", perr)
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	for _, name := range Phases {
		if !b.cfg.phases[name] {
			continue
		}
		runtime.GC()
		var r *benchPhase
		done := b.showPhase(name)
		switch name {
		case "trivial":
			r, err = b.trivialPhase(ctx)
		case "read":
			var rs []*benchPhase
			rs, err = b.readPhases(ctx, apiURL)
			results = append(results, rs...)
		default:
			var rs []*benchPhase
			rs, err = b.debitPhases(ctx, apiURL, name)
			results = append(results, rs...)
		}
		done()
		if err != nil {
			return results, err
		}
		if r != nil {
			results = append(results, r)
		}
		if ctx.Err() != nil {
			return results, fmt.Errorf("bench: interrupted: %w", ctx.Err())
		}
	}
	return results, nil
}

// debitPhases runs the single or batch phase. With --baseline-grants it
// runs it on both sets of accounts in the order A B B A, each for half the
// duration, and merges each set's halves: a load that drifts during the run
// (the machine's other work, the database growing) weighs on both alike.
func (b *bench) debitPhases(ctx context.Context, apiURL, name string) ([]*benchPhase, error) {
	run := func() *benchPhase {
		if name == "single" {
			return b.drive(ctx, "single", strconv.Itoa(b.cfg.clients), b.cfg.clients, 1, b.singleRequest())
		}
		return b.drive(ctx, "batch", fmt.Sprintf("%d×%d", b.cfg.batchClients, b.cfg.batchSize), b.cfg.batchClients, 1000, b.batchRequest())
	}
	if b.cfg.baselineGrants == 0 {
		r, err := b.measured(ctx, apiURL, run)
		return []*benchPhase{r}, err
	}
	defer func(d time.Duration) { b.cfg.duration, b.offset, b.pass = d, 0, 0 }(b.cfg.duration)
	b.cfg.duration /= 2
	sets := map[int]*benchPhase{}
	for i, offset := range []int{0, b.cfg.accounts, b.cfg.accounts, 0} {
		b.offset, b.pass = offset, i
		r, err := b.measured(ctx, apiURL, run)
		if err != nil {
			return nil, err
		}
		sets[offset] = sets[offset].merge(r)
		if ctx.Err() != nil {
			break
		}
	}
	main, base := sets[0], sets[b.cfg.accounts]
	main.grants, base.grants = b.cfg.grants, b.cfg.baselineGrants
	return []*benchPhase{main, base}, nil
}

// merge adds o, a later run of the same phase, to r (nil: o alone).
func (r *benchPhase) merge(o *benchPhase) *benchPhase {
	if r == nil || o == nil {
		return cmp.Or(r, o)
	}
	r.requests += o.requests
	r.debits += o.debits
	r.errors += o.errors
	r.elapsed += o.elapsed
	r.samples = append(r.samples, o.samples...)[:min(len(r.samples)+len(o.samples), benchMaxSamples)]
	r.lat = append(r.lat, o.lat...)
	slices.Sort(r.lat)
	if r.commits != nil && o.commits != nil {
		r.commits.groups += o.commits.groups
		r.commits.postings += o.commits.postings
		r.commits.seconds += o.commits.seconds
	}
	return r
}

// showPhase draws, on a terminal, how much of a phase's duration has gone;
// the returned function clears it. Off a terminal it draws nothing.
func (b *bench) showPhase(name string) (done func()) {
	bar := progress.New(b.stderr, int64(b.cfg.duration/time.Millisecond), name+" (ms)")
	if bar == nil {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				bar.Finish()
				return
			case <-tick.C:
				bar.Set(int64(min(time.Since(start), b.cfg.duration) / time.Millisecond))
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
	}
}

// benchCommits are the committer's totals as /metrics shows them: group
// commits, the postings they held and the seconds they took.
type benchCommits struct {
	groups, postings, seconds float64
}

// measured runs a phase against Topup and attaches what the committer did
// meanwhile, read from /metrics before and after: it tells whether the
// single writer was busy all along (the database bounds the rate) or idle
// (HTTP and the handlers do).
func (b *bench) measured(ctx context.Context, apiURL string, phase func() *benchPhase) (*benchPhase, error) {
	before, err := b.commitTotals(ctx, apiURL)
	if err != nil {
		return nil, err
	}
	r := phase()
	after, err := b.commitTotals(ctx, apiURL)
	if err != nil {
		return r, err
	}
	r.commits = &benchCommits{groups: after.groups - before.groups, postings: after.postings - before.postings, seconds: after.seconds - before.seconds}
	return r, nil
}

// commitTotals reads the group-commit histograms' sums and counts from the
// instance's /metrics.
func (b *bench) commitTotals(ctx context.Context, apiURL string) (benchCommits, error) {
	var st benchCommits
	err := b.scrape(ctx, apiURL, map[string]*float64{
		"topup_commit_group_postings_count":       &st.groups,
		"topup_commit_group_postings_sum":         &st.postings,
		"topup_commit_group_duration_seconds_sum": &st.seconds,
	})
	return st, err
}

// scrape reads the instance's /metrics (Prometheus text format) into the
// fields named, each a whole sample name with its labels as the text spells
// them.
func (b *bench) scrape(ctx context.Context, apiURL string, fields map[string]*float64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/metrics", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", b.auth) // /metrics needs the admin key
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("bench: read /metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if dst := fields[name]; ok && dst != nil {
			if *dst, err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
				return fmt.Errorf("bench: /metrics: %s: %w", name, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("bench: read /metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: /metrics answered %d", resp.StatusCode)
	}
	return nil
}

// benchClient is one simulated caller: its own random source and Zipf
// choice of account, its own key sequence, its own latencies.
type benchClient struct {
	id      int
	zipf    *mrand.Zipf
	offset  int // added to the Zipf draw: the phase's set of accounts
	pass    int // how many times the phase ran before, in its keys
	seq     int
	lat     []time.Duration
	bytes   int64 // of the answers read (the read phase)
	resp    bytes.Buffer
	errors  int64
	samples []string
}

func (c *benchClient) account() int { return c.offset + int(c.zipf.Uint64()) }

func (c *benchClient) fail(format string, args ...any) {
	c.errors++
	if len(c.samples) < benchMaxSamples {
		c.samples = append(c.samples, fmt.Sprintf(format, args...))
	}
}

// benchRequest sends one benchRequest and returns the debits it recorded; a refusal
// is reported through c.fail.
type benchRequest func(ctx context.Context, c *benchClient) int

// drive runs n clients, each sending requests back to back until the
// phase's time is up, and gathers what they measured. seedBase keeps the
// clients of different phases on different random streams.
func (b *bench) drive(ctx context.Context, name, label string, n int, seedBase uint64, do benchRequest) *benchPhase {
	clients := make([]*benchClient, n)
	imax := uint64(b.cfg.accounts - 1)
	for i := range clients {
		r := mrand.New(mrand.NewPCG(seedBase, uint64(i)))
		clients[i] = &benchClient{id: i, zipf: mrand.NewZipf(r, benchZipfS, 1, imax), offset: b.offset, pass: b.pass, lat: make([]time.Duration, 0, 4096)}
	}
	start := time.Now()
	deadline := start.Add(b.cfg.duration)
	var debits atomic.Int64
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				d := do(ctx, c)
				c.lat = append(c.lat, time.Since(t0))
				debits.Add(int64(d))
			}
		})
	}
	wg.Wait()
	res := &benchPhase{name: name, clients: label, start: start, elapsed: time.Since(start), debits: debits.Load()}
	total := 0
	for _, c := range clients {
		total += len(c.lat)
	}
	res.lat = make([]time.Duration, 0, total)
	for _, c := range clients {
		res.lat = append(res.lat, c.lat...)
		res.errors += c.errors
		res.bytes += c.bytes
		for _, s := range c.samples {
			if len(res.samples) < benchMaxSamples {
				res.samples = append(res.samples, s)
			}
		}
	}
	res.requests = int64(len(res.lat))
	slices.Sort(res.lat)
	return res
}

// key returns a fresh idempotency key, unique to this run, client and
// request.
func (b *bench) key(dst []byte, phase byte, c *benchClient) []byte {
	c.seq++
	dst = append(dst, b.runID...)
	dst = append(dst, '-', phase)
	if c.pass > 0 {
		// A phase run again (--baseline-grants) repeats its clients' seeds.
		dst = strconv.AppendInt(dst, int64(c.pass), 10)
		dst = append(dst, '.')
	}
	dst = strconv.AppendInt(dst, int64(c.id), 10)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, int64(c.seq), 10)
}

// post sends body and reads the whole answer into c.resp. The body is a
// fresh slice per request: the transport may still hold the previous one
// after the answer arrives, so reusing its bytes would race.
func (b *bench) post(ctx context.Context, c *benchClient, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", b.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	c.resp.Reset()
	_, err = c.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// trivialRequest posts one usage event to the trivial handler at base, by
// hand: that phase measures HTTP itself, with no client library between.
func (b *bench) trivialRequest(base string) benchRequest {
	return func(ctx context.Context, c *benchClient) int {
		acct := c.account()
		body := make([]byte, 0, 96)
		body = append(body, `{"amount":"`...)
		body = append(body, b.cfg.amountText...)
		body = append(body, `","idempotency_key":"`...)
		body = b.key(body, 's', c)
		body = append(body, `"}`...)
		status, err := b.post(ctx, c, base+b.paths[acct], body)
		switch {
		case err != nil:
			c.fail("POST %s: %v", b.paths[acct], err)
			return 0
		case status != http.StatusCreated:
			c.fail("POST %s: %d %s", b.paths[acct], status, benchClip(c.resp.Bytes()))
			return 0
		}
		return 1
	}
}

// singleRequest records one usage event through the client, as an
// operator's metering pipeline would.
func (b *bench) singleRequest() benchRequest {
	amount := client.Money(b.cfg.amountText)
	return func(ctx context.Context, c *benchClient) int {
		acct := c.account()
		key := string(b.key(make([]byte, 0, 32), 's', c))
		res, err := b.api.RecordUsage(ctx, b.accounts[acct], client.UsageParams{Amount: amount, IdempotencyKey: key})
		switch {
		case err != nil:
			c.fail("POST %s: %v", b.paths[acct], err)
			return 0
		case res.Replayed:
			c.fail("POST %s: a fresh key was replayed", b.paths[acct])
			return 0
		}
		b.accepted[acct].Add(1)
		return 1
	}
}

// batchRequest records batch-size events over Zipf-chosen accounts through
// the client's batch call and returns how many were recorded.
func (b *bench) batchRequest() benchRequest {
	amount := client.Money(b.cfg.amountText)
	return func(ctx context.Context, c *benchClient) int {
		n := b.cfg.batchSize
		accts := make([]int, n)
		events := make([]client.BatchEvent, n)
		for i := range accts {
			accts[i] = c.account()
			events[i] = client.BatchEvent{AccountID: b.accounts[accts[i]], Amount: amount, IdempotencyKey: string(b.key(make([]byte, 0, 32), 'b', c))}
		}
		out, err := b.api.RecordUsageBatch(ctx, events)
		switch {
		case err != nil:
			c.fail("POST /v1/usage/batch: %v", err)
			return 0
		case len(out.Results) != n:
			c.fail("POST /v1/usage/batch: %d results for %d events", len(out.Results), n)
			return 0
		}
		recorded := 0
		for i, r := range out.Results {
			switch {
			case r.Error != nil:
				c.fail("POST /v1/usage/batch: events[%d]: %v", i, r.Error)
			case r.Replayed:
				c.fail("POST /v1/usage/batch: events[%d] replayed a fresh key", i)
			default:
				b.accepted[accts[i]].Add(1)
				recorded++
			}
		}
		return recorded
	}
}

func benchClip(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// benchTrivialEvent has the fields of a usage event, as the API reads them.
type benchTrivialEvent struct {
	Amount         *string `json:"amount"`
	IdempotencyKey *string `json:"idempotency_key"`
	Description    *string `json:"description"`
	Subject        *string `json:"subject"`
}

// benchTrivialAnswer is about the size and shape of a real debit's answer.
var benchTrivialAnswer = []byte(`{"entry_id":"ent_01JZ0000000000000000000000","balance":"999999.875","currency":"usd","spendable":true,"created_at":"2026-01-01T00:00:00.000000Z"}` + "\n")

// trivialPhase serves a handler that only decodes the usage JSON and
// answers 201, and drives it exactly as the single phase drives Topup: what
// it reaches is the most any handler could on this machine.
func (b *bench) trivialPhase(ctx context.Context) (*benchPhase, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/accounts/{id}/usage", func(w http.ResponseWriter, r *http.Request) {
		var ev benchTrivialEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Amount == nil || ev.IdempotencyKey == nil {
			http.Error(w, `{"error":{"code":"invalid","message":"bad body"}}`, http.StatusBadRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(benchTrivialAnswer)))
		w.WriteHeader(http.StatusCreated)
		w.Write(benchTrivialAnswer)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: trivial handler: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	r := b.drive(ctx, "trivial", strconv.Itoa(b.cfg.clients), b.cfg.clients, 1, b.trivialRequest("http://"+ln.Addr().String()))
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return r, fmt.Errorf("bench: trivial handler: %w", err)
	}
	return r, nil
}
