package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/sqlstore"
)

// The bench debits every event by the same amount (--amount, small by
// default), and grants each account enough that no balance nears zero
// however long the run. With --auto-top-up the grant is small instead and
// every account has a sandbox card and Automatic Top-Up, so that the load
// crosses the threshold again and again.
const (
	benchAmount     = "0.000125"
	benchGrant      = money.Amount(1_000_000 * money.MicrosPerUnit)
	benchZipfS      = 1.1
	benchMaxSamples = 5 // error bodies kept per phase

	benchAutoGrant     = money.Amount(10 * money.MicrosPerUnit)
	benchAutoThreshold = "5.00"
	benchAutoTarget    = "10.00"
	benchAutoCard      = "pm_card_visa"
	// benchSettleWait bounds the wait, after the last phase, for the
	// top-ups still open to settle before the instance shuts down.
	benchSettleWait = 30 * time.Second
)

// benchPhases are the phases in the order they run: the trivial handler
// first, so that the figures after it can be read as ratios to it.
var benchPhases = []string{"trivial", "single", "batch"}

// benchTargets are the rates the issue asks of each database: single-event
// debits as a share of the trivial handler's rate, and batched debits/s.
var benchTargets = map[string]struct {
	singleShare float64
	batchRate   float64
}{
	"sqlite":   {0.50, 200_000},
	"postgres": {0.40, 100_000},
}

// benchConfig is a `topup bench` command line.
type benchConfig struct {
	db           string
	accounts     int
	clients      int
	duration     time.Duration
	batchSize    int
	batchClients int
	phases       map[string]bool
	cpuProfile   string
	// alertsBudgets gives every account five low balance alerts and a
	// monthly account-wide budget, so that every debit is watched.
	alertsBudgets bool
	// amount is what every usage event debits; amountText is how the
	// requests spell it.
	amount     money.Amount
	amountText string
	// autoTopUp gives every account a sandbox card and Automatic Top-Up
	// (threshold benchAutoThreshold, target benchAutoTarget) over a grant
	// of benchAutoGrant; sandboxLatency is how long each sandbox charge
	// takes (TOPUP_SANDBOX_LATENCY).
	autoTopUp      bool
	sandboxLatency time.Duration
}

