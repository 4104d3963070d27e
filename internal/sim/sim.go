package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"time"

	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/expiry"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/topup"
)

// Config is one simulation run.
type Config struct {
	Seed  uint64
	Steps int // length of the generated schedule
	// DB is "" (or "sqlite") for a fresh SQLite file, or a postgres:// URL
	// of a database in which a fresh schema is made for the run and dropped
	// after it.
	DB string
	// Dir holds the SQLite files (default: /dev/shm when writable, else the
	// temporary directory). Crashes in the simulation are process crashes,
	// not power cuts, so a memory file system loses nothing the run needs.
	Dir string
	// Only, when set, runs just these steps of the generated schedule (a
	// shrunk schedule printed by a failure).
	Only []int
	// Trace, when set, receives every step and what it did.
	Trace io.Writer
	// StrictLimit makes a revived top-up that takes its month's automatic
	// charges past monthly_limit a violation (monthly-limit-charged);
	// without it, it is only counted (Stats.RevivedOverLimit). Since an
	// expired 3-D Secure request cancels its charge at the provider, no
	// revival can pass the limit, and the command and CI run strict.
	StrictLimit bool
}

// Result is what a run found.
type Result struct {
	Seed  uint64
	Steps int // steps run
	// Failure is the first broken invariant, or nil.
	Failure *Failure
	Stats   Stats
	// Fingerprint is a hash of everything the run did and saw: the same
	// seed gives the same fingerprint, bit for bit.
	Fingerprint string
}

// Failure is a broken invariant and how the run got there.
type Failure struct {
	Step      Step   // the step after which (or in which) it broke
	Invariant string // the invariant's name (check.go)
	Detail    string
	// Trace is what the failing step did.
	Trace []string
	// Ran is the list of steps run up to and including the failing one.
	Ran []Step
}

func (f *Failure) Error() string {
	return fmt.Sprintf("step %d (%s): %s: %s", f.Step.N, f.Step.Kind, f.Invariant, f.Detail)
}

// Stats count what a run exercised.
type Stats struct {
	Steps          int
	Crashes        int // process restarts, between steps or inside one
	MidStepCrashes int // crashes at a crash point inside a step

	Groups, Postings int // group commits, and the postings they held
	Acked            int // postings answered for the first time
	Replays          int // postings answered again (a key re-sent)
	Conflicts        int // keys re-sent with another amount, refused

	Charges    int // charges the provider made
	Lost       int // answers lost after the provider charged
	FailBefore int // requests failed before anything was charged
	Late       int // requests that landed after the caller gave up
	Finds      int // charge searches by top-up id (after 24 hours, or a refusal)
	Webhooks   int // provider webhooks Topup acknowledged
	Duplicates int // extra copies of webhooks sent

	TopUps, TopUpsSucceeded, TopUpsFailed, TopUpsCanceled, TopUpsOpen int // at the end of the run

	Authenticated    int // 3-D Secure challenges the customer answered
	StaleAuth        int // … on a page for a top-up Topup no longer waited for
	Revived          int // final top-ups later credited for a charge that succeeded
	RevivedOverLimit int // … that took the month's automatic charges past monthly_limit

	Settings, SettingsRefused int // settings saves, and invalid ones refused
	CardsRemoved              int
	Manual                    int // manual top-up requests (replays included)
	KeyExpiryJumps            int // clock moves of 24 hours or more
	MonthBoundaries           int // clock moves into another month
	Quiet                     int // quiet periods
	Expirations               int // expiration entries (grants that expired with something left)

	HoldsMade       int // holds created (not replays)
	HoldsRefused    int // … refused 402: available was short
	HoldTopUps      int // holds that triggered an automatic top-up
	HoldsCaptured   int // captures answered
	CapturesRefused int // captures refused 409: the hold was no longer active
	HoldsReleased   int // releases of active holds answered
	HoldsExpired    int // holds the client made that expired neither captured nor released
	ExpiryPasses    int // expiry worker passes that held the lease
	Warnings        int // credit.expiring events written
	Voids           int // voids answered
	VoidsRefused    int // voids refused 409: the grant was no longer active or had nothing left

	RefundsAsked     int // refunds stored (CreateRefund, not replays)
	RefundsRefused   int // … refused: 400 on amount, 409 while a dispute is open
	RefundsSucceeded int // refunds the provider made that succeeded (at the end of the run)
	RefundsFailed    int // refunds that failed (the provider refused, or failed them later)
	RefundPasses     int // refund worker passes that attempted something
	Disputes         int // disputes opened at the provider
	DisputesWon      int // … closed won (funds reinstated)
	DisputesLost     int // … closed lost
}

