package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/topup/topup/client"
	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/app"
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
	// DefaultAmount is what each usage event debits unless --amount says.
	DefaultAmount   = "0.000125"
	benchGrant      = money.Amount(1_000_000 * money.MicrosPerUnit)
	benchZipfS      = 1.1
	benchMaxSamples = 5 // error bodies kept per phase

	// AutoGrant, AutoThreshold, AutoTarget and AutoCard are each account's
	// opening credit, Automatic Top-Up settings and card with
	// --auto-top-up.
	AutoGrant     = money.Amount(10 * money.MicrosPerUnit)
	AutoThreshold = "5.00"
	AutoTarget    = "10.00"
	AutoCard      = "pm_card_visa"
	// benchSettleWait bounds the wait, after the last phase, for the
	// top-ups still open to settle before the instance shuts down.
	benchSettleWait = 30 * time.Second
)

// Phases are the phases in the order they run: the trivial handler
// first, so that the figures after it can be read as ratios to it.
var Phases = []string{"trivial", "single", "batch", "read"}

// DefaultPhases are the phases run unless --phases says: the read phase
// is asked for by name.
var DefaultPhases = []string{"trivial", "single", "batch"}

// benchTargets are the rates the issue asks of each database: single-event
// debits as a share of the trivial handler's rate, and batched debits/s.
var benchTargets = map[string]struct {
	singleShare float64
	batchRate   float64
}{
	"sqlite":   {0.50, 200_000},
	"postgres": {0.40, 100_000},
}

// Config is a `topup bench` command line.
type Config struct {
	// DB is the database as --db names it; empty: a fresh SQLite file in a
	// temporary directory, removed afterwards.
	DB string
	// Accounts is how many accounts the usage is spread over (Zipf).
	Accounts int
	// Clients is how many HTTP clients the trivial and single phases run.
	Clients int
	// Duration is how long each phase runs.
	Duration time.Duration
	// BatchSize and BatchClients shape the batch phase: events per
	// request, concurrent clients.
	BatchSize, BatchClients int
	// Phases are the phases to run, of the package's Phases.
	Phases []string
	// CPUProfile, when set, is where a CPU profile of the phases goes.
	CPUProfile string
	// AlertsBudgets gives every account five low balance alerts and a
	// monthly account-wide budget, so that every debit is watched.
	AlertsBudgets bool
	// Amount is what every usage event debits, as the requests spell it.
	Amount string
	// AutoTopUp gives every account a sandbox card and Automatic Top-Up
	// (threshold AutoThreshold, target AutoTarget) over a grant of
	// AutoGrant; SandboxLatency is how long each sandbox charge takes
	// (TOPUP_SANDBOX_LATENCY).
	AutoTopUp      bool
	SandboxLatency time.Duration
	// Grants is how many grants each account's opening credit is split
	// into (1 to 10; 0 means 1), with different terms (benchGrantTerms),
	// so that every debit finds them in its wallet.
	Grants int
	// BaselineGrants, when above zero, adds a second set of Accounts
	// accounts whose opening credit is split into this many grants; the
	// single and batch phases then run on each set in turn, in the same
	// run, so that the cost of Grants over BaselineGrants is read on a
	// machine whose load is the same for both.
	BaselineGrants int
	// SeedEntries, when above zero, fills the ledger with this many usage
	// entries of history before the phases (seed.go), spread over the
	// accounts by the load's Zipf law.
	SeedEntries int64
	// PageSize is how many transactions the read phase asks per page
	// (1 to 100; 0 means 100).
	PageSize int
	// Explain prints, after the run, the plan of each statement of the
	// read and debit paths on the database's account with the most
	// entries (explain.go).
	Explain bool
}

// benchConfig is a Config checked and read.
type benchConfig struct {
	db            string
	accounts      int
	clients       int
	duration      time.Duration
	batchSize     int
	batchClients  int
	phases        map[string]bool
	cpuProfile    string
	alertsBudgets bool
	// amount is what every usage event debits; amountText is how the
	// requests spell it.
	amount         money.Amount
	amountText     string
	autoTopUp      bool
	sandboxLatency time.Duration
	grants         int
	baselineGrants int
	seedEntries    int64
	pageSize       int
	explain        bool
}