// cmdBench measures a whole in-process Topup over HTTP: debits/s and
// latency of single and batched usage, next to a trivial net/http handler
// that decodes the same JSON, which is this machine's HTTP ceiling.
func cmdBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, out: stdout, runID: newBenchRunID()}
	if cfg.db == "" {
		dir, err := os.MkdirTemp("", "topup-bench-")
		if err != nil {
			return fmt.Errorf("bench: temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.db = "sqlite:" + filepath.Join(dir, "bench.db")
		b.dbLabel = "sqlite (fresh temp file)"
	} else {
		b.dbLabel = redactDB(cfg.db)
	}
	b.cfg = cfg
	return b.run(ctx, stderr)
}

func parseBenchFlags(args []string, stderr io.Writer) (benchConfig, error) {
	fs := newFlags("bench", stderr)
	db := dbFlag(fs, "")
	accounts := fs.Int("accounts", 1000, "accounts to spread usage over (Zipf s=1.1)")
	clients := fs.Int("clients", 64, "concurrent HTTP clients for the trivial and single phases")
	duration := fs.Duration("duration", 10*time.Second, "how long each phase runs")
	batchSize := fs.Int("batch-size", 1000, "events per batch request")
	batchClients := fs.Int("batch-clients", 4, "concurrent HTTP clients for the batch phase")
	phases := fs.String("phases", strings.Join(benchPhases, ","), "comma-separated phases to run: trivial, single, batch")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the phases (server and clients) to this file")
	alertsBudgets := fs.Bool("alerts-budgets", false, "give every account five low balance alerts and a monthly account-wide budget (measures their cost on the debit path)")
	amount := fs.String("amount", benchAmount, "the amount every usage event debits (with --auto-top-up, e.g. 0.05 so that hot accounts cross the threshold every ~100 debits)")
	autoTopUp := fs.Bool("auto-top-up", false, "give every account a sandbox card ("+benchAutoCard+") and Automatic Top-Up (threshold "+benchAutoThreshold+
		", target "+benchAutoTarget+") over a grant of "+benchAutoGrant.String()+", and report the top-ups and the time from crossing to credit")
	sandboxLatency := fs.Duration("sandbox-latency", 0, "how long each sandbox charge takes (as TOPUP_SANDBOX_LATENCY); needs --auto-top-up")
	if err := fs.Parse(args); err != nil {
		return benchConfig{}, err
	}
	if fs.NArg() > 0 {
		return benchConfig{}, fmt.Errorf("%w: bench takes no arguments, got %q", errUsage, fs.Args())
	}
	cfg := benchConfig{db: *db, accounts: *accounts, clients: *clients, duration: *duration, batchSize: *batchSize,
		batchClients: *batchClients, phases: map[string]bool{}, cpuProfile: *cpuProfile, alertsBudgets: *alertsBudgets,
		amountText: *amount, autoTopUp: *autoTopUp, sandboxLatency: *sandboxLatency}
	amt, amtErr := money.Parse(*amount)
	cfg.amount = amt
	switch {
	case amtErr != nil || amt <= 0:
		return cfg, fmt.Errorf("%w: --amount must be a positive amount such as 0.05, not %q", errUsage, *amount)
	case cfg.sandboxLatency < 0:
		return cfg, fmt.Errorf("%w: --sandbox-latency must not be negative", errUsage)
	case cfg.sandboxLatency > 0 && !cfg.autoTopUp:
		return cfg, fmt.Errorf("%w: --sandbox-latency only matters with --auto-top-up", errUsage)
	case cfg.accounts < 1:
		return cfg, fmt.Errorf("%w: --accounts must be at least 1", errUsage)
	case cfg.clients < 1 || cfg.batchClients < 1:
		return cfg, fmt.Errorf("%w: --clients and --batch-clients must be at least 1", errUsage)
	case cfg.duration <= 0:
		return cfg, fmt.Errorf("%w: --duration must be above zero", errUsage)
	case cfg.batchSize < 1 || cfg.batchSize > 10_000:
		return cfg, fmt.Errorf("%w: --batch-size must be from 1 to 10000", errUsage)
	}
	for _, p := range strings.Split(*phases, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(benchPhases, p) {
			return cfg, fmt.Errorf("%w: --phases: unknown phase %q (want a list of %s)", errUsage, p, strings.Join(benchPhases, ", "))
		}
		cfg.phases[p] = true
	}
	return cfg, nil
}

// bench is one run of `topup bench`.
type bench struct {
	cfg      benchConfig
	out      io.Writer
	dbLabel  string
	runID    string
	adminKey string
	auth     string
	accounts []string       // account ids; index 0 is the hottest under Zipf
	paths    []string       // "/v1/accounts/{id}/usage" per account
	accepted []atomic.Int64 // debits answered as recorded, per account
	client   *http.Client
	grant    money.Amount // each account's opening credit
	// With --auto-top-up: how the wait for open top-ups ended, and what
	// /metrics counted meanwhile.
	settle *benchSettle
}

// benchSettle is the wait, after the last phase, for open top-ups to settle.
type benchSettle struct {
	took    time.Duration
	open    int     // automatic top-ups still open when the wait ended
	metrics float64 // topup_crossing_to_credit_seconds_count at the end
}

func newBenchRunID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// run sets up the accounts, serves Topup on a free port, runs the phases,
// shuts Topup down and checks what it left in the database.
func (b *bench) run(ctx context.Context, stderr io.Writer) error {
	cfg := b.cfg
	log := newLogger(stderr, slog.LevelWarn)
	b.adminKey = ledger.NewKey(ledger.AdminKeyPrefix)
	b.auth = "Bearer " + b.adminKey

	g := ids.New(clock.System)
	store, err := openStore(ctx, cfg.db, clock.System, g)
	if err != nil {
		return err
	}
	dialect := store.DialectName()
	start := time.Now()
	b.grant = benchGrant
	if cfg.autoTopUp {
		b.grant = benchAutoGrant
	}
	if err := b.setupAccounts(ctx, store, g); err != nil {
		store.Close()
		return err
	}
	watch := "off"
	if cfg.alertsBudgets {
		watch = "on (5 low balance alerts and a monthly account-wide budget per account)"
	}
	setupTook := time.Since(start)

	// The bench's instance is the sandbox's, with the charge latency asked
	// for; the other settings are startInstance's defaults.
	set := settings{payments: "sandbox", sandboxLatency: cfg.sandboxLatency, retryBackoff: time.Hour, maxTarget: 10_000 * money.MicrosPerUnit}
	in, err := startInstance(ctx, instanceConfig{Addr: "127.0.0.1:0", DB: cfg.db, AdminKeyHash: ledger.HashKey(b.adminKey), Logger: log, Settings: set}, store)
	if err != nil {
		store.Close()
		return err
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.clients + cfg.batchClients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	b.client = &http.Client{Transport: transport, Timeout: time.Minute}

	auto := "off"
	if cfg.autoTopUp {
		t0 := time.Now()
		if err := b.setupAutoTopUp(ctx, in.URL()); err != nil {
			transport.CloseIdleConnections()
			return errors.Join(err, in.shutdown())
		}
		auto = fmt.Sprintf("on (every account: grant %s, card %s, threshold %s, target %s; sandbox latency %s; set up over HTTP in %s)",
			b.grant, benchAutoCard, benchAutoThreshold, benchAutoTarget, cfg.sandboxLatency, time.Since(t0).Round(time.Millisecond))
	}
	fmt.Fprintf(b.out, "topup bench: %s, %d accounts (Zipf s=%.1f), %s per phase, GOMAXPROCS %d; usage amount %s; alerts and budgets %s; Automatic Top-Up %s; accounts created and credited in %s\n\n",
		b.dbLabel, cfg.accounts, benchZipfS, cfg.duration, runtime.GOMAXPROCS(0), cfg.amountText, watch, auto, setupTook.Round(time.Millisecond))

	results, runErr := b.phases(ctx, in.URL())
	if cfg.autoTopUp && runErr == nil {
		b.settle, runErr = b.awaitTopUps(ctx, in.store, in.URL())
	}
	transport.CloseIdleConnections()
	if err := in.shutdown(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("bench: shut down: %w", err))
	}
	if len(results) > 0 {
		b.printTable(results, dialect)
	}
	if runErr != nil {
		return runErr
	}
	return b.check(ctx, results)
}

// setupAccounts creates the accounts through the store, a few at a time,
// and grants each benchGrant in batches of postings.
func (b *bench) setupAccounts(ctx context.Context, store *sqlstore.Store, g *ids.Generator) error {
	m := b.cfg.accounts
	b.accounts = make([]string, m)
	b.paths = make([]string, m)
	b.accepted = make([]atomic.Int64, m)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= m || ctx.Err() != nil {
					return
				}
				email := fmt.Sprintf("bench-%s-%d@example.com", b.runID, i)
				a, _, err := ledger.NewAccount(ctx, store, g, clock.System, email, "usd")
				if err != nil {
					errs[w] = fmt.Errorf("bench: create account %d: %w", i, err)
					return
				}
				b.accounts[i] = a.ID
				b.paths[i] = "/v1/accounts/" + a.ID + "/usage"
				if b.cfg.alertsBudgets {
					if err := benchWatch(ctx, store, a.ID); err != nil {
						errs[w] = fmt.Errorf("bench: alerts and budget of account %d: %w", i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return err
	}
	const chunk = 1000
	for start := 0; start < m; start += chunk {
		grants := make([]ledger.Posting, 0, chunk)
		for _, id := range b.accounts[start:min(start+chunk, m)] {
			grants = append(grants, ledger.Posting{AccountID: id, Kind: ledger.KindCredit, Amount: b.grant,
				Description: "bench grant", IdempotencyKey: "bench-grant-" + b.runID, Call: ledger.ScopeCredit})
		}
		res, err := store.Post(ctx, grants)
		if err != nil {
			return fmt.Errorf("bench: credit accounts: %w", err)
		}
		for i, r := range res {
			if r.Err != nil || r.Replayed {
				return fmt.Errorf("bench: credit %s: replayed=%v err=%v", grants[i].AccountID, r.Replayed, r.Err)
			}
		}
	}
	return nil
}

// benchWatch gives an account five low balance alerts and a monthly
// account-wide budget that the bench's debits never exhaust: every debit
// then loads, checks and writes back the account's watch.
func benchWatch(ctx context.Context, store *sqlstore.Store, accountID string) error {
	var ts []money.Amount
	for _, t := range []int64{10, 50, 100, 500, 1000} {
		ts = append(ts, money.Amount(t*money.MicrosPerUnit))
	}
	if _, err := store.SetLowBalanceAlerts(ctx, accountID, ts); err != nil {
		return err
	}
	kind, limit := string(alert.Monthly), benchGrant
	_, err := store.CreateBudget(ctx, accountID, alert.BudgetInput{Kind: &kind, Limit: &limit})
	return err
}

// benchPhase is what one phase measured.
type benchPhase struct {
	name     string
	clients  string
	start    time.Time
	requests int64
	debits   int64 // events answered as recorded (for trivial: 201s)
	errors   int64
	samples  []string
	elapsed  time.Duration
	lat      []time.Duration // sorted
	commits  *benchCommits   // the committer's work during the phase; nil for trivial
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
	for _, name := range benchPhases {
		if !b.cfg.phases[name] {
			continue
		}
		runtime.GC()
		var r *benchPhase
		switch name {
		case "trivial":
			r, err = b.trivialPhase(ctx)
		case "single":
			r, err = b.measured(ctx, apiURL, func() *benchPhase {
				return b.drive(ctx, "single", strconv.Itoa(b.cfg.clients), b.cfg.clients, 1, b.singleRequest(apiURL, true))
			})
		case "batch":
			r, err = b.measured(ctx, apiURL, func() *benchPhase {
				return b.drive(ctx, "batch", fmt.Sprintf("%d×%d", b.cfg.batchClients, b.cfg.batchSize), b.cfg.batchClients, 1000, b.batchRequest(apiURL))
			})
		}
		if err != nil {
			return results, err
		}
		results = append(results, r)
		if ctx.Err() != nil {
			return results, fmt.Errorf("bench: interrupted: %w", ctx.Err())
		}
	}
	return results, nil
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
	seq     int
	lat     []time.Duration
	resp    bytes.Buffer
	errors  int64
	samples []string
}

func (c *benchClient) account() int { return int(c.zipf.Uint64()) }

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
		clients[i] = &benchClient{id: i, zipf: mrand.NewZipf(r, benchZipfS, 1, imax), lat: make([]time.Duration, 0, 4096)}
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

// singleRequest posts one usage event to base; count says whether accepted
// debits are tallied per account (not for the trivial handler).
func (b *bench) singleRequest(base string, count bool) benchRequest {
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
		if count {
			b.accepted[acct].Add(1)
		}
		return 1
	}
}

// batchRequest posts batch-size events over Zipf-chosen accounts to
// /v1/usage/batch and returns how many were recorded.
func (b *bench) batchRequest(base string) benchRequest {
	url := base + "/v1/usage/batch"
	return func(ctx context.Context, c *benchClient) int {
		n := b.cfg.batchSize
		accts := make([]int, n)
		body := make([]byte, 0, n*110+16)
		body = append(body, `{"events":[`...)
		for i := range accts {
			accts[i] = c.account()
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, `{"account_id":"`...)
			body = append(body, b.accounts[accts[i]]...)
			body = append(body, `","amount":"`...)
			body = append(body, b.cfg.amountText...)
			body = append(body, `","idempotency_key":"`...)
			body = b.key(body, 'b', c)
			body = append(body, `"}`...)
		}
		body = append(body, `]}`...)
		status, err := b.post(ctx, c, url, body)
		switch {
		case err != nil:
			c.fail("POST /v1/usage/batch: %v", err)
			return 0
		case status != http.StatusOK:
			c.fail("POST /v1/usage/batch: %d %s", status, benchClip(c.resp.Bytes()))
			return 0
		}
		// The answer is compact JSON: when every event says it was recorded
		// and none has an error, counting is enough; otherwise read it.
		resp := c.resp.Bytes()
		if bytes.Count(resp, []byte(`"replayed":false`)) == n && !bytes.Contains(resp, []byte(`"error"`)) {
			for _, a := range accts {
				b.accepted[a].Add(1)
			}
			return n
		}
		return b.batchOutcome(c, accts, resp)
	}
}

// batchOutcome reads a batch answer in which some event was not recorded.
func (b *bench) batchOutcome(c *benchClient, accts []int, resp []byte) int {
	var out struct {
		Results []struct {
			Replayed *bool          `json:"replayed"`
			Error    map[string]any `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || len(out.Results) != len(accts) {
		c.fail("POST /v1/usage/batch: unreadable answer (%v) %s", err, benchClip(resp))
		return 0
	}
	recorded := 0
	for i, r := range out.Results {
		switch {
		case r.Error != nil:
			c.fail("POST /v1/usage/batch: events[%d]: %v", i, r.Error)
		case r.Replayed == nil || *r.Replayed:
			c.fail("POST /v1/usage/batch: events[%d] replayed a fresh key", i)
		default:
			b.accepted[accts[i]].Add(1)
			recorded++
		}
	}
	return recorded
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
	r := b.drive(ctx, "trivial", strconv.Itoa(b.cfg.clients), b.cfg.clients, 1, b.singleRequest("http://"+ln.Addr().String(), false))
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return r, fmt.Errorf("bench: trivial handler: %w", err)
	}
	return r, nil
}

func (b *bench) printTable(results []*benchPhase, dialect string) {
	var trivial *benchPhase
	for _, r := range results {
		if r.name == "trivial" {
			trivial = r
		}
	}
	tw := tabwriter.NewWriter(b.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tclients\trequests\tdebits/s\tp50\tp99\tp99.9\terrors\tratio-to-trivial")
	for _, r := range results {
		ratio := "—"
		if r.name == "single" && trivial != nil && trivial.debits > 0 {
			ratio = fmt.Sprintf("rate %.0f%%, p99 %.1fx", 100*r.rate()/trivial.rate(), benchRatio(r.pct(0.99), trivial.pct(0.99)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s/s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.clients, benchCommas(r.requests), benchCommas(int64(r.rate())),
			benchLatency(r.pct(0.50)), benchLatency(r.pct(0.99)), benchLatency(r.pct(0.999)), benchCommas(r.errors), ratio)
	}
	tw.Flush()
	for _, r := range results {
		if c := r.commits; c != nil && c.groups > 0 {
			fmt.Fprintf(b.out, "%s: %s group commits, %.1f postings and %s each on average; committer busy %.0f%% of the phase\n",
				r.name, benchCommas(int64(c.groups)), c.postings/c.groups, benchLatency(time.Duration(c.seconds/c.groups*float64(time.Second))),
				100*c.seconds/r.elapsed.Seconds()/float64(b.committerWorkers(dialect)))
		}
	}
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
			verdicts = append(verdicts, fmt.Sprintf("batch ≥ %s/s: %s/s %s", benchCommas(int64(t.batchRate)), benchCommas(int64(r.rate())), benchVerdict(r.rate() >= t.batchRate)))
		}
	}
	if len(verdicts) > 0 {
		fmt.Fprintf(b.out, "targets (%s): %s\n", dialect, strings.Join(verdicts, "; "))
	}
}

// committerWorkers mirrors startInstance: one writer on SQLite, two
// commit loops on PostgreSQL.
func (b *bench) committerWorkers(dialect string) int {
	if dialect == "postgres" {
		return 2
	}
	return 1
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

	store, err := openStore(ctx, b.cfg.db, clock.System, ids.New(clock.System))
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

	var total int64
	wrong := 0
	for i, id := range b.accounts {
		a, err := store.Account(ctx, id)
		if err != nil {
			return errors.Join(fmt.Errorf("bench: read account %s: %w", id, err), benchFailed(failed))
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
		failed = append(failed, fmt.Sprintf("%d balances differ from the debits answered", wrong))
	} else if b.cfg.autoTopUp {
		fmt.Fprintf(b.out, "balances: each of %d accounts is its grant less exactly the %s debits answered as recorded, plus the credits of its succeeded top-ups\n", len(b.accounts), benchCommas(total))
	} else {
		fmt.Fprintf(b.out, "balances: each of %d accounts is its grant less exactly the %s debits answered as recorded\n", len(b.accounts), benchCommas(total))
	}
	if isPostgres(b.cfg.db) {
		fmt.Fprintf(b.out, "note: the %d bench accounts (bench-%s-N@example.com) and their entries stay in this database\n", len(b.accounts), b.runID)
	}
	return benchFailed(failed)
}

// setupAutoTopUp gives every account the sandbox card benchAutoCard and
// Automatic Top-Up, through the API as a customer would: attaching a card
// needs the instance's payment provider.
func (b *bench) setupAutoTopUp(ctx context.Context, apiURL string) error {
	settings := []byte(`{"enabled":true,"threshold":"` + benchAutoThreshold + `","target":"` + benchAutoTarget + `"}`)
	card := []byte(`{"payment_method":"` + benchAutoCard + `"}`)
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
				base := apiURL + "/v1/accounts/" + b.accounts[i]
				if err := b.call(ctx, http.MethodPost, base+"/payment_methods", card, http.StatusCreated); err != nil {
					errs[w] = fmt.Errorf("bench: attach a card to account %d: %w", i, err)
					return
				}
				if err := b.call(ctx, http.MethodPut, base+"/auto_top_up", settings, http.StatusOK); err != nil {
					errs[w] = fmt.Errorf("bench: Automatic Top-Up of account %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// call sends one admin request and wants the answer status want.
func (b *bench) call(ctx context.Context, method, url string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", b.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, benchClip(answer))
	}
	return nil
}

// benchOpen is the SQL condition of an open automatic top-up.
const benchOpen = `trigger <> 'manual' AND status IN ('pending', 'processing', 'requires_action')`

// awaitTopUps waits, at most benchSettleWait, for the automatic top-ups of
// the bench's accounts still open when the load stopped to settle, then
// reads how many credits /metrics observed.
func (b *bench) awaitTopUps(ctx context.Context, store *sqlstore.Store, apiURL string) (*benchSettle, error) {
	start := time.Now()
	st := &benchSettle{}
	for {
		var err error
		if st.open, err = b.countOwn(ctx, store, `SELECT account_id FROM top_ups WHERE `+benchOpen); err != nil {
			return nil, err
		}
		st.took = time.Since(start)
		if st.open == 0 || st.took >= benchSettleWait || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The histogram hears of a credit just after its transaction commits:
	// give the last one a moment to be counted.
	credited, err := b.countOwn(ctx, store, `SELECT account_id FROM top_ups WHERE trigger <> 'manual' AND status = 'succeeded'`)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(time.Second); ; {
		if err := b.scrape(ctx, apiURL, map[string]*float64{"topup_crossing_to_credit_seconds_count": &st.metrics}); err != nil {
			return nil, err
		}
		if int(st.metrics) >= credited || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return st, ctx.Err()
}

// countOwn counts the rows of query (its first column an account id) that
// belong to the bench's accounts: a PostgreSQL database may hold others.
func (b *bench) countOwn(ctx context.Context, store *sqlstore.Store, query string) (int, error) {
	own := b.own()
	rows, err := store.DB().QueryContext(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("bench: read top-ups: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		if own[id] {
			n++
		}
	}
	return n, rows.Err()
}

// own is the set of the bench's account ids.
func (b *bench) own() map[string]bool {
	m := make(map[string]bool, len(b.accounts))
	for _, id := range b.accounts {
		m[id] = true
	}
	return m
}

// benchTopUp is a row of top_ups, times in microseconds.
type benchTopUp struct {
	id, account, status, trigger string
	amount                       money.Amount // 0 until fixed
	crossed, created, completed  int64
}

// benchCharge is a row of sandbox_charges made for a top-up.
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

func (b *bench) loadTopUps(ctx context.Context, store *sqlstore.Store) (*benchTopUps, error) {
	own := b.own()
	db := store.DB()
	out := &benchTopUps{credits: map[string]money.Amount{}, entries: map[string]money.Amount{}, charges: map[string][]benchCharge{}}
	rows, err := db.QueryContext(ctx, `SELECT id, account_id, status, trigger, amount, crossed_at, created_at, completed_at FROM top_ups`)
	if err != nil {
		return nil, fmt.Errorf("bench: read top-ups: %w", err)
	}
	for rows.Next() {
		var t benchTopUp
		var amount sql.NullInt64
		if err := rows.Scan(&t.id, &t.account, &t.status, &t.trigger, &amount, &t.crossed, &t.created, &t.completed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("bench: read top-ups: %w", err)
		}
		t.amount = money.Amount(amount.Int64)
		switch {
		case !own[t.account]:
		case t.trigger == "manual":
			out.manual++
		default:
			out.topUps = append(out.topUps, t)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("bench: read top-ups: %w", err)
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

	// Top-up credits carry their top-up's id, under a partial unique index.
	rows, err = db.QueryContext(ctx, `SELECT account_id, top_up_id, amount FROM entries WHERE top_up_id IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("bench: read top-up credits: %w", err)
	}
	for rows.Next() {
		var acct, id string
		var amount int64
		if err := rows.Scan(&acct, &id, &amount); err != nil {
			rows.Close()
			return nil, fmt.Errorf("bench: read top-up credits: %w", err)
		}
		if own[acct] {
			out.credits[acct] += money.Amount(amount)
			out.entries[id] += money.Amount(amount)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("bench: read top-up credits: %w", err)
	}

	ours := make(map[string]bool, len(out.topUps))
	for _, t := range out.topUps {
		ours[t.id] = true
	}
	// The sandbox, as a card network, counts in the currency's minor units.
	rows, err = db.QueryContext(ctx, `SELECT id, top_up_id, status, amount, currency FROM sandbox_charges WHERE top_up_id <> ''`)
	if err != nil {
		return nil, fmt.Errorf("bench: read sandbox charges: %w", err)
	}
	for rows.Next() {
		var c benchCharge
		var minor int64
		var code string
		if err := rows.Scan(&c.id, &c.topUp, &c.status, &minor, &code); err != nil {
			rows.Close()
			return nil, fmt.Errorf("bench: read sandbox charges: %w", err)
		}
		if !ours[c.topUp] {
			continue
		}
		cur, err := money.LookupCurrency(code)
		if err == nil {
			c.amount, err = money.FromMinor(minor, cur)
		}
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("bench: sandbox charge %s of %d %s: %w", c.id, minor, code, err)
		}
		{
			out.charges[c.topUp] = append(out.charges[c.topUp], c)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("bench: read sandbox charges: %w", err)
	}
	return out, nil
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
		benchCommas(int64(len(tu.topUps))), benchCommas(int64(status["succeeded"])), benchCommas(int64(status["failed"])),
		benchCommas(int64(status["canceled"])), benchCommas(int64(open)), len(accounts), len(b.accounts), credited, mean, largest)
	if st := b.settle; st != nil {
		if st.open == 0 {
			fmt.Fprintf(b.out, "settled: no automatic top-up open %s after the last phase\n", benchSpan(st.took))
		} else {
			fmt.Fprintf(b.out, "settled: WARNING %d automatic top-ups still open %s after the last phase (their crossing→credit times are missing below)\n", st.open, benchSpan(st.took))
		}
	}
	line := "crossing→credit (succeeded threshold top-ups, completed_at - crossed_at): " + benchDurations(all)
	if st := b.settle; st != nil {
		line += fmt.Sprintf("; /metrics topup_crossing_to_credit_seconds counted %s", benchCommas(int64(st.metrics)))
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
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n=%s)", benchSpan(at(0.50)), benchSpan(at(0.99)), benchSpan(ds[len(ds)-1]), benchCommas(int64(len(ds))))
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
		benchCommas(int64(len(tu.topUps))), benchCommas(int64(charges)), charged)
	return nil
}

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

// benchCommas writes n with thousands separators: 1234567 is "1,234,567".
func benchCommas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