// Engine settings of every run; the back-off is chosen by the seed.
const (
	lease        = 2 * time.Minute
	unknownRetry = 2 * time.Second
	pCrash       = 0.012 // chance of a crash at each crash point inside a step
)

// maxTarget is the operator's TOPUP_MAX_TARGET (the default).
var maxTarget = money.Amount(10_000 * money.MicrosPerUnit)

// account is one account of the simulated world.
type account struct {
	id     string
	name   string // acct0, acct1… in traces
	cur    money.Currency
	scale  int64 // 1, or 100 for currencies without minor units (amounts in yen)
	weight int   // hot accounts get more usage
	// holdsSent is set once the client sent the account a hold: from then
	// on the holds invariant reads its held credit after every step.
	holdsSent bool
}

// request is one call of the metering client: a single posting or a batch,
// answered only after the group that holds it committed.
type request struct {
	postings []ledger.Posting
	conflict []bool // the posting reuses an acknowledged key with another body: a conflict is expected
	from     int    // the step that sent it first
	// worker marks the expiry worker's sweeps: a crash kills the worker,
	// and nobody sends them again.
	worker bool
	// results are the group commit's answers, once it committed.
	results []ledger.Result
}

// postKey names a posting's idempotency: account, kind of call, key.
type postKey struct {
	acct, call, key string
}

// ack is what the client was told of a posting.
type ack struct {
	entry   string
	posting ledger.Posting
}

// manualReq is a manual top-up request the customer may send again.
type manualReq struct {
	acct   string
	amount money.Amount
	card   string
	key    string
}

// Sim is one run.
type Sim struct {
	cfg      Config
	ctx      context.Context
	clock    *clock.Manual
	db       *database
	backoff  time.Duration
	accounts []*account
	stripe   *provider
	webhooks []payment.Event // sent by the provider, not yet acknowledged by Topup
	evSeq    int
	proc     *process
	step     *stepState
	log      *slog.Logger

	// The metering client and the customers, outside the process: they
	// survive its crashes.
	pending    []*request        // sent, never answered (lost in a crash)
	acked      map[postKey]ack   // answered
	ackList    []postKey         // the answered keys, in answer order
	newlyAcked []postKey         // keys answered since the last check
	first      map[postKey]int64 // the body (amount) each key was first sent with
	manuals    []manualReq       // manual top-ups asked for

	// What the checks have read of the ledger so far (entries never change).
	seen    map[string]int64        // account → last seq read
	byKey   map[postKey]string      // posting → its entry
	credits map[string]credit       // top-up → its credit entry
	grants  map[string]ledger.Grant // grants read by the funding checks, by id
	status  map[string]topup.Status // every top-up's status at the last check
	// expirations are the expiration entries read, by account and grant.
	expirations map[string]map[string]string
	voided      map[string]string  // grant → its void entry
	sentGrant   map[postKey]string // a void's key → the grant it named

	hb holdBook   // what the client knows of holds, captures and voids
	rf refundBook // what the checks know of refunds and disputes (refunds.go)

	stats    Stats
	verified string // the database's write mark when Verify last found it clean
	fp       hash.Hash
	trace    io.Writer
}

type credit struct {
	entry  string
	acct   string
	amount money.Amount
}

// process is what a running Topup holds in memory and loses when it dies:
// its connections, the committer's queue, the engine, the id generator.
type process struct {
	store  *sqlstore.DB
	ids    *ids.Generator
	engine *topup.Engine
	// billing is the service layer over store, as the API and the console
	// use it; it detaches cards through simDetach.
	billing *billing.Service
	queue   []*request
	// expiry is the expiry worker, never started: expiry steps call its
	// RunOnce.
	expiry *expiry.Worker
	// refunds is the refund worker, never started: refund steps call its
	// Attempt and RunOnce.
	refunds *refund.Worker
}