// Validate refuses a Config that makes no run, naming the flag.
func (c Config) Validate() error {
	_, err := c.read()
	return err
}

func (c Config) read() (benchConfig, error) {
	cfg := benchConfig{db: c.DB, accounts: c.Accounts, clients: c.Clients, duration: c.Duration, batchSize: c.BatchSize,
		batchClients: c.BatchClients, phases: map[string]bool{}, cpuProfile: c.CPUProfile, alertsBudgets: c.AlertsBudgets,
		amountText: c.Amount, autoTopUp: c.AutoTopUp, sandboxLatency: c.SandboxLatency, grants: max(c.Grants, 1),
		baselineGrants: c.BaselineGrants, seedEntries: c.SeedEntries, pageSize: cmp.Or(c.PageSize, 100), explain: c.Explain}
	amt, amtErr := money.Parse(c.Amount)
	cfg.amount = amt
	switch {
	case amtErr != nil || amt <= 0:
		return cfg, fmt.Errorf("--amount must be a positive amount such as 0.05, not %q", c.Amount)
	case cfg.sandboxLatency < 0:
		return cfg, errors.New("--sandbox-latency must not be negative")
	case cfg.sandboxLatency > 0 && !cfg.autoTopUp:
		return cfg, errors.New("--sandbox-latency only matters with --auto-top-up")
	case cfg.duration <= 0:
		return cfg, errors.New("--duration must be above zero")
	}
	if err := c.checkCounts(); err != nil {
		return cfg, err
	}
	for _, p := range c.Phases {
		if !slices.Contains(Phases, p) {
			return cfg, fmt.Errorf("--phases: unknown phase %q (want a list of %s)", p, strings.Join(Phases, ", "))
		}
		cfg.phases[p] = true
	}
	return cfg, nil
}

// checkCounts refuses counts that make no run: accounts, clients, the
// batch size and grants.
func (c Config) checkCounts() error {
	switch {
	case c.Accounts < 1:
		return errors.New("--accounts must be at least 1")
	case c.Clients < 1 || c.BatchClients < 1:
		return errors.New("--clients and --batch-clients must be at least 1")
	case c.BatchSize < 1 || c.BatchSize > 10_000:
		return errors.New("--batch-size must be from 1 to 10000")
	case c.Grants < 0 || c.Grants > 10:
		return errors.New("--grants must be from 1 to 10")
	case c.BaselineGrants < 0 || c.BaselineGrants > 10:
		return errors.New("--baseline-grants must be from 1 to 10 (or 0 for none)")
	case c.SeedEntries < 0 || c.SeedEntries > 900_000_000:
		return errors.New("--seed-entries must be from 0 to 900000000")
	case c.SeedEntries > 0 && c.Accounts > 1<<20:
		return errors.New("--seed-entries takes at most 1048576 --accounts")
	case c.SeedEntries > 0 && (c.AlertsBudgets || c.BaselineGrants > 0):
		return errors.New("--seed-entries does not combine with --alerts-budgets or --baseline-grants")
	case c.PageSize < 0 || c.PageSize > 100:
		return errors.New("--page-size must be from 1 to 100")
	}
	return nil
}

