package topuptest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver of the test database

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/topup"
)

// Epoch is where every test clock starts: early in a month, so that a test
// can reach the next month on purpose.
var Epoch = time.Date(2026, time.March, 4, 5, 6, 7, 0, time.UTC)

// Backoff is the TOPUP_RETRY_BACKOFF of the engines the tests build.
const Backoff = time.Hour

// MaxTarget is the operator's TOPUP_MAX_TARGET in the tests (the default).
var MaxTarget = Amt("10000.00")

// Main runs the tests of a package that uses Run with a PostgreSQL
// database made for this run (see pgtest). Call it from TestMain:
// os.Exit(topuptest.Main(m)).
func Main(m *testing.M) int { return pgtest.Main(m) }

// Backend opens a fresh, empty store of one database, closed (and
// dropped) when the test ends.
type Backend struct {
	Name string
	Open func(t testing.TB, c clock.Clock, g *ids.Generator) *sqlstore.DB
}

// Backends are SQLite and PostgreSQL.
func Backends() []Backend {
	return []Backend{{"sqlite", openSQLite}, {"postgres", openPostgres}}
}

func openSQLite(t testing.TB, c clock.Clock, g *ids.Generator) *sqlstore.DB {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "topup.db"), c, g)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sqlite: %v", err)
		}
	})
	return s
}

func openPostgres(t testing.TB, c clock.Clock, g *ids.Generator) *sqlstore.DB {
	t.Helper()
	return pgtest.Open(t, c, g)
}

// Env is one test's world: a fresh store on a manual clock, and the sandbox
// on the same store and clock, plain and scripted.
type Env struct {
	T     testing.TB
	DB    string // "sqlite" or "postgres"
	Store *sqlstore.DB
	// Clock is the manual clock of everything; nil in a live Env, which runs
	// on the wall clock.
	Clock   *clock.Manual
	IDs     *ids.Generator
	Sandbox *sandbox.Provider
	// Scripted is the sandbox with Faults as its hook: the same charge log
	// as Sandbox, and each charge misbehaving as the test scripts it.
	Scripted *sandbox.Provider
	Faults   *Faults
	clock    clock.Clock
	keys     atomic.Int64
}

// Run runs fn once per database, each in a parallel subtest with a fresh
// Env.
func Run(t *testing.T, fn func(t *testing.T, e *Env)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, NewEnv(t, b))
		})
	}
}

// NewEnv returns a fresh Env on b with a manual clock standing at Epoch.
func NewEnv(t testing.TB, b Backend) *Env {
	t.Helper()
	c := clock.NewManual(Epoch)
	e := newEnv(t, b, c)
	e.Clock = c
	return e
}

// NewLiveEnv returns a fresh Env on b running on the wall clock, for tests
// of the worker under load.
func NewLiveEnv(t testing.TB, b Backend) *Env {
	t.Helper()
	return newEnv(t, b, clock.System)
}

// NewLiveReplicas returns n live Envs on one fresh PostgreSQL database:
// replicas of `topup serve`, each with a store (connection pool) and
// sandbox of its own, on the wall clock. Their sandboxes share the
// database, as replicas share Stripe, and their Scripted sandboxes one
// Faults.
func NewLiveReplicas(t testing.TB, n int) []*Env {
	t.Helper()
	u := pgtest.Schema(t)
	f := &Faults{}
	out := make([]*Env, n)
	for i := range out {
		g := ids.New(clock.System)
		s, err := postgres.Open(t.Context(), u, clock.System, g)
		if err != nil {
			t.Fatalf("open replica %d: %v", i+1, err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close replica %d: %v", i+1, err)
			}
		})
		cfg := sandbox.Config{Clock: clock.System, IDs: g, BaseURL: "http://127.0.0.1:8080"}
		e := &Env{T: t, DB: "postgres", Store: s, IDs: g, clock: clock.System, Sandbox: sandbox.New(s.Sandbox, cfg), Faults: f}
		cfg.Hook = f
		e.Scripted = sandbox.New(s.Sandbox, cfg)
		out[i] = e
	}
	return out
}

func newEnv(t testing.TB, b Backend, c clock.Clock) *Env {
	g := ids.New(c)
	s := b.Open(t, c, g)
	f := &Faults{}
	cfg := sandbox.Config{Clock: c, IDs: g, BaseURL: "http://127.0.0.1:8080"}
	e := &Env{T: t, DB: b.Name, Store: s, IDs: g, clock: c, Sandbox: sandbox.New(s.Sandbox, cfg), Faults: f}
	cfg.Hook = f
	e.Scripted = sandbox.New(s.Sandbox, cfg)
	return e
}

// Now is the Env's time.
func (e *Env) Now() time.Time { return e.clock.Now() }