// stepState is one step's randomness, trace and findings.
type stepState struct {
	rng        *rand.Rand
	crashOK    bool // crash points may fire
	faults     bool // the provider may fail
	crashed    bool
	trace      []string
	answers    []payment.Charge // final answers the provider gave Topup
	violations []violation

	passed    bool      // an expiry pass held the lease and ran to its end
	passAt    time.Time // … begun at this time
	allEvents bool      // credit.expiring may have been written: check every account's events
	expiredIn []string  // accounts whose expiration entries were read in this step
	// refunds is set by the steps that may change a refund or a dispute
	// (refund steps, worker passes, disputes, webhooks, quiet periods):
	// the refunded-within-amount check reads theirs.
	refunds bool
}

type violation struct {
	invariant, detail string
}

func (st *stepState) tracef(format string, args ...any) {
	st.trace = append(st.trace, strings.TrimRight(fmt.Sprintf(format, args...), " "))
}

// fault reports whether a fault with probability p happens now.
func (st *stepState) fault(p float64) bool {
	return st.faults && st.rng.Float64() < p
}

func (st *stepState) fail(invariant, format string, args ...any) {
	st.violations = append(st.violations, violation{invariant, fmt.Sprintf(format, args...)})
}

// crash is the panic that kills the simulated process.
type crash struct{ where string }

// crashPoint may kill the process here.
func (s *Sim) crashPoint(where string) {
	st := s.step
	if st.crashOK && st.rng.Float64() < pCrash {
		st.crashed = true
		st.tracef("CRASH %s", where)
		panic(crash{where})
	}
}

// Run generates the schedule of cfg.Seed and runs it (or the steps
// cfg.Only names).
func Run(ctx context.Context, cfg Config) (Result, error) {
	steps := Generate(cfg.Seed, cfg.Steps)
	if len(cfg.Only) > 0 {
		steps = Only(steps, cfg.Only)
	}
	return RunSteps(ctx, cfg, steps)
}

// RunSteps runs a list of steps from a fresh database. The error is for
// the simulation's own trouble (a database that does not open); a broken
// invariant is Result.Failure.
func RunSteps(ctx context.Context, cfg Config, steps []Step) (Result, error) {
	s := &Sim{cfg: cfg, ctx: ctx, acked: map[postKey]ack{}, first: map[postKey]int64{},
		seen: map[string]int64{}, byKey: map[postKey]string{}, credits: map[string]credit{}, grants: map[string]ledger.Grant{}, status: map[string]topup.Status{},
		expirations: map[string]map[string]string{}, voided: map[string]string{}, sentGrant: map[postKey]string{}, hb: newHoldBook(), rf: newRefundBook(),
		fp: sha256.New(), trace: cfg.Trace}
	res := Result{Seed: cfg.Seed}
	s.stripe = newProvider(s)
	s.log = slog.New(&logHandler{s: s})
	r := rand.New(rand.NewPCG(cfg.Seed, 0x0a11ce))
	s.clock = clock.NewManual(startTime(r))
	s.backoff = []time.Duration{10 * time.Minute, time.Hour}[r.IntN(2)]
	done, err := s.open(ctx)
	if err != nil {
		return res, err
	}
	defer done()
	s.step = &stepState{rng: r}
	if s.proc, err = s.start(r.Uint64()); err != nil {
		return res, err
	}
	if f, err := s.setup(r); err != nil {
		return res, err
	} else if f != nil {
		res.Failure = f
		s.countTopUps()
		res.Stats = s.stats
		return res, nil
	}
	for i, st := range steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		f, err := s.run(st)
		res.Steps = i + 1
		if err != nil {
			return res, fmt.Errorf("step %d (%s): %w", st.N, st.Kind, err)
		}
		if f != nil {
			f.Ran = append([]Step(nil), steps[:i+1]...)
			res.Failure = f
			break
		}
	}
	if res.Failure == nil {
		// The end of every run is a quiet period: everything open is
		// decided and every charge the provider made must be credited.
		end := Step{N: max(cfg.Steps, len(steps)), Kind: KindQuiet, Seed: cfg.Seed ^ 0xe4d}
		f, err := s.run(end)
		if err != nil {
			return res, fmt.Errorf("final quiet period: %w", err)
		}
		if f != nil {
			f.Ran = append(append([]Step(nil), steps...), end)
			res.Failure = f
		}
	}
	s.countTopUps()
	if s.trace != nil && s.proc != nil {
		s.describe(s.trace)
	}
	res.Stats = s.stats
	res.Fingerprint = hex.EncodeToString(s.fp.Sum(nil))[:16]
	return res, nil
}