// Run measures a whole in-process Topup over HTTP: debits/s and latency
// of single and batched usage, next to a trivial net/http handler that
// decodes the same JSON, which is this machine's HTTP ceiling. It prints
// the report on stdout and the server's warnings on stderr, then checks
// the ledger the run left; a refused request or a broken check is an
// error.
func Run(ctx context.Context, c Config, stdout, stderr io.Writer) error {
	cfg, err := c.read()
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, out: stdout, stderr: stderr, runID: newBenchRunID()}
	if cfg.db == "" {
		dir, err := os.MkdirTemp("", "topup-bench-")
		if err != nil {
			return fmt.Errorf("bench: temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
		b.cfg.db = "sqlite:" + filepath.Join(dir, "bench.db")
		b.dbLabel = "sqlite (fresh temp file)"
	} else {
		b.dbLabel = app.RedactDB(cfg.db)
	}
	return b.run(ctx, stderr)
}

// bench is one run of `topup bench`.
type bench struct {
	cfg      benchConfig
	out      io.Writer
	stderr   io.Writer // where a terminal shows each phase's progress
	dbLabel  string
	runID    string
	clock    *seedClock // the store's: seed.go sets it back while seeding
	store    *sqlstore.DB
	seeded   string // what --seed-entries wrote, for the heading
	adminKey string
	auth     string
	accounts []string       // account ids; index 0 is the hottest under Zipf
	paths    []string       // "/v1/accounts/{id}/usage" per account
	accepted []atomic.Int64 // debits answered as recorded, per account
	// offset is where the set of accounts the next phase debits starts in
	// accounts: 0 for the set with cfg.grants grants, cfg.accounts for
	// the baseline set (--baseline-grants).
	offset int
	// pass numbers the runs of one phase (--baseline-grants runs each
	// four times), so that their idempotency keys differ.
	pass   int
	client *http.Client
	api    *client.Client // the operator's client of the instance, over client
	grant  money.Amount   // each account's opening credit
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
	b.adminKey = ledger.NewKey(ledger.AdminKeyPrefix)
	b.auth = "Bearer " + b.adminKey
	g := ids.New(clock.System)
	b.clock = &seedClock{}
	store, err := app.OpenStore(ctx, b.cfg.db, b.clock, g)
	if err != nil {
		return err
	}
	b.store = store
	dialect := store.DialectName()
	start := time.Now()
	b.grant = benchGrant
	if b.cfg.autoTopUp {
		b.grant = AutoGrant
	}
	if err := b.setupAccounts(ctx, store, g); err != nil {
		store.Close()
		return err
	}
	setupTook := time.Since(start)

	// The bench's instance is the sandbox's, with the charge latency asked
	// for; the other settings are the defaults.
	set := app.Settings{Payments: "sandbox", SandboxLatency: b.cfg.sandboxLatency, RetryBackoff: time.Hour, MaxTarget: 10_000 * money.MicrosPerUnit}
	a, err := app.New(app.Config{Addr: "127.0.0.1:0", AdminKeyHash: ledger.HashKey(b.adminKey), Logger: app.NewLogger(stderr, slog.LevelWarn), Settings: set}, store)
	if err != nil {
		store.Close()
		return err
	}
	a.Start()
	results, runErr := b.load(ctx, a, setupTook)
	if err := a.Shutdown(); err != nil {
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

// load gives the accounts Automatic Top-Up when asked, prints the run's
// heading, runs the phases against a and, with Automatic Top-Up, waits for
// the top-ups still open to settle.
func (b *bench) load(ctx context.Context, a *app.App, setupTook time.Duration) ([]*benchPhase, error) {
	cfg := b.cfg
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.clients + cfg.batchClients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	b.client = &http.Client{Transport: transport, Timeout: time.Minute}
	// No retries: every refusal and lost answer counts as an error, as
	// it did when the bench sent its requests by hand.
	b.api = client.New(a.URL(), b.adminKey, client.WithHTTPClient(b.client), client.WithRetries(0, 0))

	auto := "off"
	if cfg.autoTopUp {
		t0 := time.Now()
		if err := b.setupAutoTopUp(ctx); err != nil {
			return nil, err
		}
		auto = fmt.Sprintf("on (every account: grant %s, card %s, threshold %s, target %s; sandbox latency %s; set up over HTTP in %s)",
			b.grant, AutoCard, AutoThreshold, AutoTarget, cfg.sandboxLatency, time.Since(t0).Round(time.Millisecond))
	}
	watch := "off"
	if cfg.alertsBudgets {
		watch = "on (5 low balance alerts and a monthly account-wide budget per account)"
	}
	grants := fmt.Sprintf("%d grants each", cfg.grants)
	if cfg.baselineGrants > 0 {
		grants += fmt.Sprintf(", and as many with %d grants each (the baseline, debited in phases of their own)", cfg.baselineGrants)
	}
	fmt.Fprintf(b.out, "topup bench: %s, %d accounts (Zipf s=%.1f) with %s, %s per phase, GOMAXPROCS %d; usage amount %s; alerts and budgets %s; Automatic Top-Up %s; accounts created and credited in %s\n",
		b.dbLabel, cfg.accounts, benchZipfS, grants, cfg.duration, runtime.GOMAXPROCS(0), cfg.amountText, watch, auto, setupTook.Round(time.Millisecond))
	if b.seeded != "" {
		fmt.Fprintf(b.out, "history: %s (within the setup time above)\n", b.seeded)
	}
	fmt.Fprintln(b.out)

	results, err := b.phases(ctx, a.URL())
	if cfg.autoTopUp && err == nil {
		b.settle, err = b.awaitTopUps(ctx, a.Store(), a.URL())
	}
	return results, err
}

// setupAccounts creates the accounts through the store, a few at a time,
// and grants each benchGrant in batches of postings (with
// --baseline-grants, a second set after the first).
func (b *bench) setupAccounts(ctx context.Context, store *sqlstore.DB, g *ids.Generator) error {
	m := b.cfg.accounts
	if b.cfg.baselineGrants > 0 {
		m *= 2
	}
	b.accounts = make([]string, m)
	b.paths = make([]string, m)
	b.accepted = make([]atomic.Int64, m)
	var plan seedPlan
	if b.cfg.seedEntries > 0 {
		// The accounts are made when their history begins.
		plan = newSeedPlan(b.cfg.seedEntries, b.cfg.accounts, time.Now())
		b.clock.at.Store(plan.credited.UnixMicro())
	}
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
				a, _, err := ledger.NewAccount(ctx, store, g, b.clock, email, "usd")
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
	b.clock.at.Store(0)
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return err
	}
	if b.cfg.seedEntries > 0 {
		if err := b.seedHistory(ctx, store, plan); err != nil {
			return err
		}
	}
	return b.creditAccounts(ctx, store)
}

// creditAccounts grants each account its opening credit, b.grant, in
// batches of postings: as cfg.grants grants, or cfg.baselineGrants for the
// baseline set.
func (b *bench) creditAccounts(ctx context.Context, store *sqlstore.DB) error {
	m := len(b.accounts)
	const chunk = 1000
	for start := 0; start < m; start += chunk {
		grants := make([]ledger.Posting, 0, chunk*b.cfg.grants)
		for i := start; i < min(start+chunk, m); i++ {
			n := b.cfg.grants
			if i >= b.cfg.accounts {
				n = b.cfg.baselineGrants
			}
			grants = append(grants, b.grantPostings(b.accounts[i], n)...)
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

// grantPostings are the credits that give an account its opening credit,
// b.grant, as n grants with terms in turn: promotional (spent first), paid
// expiring in a year, paid for ever.
func (b *bench) grantPostings(id string, n int) []ledger.Posting {
	out := make([]ledger.Posting, n)
	for k := range n {
		amount := b.grant / money.Amount(n)
		if k == n-1 {
			amount = b.grant - amount*money.Amount(n-1)
		}
		key := "bench-grant-" + b.runID
		if k > 0 {
			key += fmt.Sprintf("-%d", k)
		}
		out[k] = ledger.Posting{AccountID: id, Kind: ledger.KindCredit, Amount: amount, Description: "bench grant",
			IdempotencyKey: key, Call: ledger.ScopeCredit, Terms: benchGrantTerms(k)}
	}
	return out
}

// benchGrantTerms are the terms of an account's k-th opening grant.
func benchGrantTerms(k int) ledger.GrantTerms {
	switch k % 3 {
	case 1:
		return ledger.GrantTerms{Category: ledger.Paid, Priority: ledger.DefaultPaidPriority, ExpiresAt: time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Microsecond)}
	case 2:
		return ledger.GrantTerms{Category: ledger.Paid, Priority: ledger.DefaultPaidPriority}
	}
	return ledger.GrantTerms{}
}

// benchWatch gives an account five low balance alerts and a monthly
// account-wide budget that the bench's debits never exhaust: every debit
// then loads, checks and writes back the account's watch.
func benchWatch(ctx context.Context, store *sqlstore.DB, accountID string) error {
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