// Logger sends structured logs to t.Log.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Engine returns an engine on the Env's store and clock, charging through
// p, with the tests' back-off; mods change the config.
func (e *Env) Engine(p payment.Provider, mods ...func(*topup.Config)) *topup.Engine {
	cfg := topup.Config{Clock: e.clock, RetryBackoff: Backoff, Logger: Logger(e.T, slog.LevelInfo)}
	for _, m := range mods {
		m(&cfg)
	}
	return topup.NewEngine(e.Store.Payments, p, cfg)
}

// Amt parses a wire amount ("10.00", or "-5.00" for a balance); a test
// constant that does not parse is a bug in the test.
func Amt(s string) money.Amount {
	a, err := money.Parse(strings.TrimPrefix(s, "-"))
	if err != nil {
		panic(fmt.Sprintf("topuptest: amount %q: %v", s, err))
	}
	if strings.HasPrefix(s, "-") {
		return -a
	}
	return a
}

// AmtP is Amt as a pointer, for settings.
func AmtP(s string) *money.Amount {
	a := Amt(s)
	return &a
}

// Currency returns a supported currency.
func Currency(code string) money.Currency {
	c, err := money.LookupCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

func (e *Env) ctx() context.Context { return e.T.Context() }

// Account creates an active usd account with a zero balance.
func (e *Env) Account() ledger.Account {
	e.T.Helper()
	a := ledger.Account{ID: e.IDs.New(ids.Account), Email: "billing@example.com", Currency: Currency("usd"),
		Status: ledger.Active, CreatedAt: e.Now()}
	if err := e.Store.CreateAccount(e.ctx(), a, ledger.DefaultKey(a, "hash_"+a.ID, "")); err != nil {
		e.T.Fatalf("create account: %v", err)
	}
	return a
}

// Card attaches token through p to the account's provider customer (made
// on first use) and saves the card, as POST .../payment_methods does.
func (e *Env) Card(p payment.Provider, accountID, token string) topup.Card {
	e.T.Helper()
	cust, err := e.Store.CustomerID(e.ctx(), accountID)
	if err != nil {
		e.T.Fatalf("customer of %s: %v", accountID, err)
	}
	if cust == "" {
		if cust, err = p.EnsureCustomer(e.ctx(), "", accountID, ""); err != nil {
			e.T.Fatalf("ensure customer: %v", err)
		}
		if cust, err = e.Store.SetCustomerID(e.ctx(), accountID, cust); err != nil {
			e.T.Fatalf("set customer: %v", err)
		}
	}
	pc, err := p.AttachPaymentMethod(e.ctx(), cust, token)
	if err != nil {
		e.T.Fatalf("attach %s: %v", token, err)
	}
	c, err := e.Store.AddCard(e.ctx(), accountID, pc)
	if err != nil {
		e.T.Fatalf("add card %s: %v", pc.ID, err)
	}
	return c
}

// Post applies one posting that must be accepted.
func (e *Env) Post(p ledger.Posting) ledger.Result {
	e.T.Helper()
	res, err := e.Store.Post(e.ctx(), []ledger.Posting{p})
	if err != nil {
		e.T.Fatalf("post %s %s: %v", p.Kind, p.Amount, err)
	}
	if res[0].Err != nil {
		e.T.Fatalf("post %s %s: %v", p.Kind, p.Amount, res[0].Err)
	}
	return res[0]
}

// Usage is a usage posting of amount (a debit) under a fresh key.
func (e *Env) Usage(accountID, amount string) ledger.Posting {
	return ledger.Posting{AccountID: accountID, Kind: ledger.KindUsage, Amount: -Amt(amount),
		IdempotencyKey: fmt.Sprintf("use-%d", e.keys.Add(1)), Call: ledger.ScopeUsage}
}

// Use debits amount of usage and returns the result.
func (e *Env) Use(accountID, amount string) ledger.Result {
	e.T.Helper()
	return e.Post(e.Usage(accountID, amount))
}

// Credit credits amount (an operator credit, not a top-up).
func (e *Env) Credit(accountID, amount string) ledger.Result {
	e.T.Helper()
	return e.Post(ledger.Posting{AccountID: accountID, Kind: ledger.KindCredit, Amount: Amt(amount),
		IdempotencyKey: fmt.Sprintf("credit-%d", e.keys.Add(1)), Call: ledger.ScopeCredit})
}

// Save saves settings that must be valid and returns them with the top-up
// the save created, if any.
func (e *Env) Save(accountID string, in topup.Input) (topup.Settings, *topup.TopUp) {
	e.T.Helper()
	s, t, err := e.Store.SaveSettings(e.ctx(), accountID, "test", in, MaxTarget)
	if err != nil {
		e.T.Fatalf("save settings %+v: %v", in, err)
	}
	return s, t
}

// Enable switches Automatic Top-Up on with the account's default card.
func (e *Env) Enable(accountID, threshold, target string) (topup.Settings, *topup.TopUp) {
	e.T.Helper()
	on := true
	return e.Save(accountID, topup.Input{Enabled: &on, Threshold: AmtP(threshold), Target: AmtP(target)})
}

// Settings returns the account's settings and month-to-date.
func (e *Env) Settings(accountID string) (topup.Settings, money.Amount) {
	e.T.Helper()
	s, mtd, err := e.Store.Settings(e.ctx(), accountID)
	if err != nil {
		e.T.Fatalf("settings: %v", err)
	}
	return s, mtd
}

// Balance returns the account's balance.
func (e *Env) Balance(accountID string) money.Amount {
	e.T.Helper()
	a, err := e.Store.Account(e.ctx(), accountID)
	if err != nil {
		e.T.Fatalf("account: %v", err)
	}
	return a.Balance
}

// TopUps lists the account's top-ups, oldest first.
func (e *Env) TopUps(accountID string) []topup.TopUp {
	e.T.Helper()
	list, _, err := e.Store.TopUps(e.ctx(), accountID, ledger.Page{Limit: 1000})
	if err != nil {
		e.T.Fatalf("top-ups: %v", err)
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list
}

// TopUp returns one top-up.
func (e *Env) TopUp(id string) topup.TopUp {
	e.T.Helper()
	t, err := e.Store.TopUpByID(e.ctx(), id)
	if err != nil {
		e.T.Fatalf("top-up %s: %v", id, err)
	}
	return t
}

// Open returns the account's open automatic top-ups, oldest first.
func (e *Env) Open(accountID string) []topup.TopUp {
	e.T.Helper()
	var out []topup.TopUp
	for _, t := range e.TopUps(accountID) {
		if t.Status.Open() && t.Trigger != topup.TriggerManual {
			out = append(out, t)
		}
	}
	return out
}

// Only returns the account's one top-up, failing when there are others.
func (e *Env) Only(accountID string) topup.TopUp {
	e.T.Helper()
	list := e.TopUps(accountID)
	if len(list) != 1 {
		e.T.Fatalf("want exactly one top-up, have %d: %+v", len(list), list)
	}
	return list[0]
}

// Credited lists the account's top_up ledger entries, oldest first, read
// from the store.
func (e *Env) Credited(accountID string) []ledger.Entry {
	e.T.Helper()
	all, err := e.Store.EntriesAfter(e.ctx(), accountID, 0)
	if err != nil {
		e.T.Fatalf("top-up entries: %v", err)
	}
	var out []ledger.Entry
	for _, en := range all {
		if en.Kind == ledger.KindTopUp {
			out = append(out, en)
		}
	}
	return out
}

// Notes returns what the account was told of type typ, oldest first.
func (e *Env) Notes(accountID, typ string) []topup.Notification {
	e.T.Helper()
	all, err := e.Store.Notifications(e.ctx(), accountID, 1000)
	if err != nil {
		e.T.Fatalf("notifications: %v", err)
	}
	var out []topup.Notification
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Type == typ {
			out = append(out, all[i])
		}
	}
	return out
}

// RunOnce makes one worker pass and returns how many top-ups it attempted.
func (e *Env) RunOnce(eng *topup.Engine) int {
	e.T.Helper()
	n, err := eng.RunOnce(e.ctx())
	if err != nil {
		e.T.Fatalf("run once: %v", err)
	}
	return n
}

// Sweep runs the sweep and returns the top-ups it created.
func (e *Env) Sweep(eng *topup.Engine) []string {
	e.T.Helper()
	ids, err := eng.Sweep(e.ctx())
	if err != nil {
		e.T.Fatalf("sweep: %v", err)
	}
	return ids
}

// Settle applies an outcome as a webhook or the 3-D Secure page does.
func (e *Env) Settle(id string, o topup.Outcome) topup.Settled {
	e.T.Helper()
	s, err := e.Store.Settle(e.ctx(), id, o, Backoff)
	if err != nil {
		e.T.Fatalf("settle %s: %v", id, err)
	}
	return s
}

// Verify fails the test unless store.Verify finds the ledger clean.
func (e *Env) Verify() {
	e.T.Helper()
	v, err := e.Store.Verify(e.ctx())
	if err != nil {
		e.T.Fatalf("verify: %v", err)
	}
	if len(v) != 0 {
		e.T.Fatalf("verify found %d violations: %+v", len(v), v)
	}
}

// Decide gives a processing charge its outcome, as the provider does later.
func (e *Env) Decide(chargeID string, to payment.ChargeStatus, declineCode string) payment.Charge {
	e.T.Helper()
	c, err := e.Sandbox.Decide(e.ctx(), chargeID, to, declineCode)
	if err != nil {
		e.T.Fatalf("decide %s: %v", chargeID, err)
	}
	return c
}

// SandboxCharges returns the sandbox's whole charge log, oldest first.
func (e *Env) SandboxCharges() []sandbox.Charge {
	e.T.Helper()
	var all []sandbox.Charge
	after := ""
	for {
		page, more, err := e.Sandbox.Charges(e.ctx(), 100, after)
		if err != nil {
			e.T.Fatalf("sandbox charges: %v", err)
		}
		all = append(all, page...)
		if !more || len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}