// open opens the run's database and the provider's; done closes the
// process's store and removes both.
func (s *Sim) open(ctx context.Context) (done func(), err error) {
	db, err := openDatabase(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	closeStripe, err := s.stripe.open(ctx, s.cfg.Dir)
	if err != nil {
		db.drop()
		return nil, err
	}
	s.db = db
	return func() {
		if s.proc != nil {
			s.proc.store.Close()
		}
		db.drop()
		closeStripe()
	}, nil
}

// startTime is where the clock starts: anywhere in 2026–2027, and often in
// the last hour of a month or of the year, so that runs cross month
// boundaries with top-ups open.
func startTime(r *rand.Rand) time.Time {
	base := time.Date(2026, time.Month(1+r.IntN(12)), 1, 0, 0, 0, 0, time.UTC).AddDate(r.IntN(2), 0, 0)
	switch r.IntN(4) {
	case 0, 1:
		return base.Add(time.Duration(r.Int64N(int64(27 * 24 * time.Hour))))
	case 2:
		return base.AddDate(0, 1, 0).Add(-time.Duration(1 + r.Int64N(int64(time.Hour))))
	default:
		return time.Date(2026+r.IntN(2), time.December, 31, 23, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(55 * time.Minute))))
	}
}

// keyMemory is how long the simulated store remembers usage keys: longer
// than any run.
const keyMemory = 100 * 365 * 24 * time.Hour

// start starts a process on the database: a new id generator, a new store
// (connections), a new engine that resumes what a dead process left (on
// SQLite, alone with its database, it reclaims every claim at once).
func (s *Sim) start(seed uint64) (*process, error) {
	g := ids.NewSeeded(s.clock, seed)
	store, err := s.db.open(s.ctx, s.clock, g)
	if err != nil {
		return nil, err
	}
	// The model remembers every key for the whole run, which moves the
	// clock across months; forgetting usage keys after the retention is
	// the store's, tested in storetest (Post/UsageKeyRetention).
	store.SetUsageKeyRetention(keyMemory)
	p := &process{store: store, ids: g}
	p.billing = billing.New(billing.Config{MaxTarget: maxTarget},
		billing.Deps{Store: store.Payments, Provider: simDetach{s.stripe, s}, Clock: s.clock, Logger: s.log})
	p.engine = topup.NewEngine(engineStore{s, p}, s.stripe, topup.Config{RetryBackoff: s.backoff, Lease: lease, UnknownRetry: unknownRetry,
		ReclaimOnStart: s.db.kind == "sqlite", Clock: s.clock, Logger: s.log})
	p.expiry = s.newExpiryWorker(p)
	p.refunds = refund.NewWorker(refundStore{s, p}, s.stripe, refund.Config{Lease: lease, UnknownRetry: unknownRetry, Clock: s.clock, Logger: s.log})
	if err := p.engine.Resume(s.ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("resume engine: %w", err)
	}
	return p, nil
}

// restart kills the process and starts another on the same database, as
// after a SIGKILL: the committer's callers never get their answers.
func (s *Sim) restart() error {
	s.stats.Crashes++
	s.lose(s.proc.queue)
	s.proc.queue = nil
	// What the client sent this process and never heard back from (a hold
	// made, a release, a capture committed) is read before it is checked.
	for _, a := range s.accounts {
		if a.holdsSent {
			s.hb.unsure[a.id] = true
		}
	}
	if err := s.proc.store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	s.proc = nil
	s.clock.Advance(time.Duration(1+s.step.rng.IntN(20)) * time.Second) // a restart takes a moment
	p, err := s.start(s.step.rng.Uint64())
	if err != nil {
		return err
	}
	s.proc = p
	s.verified, s.hb.mark = "", ""
	s.step.tracef("process restarted at %s", s.clock.Now().Format(time.RFC3339))
	return nil
}

// lose keeps the requests of a queue whose callers never got an answer:
// the metering client sends them again; the expiry worker's sweeps die with
// it.
func (s *Sim) lose(q []*request) {
	for _, r := range q {
		if !r.worker {
			s.pending = append(s.pending, r)
		}
	}
}

// setup makes the world of the seed, before the schedule: a few accounts
// (one or two hot), in a few currencies, with credit, cards and settings.
// It runs without faults or crashes, and is checked like a step.
func (s *Sim) setup(r *rand.Rand) (*Failure, error) {
	step := Step{N: -1, Kind: KindSetup, Seed: s.cfg.Seed}
	s.step = &stepState{rng: rand.New(rand.NewPCG(s.cfg.Seed, 0x5e7))}
	n := 2 + r.IntN(5)
	for i := range n {
		cur := "usd"
		switch r.IntN(10) {
		case 0:
			cur = "eur"
		case 1:
			cur = "gbp"
		case 2:
			cur = "jpy"
		}
		c, _ := money.LookupCurrency(cur)
		a := &account{name: fmt.Sprintf("acct%d", i), cur: c, scale: 1, weight: 1}
		if c.Minor == 0 {
			a.scale = 100
		}
		if i < 1+r.IntN(2) {
			a.weight = 8
		}
		acct := ledger.Account{ID: s.proc.ids.New(ids.Account), Email: fmt.Sprintf("sim%d@example.com", i), Currency: c, Status: ledger.Active, CreatedAt: s.clock.Now()}
		if err := s.proc.store.CreateAccount(s.ctx, acct, ledger.DefaultKey(acct, fmt.Sprintf("hash_%d", i), "")); err != nil {
			return nil, fmt.Errorf("create account: %w", err)
		}
		a.id = acct.ID
		s.accounts = append(s.accounts, a)
		s.step.tracef("account %s is %s (%s, weight %d)", a.name, a.id, cur, a.weight)
	}
	err := s.protect(func() {
		for i, a := range s.accounts {
			s.credit(Step{N: -1, Acct: i, Arg: int64(5+r.IntN(60)) * 1_000_000}, a)
			s.flush()
			for range 1 + r.IntN(2) {
				s.addCard(a)
			}
			if r.IntN(5) > 0 {
				s.saveSettings(a, true)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	s.check()
	s.record(step, s.step.trace)
	if len(s.step.violations) > 0 {
		v := s.step.violations[0]
		return &Failure{Step: step, Invariant: v.invariant, Detail: v.detail, Trace: s.step.trace, Ran: []Step{step}}, nil
	}
	return nil, nil
}

// run runs one step, recovering a crash of the process, and checks the
// invariants.
func (s *Sim) run(step Step) (*Failure, error) {
	st := &stepState{rng: rand.New(rand.NewPCG(step.Seed, uint64(step.N))), crashOK: step.Kind != KindQuiet, faults: step.Kind != KindQuiet}
	s.step = st
	s.stats.Steps++
	if err := s.protect(func() { s.do(step) }); err != nil {
		return nil, err
	}
	if st.crashed {
		s.stats.MidStepCrashes++
		// The crash is the end of the step: start again on the database.
		st.crashOK = false
		if err := s.restart(); err != nil {
			return nil, err
		}
	}
	st.crashOK, st.faults = false, false
	s.check()
	s.record(step, st.trace)
	if len(st.violations) > 0 {
		v := st.violations[0]
		return &Failure{Step: step, Invariant: v.invariant, Detail: v.detail, Trace: st.trace}, nil
	}
	return nil, nil
}

// protect runs fn, turning the crash panic into st.crashed and any other
// panic of the system under test into a violation.
func (s *Sim) protect(fn func()) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if _, ok := r.(crash); ok {
			return
		}
		if e, ok := r.(simError); ok {
			err = e.err
			return
		}
		s.step.fail("no-panic", "panic: %v\n%s", r, debug.Stack())
	}()
	fn()
	return nil
}

// simError is a failure of the simulation itself (not of Topup), carried
// out of a step by panic.
type simError struct{ err error }

func (s *Sim) record(step Step, trace []string) {
	fmt.Fprintln(s.fp, step.String())
	for _, l := range trace {
		fmt.Fprintln(s.fp, l)
	}
	if s.trace != nil {
		fmt.Fprintf(s.trace, "%s  [%s]\n", step, s.clock.Now().Format("2006-01-02T15:04:05"))
		for _, l := range trace {
			fmt.Fprintf(s.trace, "        %s\n", l)
		}
	}
}

// internal records an error Topup should never return to a well-formed
// call in a single-threaded run.
func (s *Sim) internal(what string, err error) {
	s.step.fail("no-internal-error", "%s: %v", what, err)
}

// logHandler sends the engine's logs to the step's trace; an error logged
// is a violation (the engine swallows attempt errors into its log).
type logHandler struct {
	s     *Sim
	attrs []slog.Attr
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.String() != "" {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		}
		return true
	})
	if r.Level >= slog.LevelError {
		h.s.step.fail("no-internal-error", "logged: %s", b.String())
	}
	if r.Level >= slog.LevelInfo {
		h.s.step.tracef("log: %s", b.String())
	}
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{s: h.s, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

// emit queues a provider webhook about a charge.
func (s *Sim) emit(typ string, ch payment.Charge) {
	s.queueEvent(payment.Event{Type: typ, Charge: &ch})
}

// queueEvent queues a provider webhook, sometimes twice or three times
// (Stripe delivers at least once).
func (s *Sim) queueEvent(ev payment.Event) {
	if ev.ID == "" {
		// The sandbox names its refund and dispute events itself (the
		// same ids when it sends them again); charges' are named here.
		s.evSeq++
		ev.ID, ev.Created = fmt.Sprintf("evt_%d", s.evSeq), s.stripe.Now()
	}
	copies := 1
	if s.step.fault(0.2) {
		copies += 1 + s.step.rng.IntN(2)
		s.stats.Duplicates += copies - 1
	}
	for range copies {
		s.webhooks = append(s.webhooks, ev)
	}
}

// answered notes a final answer the provider gave Topup: after the step,
// unless the process died, the top-up must show it.
func (s *Sim) answered(ch payment.Charge) {
	s.step.answers = append(s.step.answers, ch)
}

// countTopUps counts the run's top-ups by outcome.
func (s *Sim) countTopUps() {
	if s.proc == nil {
		return
	}
	for _, t := range s.readTopUps() {
		s.stats.TopUps++
		switch t.Status {
		case topup.Succeeded:
			s.stats.TopUpsSucceeded++
		case topup.Failed:
			s.stats.TopUpsFailed++
		case topup.Canceled:
			s.stats.TopUpsCanceled++
		default:
			s.stats.TopUpsOpen++
		}
	}
}

// describe writes the world as the run left it: each account's balance,
// settings, cards and top-ups.
func (s *Sim) describe(w io.Writer) {
	for _, a := range s.accounts {
		acct, err := s.proc.store.Account(s.ctx, a.id)
		if err != nil {
			continue
		}
		st, mtd, _ := s.proc.store.Settings(s.ctx, a.id)
		cards := s.cards(a)
		tus, _, _ := s.proc.store.TopUps(s.ctx, a.id, ledger.Page{Limit: 1000})
		byStatus := map[string]int{}
		for _, t := range tus {
			byStatus[string(t.Trigger)+"/"+string(t.Status)]++
		}
		fmt.Fprintf(w, "%s %s (%s, weight %d): balance %s; auto enabled %v (%s) threshold %s target %s limit %s month-to-date %s; %d cards; top-ups %v\n",
			a.name, a.id, a.cur.Code, a.weight, acct.Balance.Format(a.cur), st.Enabled, st.DisabledReason, fmtAmount(st.Threshold, a.cur),
			fmtAmount(st.Target, a.cur), fmtAmount(st.MonthlyLimit, a.cur), mtd.Format(a.cur), len(cards), byStatus)
	}
}
