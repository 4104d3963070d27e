// Package app wires one Topup together: the store, the group committer,
// the payment provider, the top-up engine, the notification worker, the API
// and the console on one HTTP server, with a graceful shutdown. `topup
// serve`, `topup demo`, `topup bench` and the console's tests all run the
// same wiring.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topup/topup/internal/authlimit"
	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/expiry"
	"github.com/topup/topup/internal/httpapi"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/retention"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/stripe"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/web"
)

// Config is what a running Topup needs besides its store.
type Config struct {
	// Addr is where the server listens (port 0 picks a free port); unused
	// when Listener is set.
	Addr string
	// Listener, when set, is where the server listens instead of Addr.
	Listener net.Listener
	// AdminKeyHash is the hash of the operator's key (ledger.HashKey).
	AdminKeyHash string
	// Settings are the operator's environment; the zero value is the
	// sandbox with the defaults ReadSettings gives.
	Settings Settings
	Logger   *slog.Logger // discarded when nil
	Clock    clock.Clock  // the wall clock when nil
	IDs      *ids.Generator
	// AuthLimit limits failed authentication per client address (zero:
	// the contract's 20 in 10 seconds).
	AuthLimit authlimit.Config
	// EnginePoll is how often the top-up engine looks for due top-ups
	// (zero: the engine's default, 1s).
	EnginePoll time.Duration
	// OnPass, when set, hears of every pass of the top-up engine: tests
	// wait on it instead of sleeping.
	OnPass func(attempted int, err error)
	// NoEngine, NoNotifier and NoExpiry leave the top-up engine, the
	// notification worker or the expiry worker stopped: tests that drive
	// them by hand, step by step.
	NoEngine, NoNotifier, NoExpiry bool
	// NoRefunder leaves the refund worker's loop stopped (the API still
	// sends each refund at once): tests that drive it by hand.
	NoRefunder bool
}

// App is one Topup: built by New, running after Start, stopped by
// Shutdown (or Wait).
type App struct {
	cfg       Config
	store     *sqlstore.DB
	committer *ledger.Committer
	engine    *topup.Engine
	notifier  *notify.Worker
	expiry    *expiry.Worker
	retention *retention.Worker
	refunder  *refund.Worker
	api       *httpapi.Server
	console   *web.Console
	links     *web.Links
	http      *http.Server
	listener  net.Listener
	serveErr  chan error
	log       *slog.Logger

	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds a Topup over store, listening but not yet serving: Start
// runs it. On success the App owns the store and Shutdown closes it; on
// error the caller still does.
func New(cfg Config, store *sqlstore.DB) (*App, error) {
	cfg.defaults()
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
	}
	a, err := build(cfg, store, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return a, nil
}

func (cfg *Config) defaults() {
	if cfg.Settings.Payments == "" {
		cfg.Settings.Payments, cfg.Settings.RetryBackoff, cfg.Settings.MaxTarget = "sandbox", time.Hour, 10_000*money.MicrosPerUnit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	if cfg.IDs == nil {
		cfg.IDs = ids.New(cfg.Clock)
	}
}

// defaultCommitWorkers is how many group commits run at once on
// PostgreSQL unless TOPUP_COMMIT_WORKERS says otherwise: while one group
// waits on its round trips and its WAL flush, the other plans and writes.
// More did not help on 2 cores: single debits fell from 5,200–5,900/s with
// two to 3,600–4,300/s with four (smaller groups, the same CPU per group);
// a machine with more cores may want more.
const defaultCommitWorkers = 2

// CommitWorkers is how many commit loops an instance on dialect runs when
// TOPUP_COMMIT_WORKERS is configured (zero: unset): one on SQLite, which
// has one writer.
func CommitWorkers(dialect string, configured int) int {
	if dialect == "sqlite" {
		return 1
	}
	return cmp.Or(configured, defaultCommitWorkers)
}

// build makes the committer, the provider, the engine, the notifier, the
// API and the console, and the HTTP server that serves the last two.
func build(cfg Config, store *sqlstore.DB, ln net.Listener) (*App, error) {
	set, log, c, g := cfg.Settings, cfg.Logger, cfg.Clock, cfg.IDs
	store.SetPaidCreditExpiry(set.PaidCreditExpiry)
	store.SetUsageKeyRetention(set.IdempotencyRetention)
	metrics := httpapi.NewMetrics(prometheus.NewRegistry())
	store.ObserveRetries(log, metrics.ObserveRetry)
	sqlite := store.DialectName() == "sqlite"
	workers := CommitWorkers(store.DialectName(), set.CommitWorkers)
	committer := ledger.NewCommitter(store.Ledger, ledger.CommitterConfig{Workers: workers, OnCommit: metrics.ObserveCommit, Logger: log})
	publicURL := set.PublicURL
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	consoleURL := strings.TrimRight(publicURL, "/") + web.Prefix
	// The console is served beside the API, on the same server.
	links := web.NewLinks(store.Console, c, consoleURL)
	deps := httpapi.Deps{Store: store.Ledger, Alerts: store.Outbox, Keys: store.Ledger, Committer: committer, Clock: c, IDs: g, Logger: log, Metrics: metrics, Billing: store.Payments, LoginLinks: links,
		Disputes: store.Refunds}
	apiCfg := httpapi.Config{AdminKeyHash: cfg.AdminKeyHash, MaxAmount: set.MaxAmount, MaxBodyBytes: set.MaxBody,
		MetricsPublic: set.MetricsPublic, PublicURL: publicURL, TrustedProxies: set.TrustedProxies,
		ConsoleURL: consoleURL, AuthLimit: cfg.AuthLimit, Business: set.Business}
	svcCfg := billing.Config{MaxTarget: set.MaxTarget, WebhooksAllowPrivate: set.WebhooksAllowPrivate, PublicURL: publicURL, ConsoleURL: consoleURL}
	var provider payment.Provider
	// engine is made below; the sandbox's refund and dispute events are
	// applied through it, by the code that applies Stripe's webhooks.
	var engine *topup.Engine
	if set.Payments == "stripe" {
		sp, err := stripe.New(set.Stripe)
		if err != nil {
			return nil, err
		}
		provider, deps.Webhooks, svcCfg.StripePublishableKey = sp, sp, sp.PublishableKey()
	} else {
		applyEvent := func(ctx context.Context, ev payment.Event) error {
			return topup.Events{Store: store, Backoff: engine.RetryBackoff(), Log: log, OnDispute: metrics.ObserveDispute}.Apply(ctx, ev)
		}
		sb := sandbox.New(store.Sandbox, sandbox.Config{Latency: set.SandboxLatency, BaseURL: publicURL, Clock: c, IDs: g, Events: applyEvent})
		provider, deps.Sandbox = sb, sandboxPages{sb}
	}
	engine = topup.NewEngine(store.Payments, provider, topup.Config{RetryBackoff: set.RetryBackoff, Lease: set.WorkerLease, PollInterval: cfg.EnginePoll,
		ReclaimOnStart: sqlite, Concurrency: 16, Clock: c, Logger: log, OnSettled: metrics.ObserveTopUp, OnPass: cfg.OnPass,
		// top_up.action_required events carry the console's page, as the
		// API's action_url does.
		PayURL: consoleURL + "/pay"})
	deps.Engine = engine
	committer.OnTopUp(engine.Kick)
	notifier, err := notify.New(store.Outbox, notify.Config{SMTPURL: set.SMTPURL, RetryBase: set.WebhookRetryBase, AllowPrivate: set.WebhooksAllowPrivate,
		ConsoleURL: consoleURL, Lease: set.WorkerLease,
		ReclaimOnStart: sqlite, Concurrency: 16, Clock: c, Logger: log})
	if err != nil {
		return nil, err
	}
	// Sweeps go through the committer: an expiration shares the debit
	// path's groups, locks and plan.
	expirer := expiry.New(store.Ledger, committer.Submit, expiry.Config{Interval: set.ExpiryInterval, Lease: set.WorkerLease, Clock: c, Logger: log})
	// Usage keys older than the retention are deleted in the background,
	// on one replica at a time.
	retainer, err := retention.New(store.Ledger, retention.Config{Retention: set.IdempotencyRetention, Lease: set.WorkerLease, Clock: c, Logger: log,
		OnPrune: metrics.ObservePruned})
	if err != nil {
		return nil, fmt.Errorf("TOPUP_IDEMPOTENCY_RETENTION: %w", err)
	}
	// Refunds are sent at once by the API and resumed by the worker's loop
	// (a lost answer, a crash, a refund the provider left pending).
	refunder := refund.NewWorker(store.Refunds, provider, refund.Config{Lease: set.WorkerLease, Clock: c, Logger: log})
	deps.Refunder, deps.Refunds = refunder, store.Refunds
	deps.Service = billing.New(svcCfg, billing.Deps{Store: store.Payments, Alerts: store.Outbox, Provider: provider, Sandbox: deps.Sandbox, Engine: engine, Clock: c, Logger: log})
	api := httpapi.New(apiCfg, deps)
	console := web.New(web.Config{PublicURL: publicURL}, web.Deps{Store: store.Console, Ledger: store.Ledger, Payments: store.Payments, Alerts: store.Outbox, Billing: deps.Service,
		Documents: api, AfterCharge: store.Refunds, Clock: c, Logger: log})
	srv := &http.Server{
		Handler:           console.Mount(api),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &App{cfg: cfg, store: store, committer: committer, engine: engine, notifier: notifier, expiry: expirer, retention: retainer, refunder: refunder, api: api,
		console: console, links: links, http: srv, listener: ln, serveErr: make(chan error, 1), log: log}, nil
}

// Start runs the committer, the workers (unless Config leaves one
// stopped) and the HTTP server.
func (a *App) Start() {
	a.committer.Start()
	if !a.cfg.NoEngine {
		a.engine.Start()
	}
	if !a.cfg.NoNotifier {
		a.notifier.Start()
	}
	if !a.cfg.NoExpiry {
		a.expiry.Start()
	}
	if !a.cfg.NoRefunder {
		a.refunder.Start()
	}
	a.retention.Start()
	go func() {
		err := a.http.Serve(a.listener)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.serveErr <- err
	}()
}

// URL is the base address the server listens on.
func (a *App) URL() string { return "http://" + a.listener.Addr().String() }

// Handler is the API with the console mounted beside it, as the server
// serves them.
func (a *App) Handler() http.Handler { return a.http.Handler }

// Store is the store the App writes, for tests and the demo's seeding.
func (a *App) Store() *sqlstore.DB { return a.store }

// API is the JSON API's server (tests read its route table).
func (a *App) API() *httpapi.Server { return a.api }

// Console is the billing console.
func (a *App) Console() *web.Console { return a.console }

// Links mints console sign-in links (the demo banner prints one).
func (a *App) Links() *web.Links { return a.links }

// Engine is the top-up engine, for tests that drive it by hand.
func (a *App) Engine() *topup.Engine { return a.engine }

// Wait serves until ctx ends (SIGTERM, SIGINT) or the server fails, then
// shuts down gracefully.
func (a *App) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-a.serveErr:
	}
	return errors.Join(err, a.Shutdown())
}

// Shutdown stops accepting requests, finishes those in flight, commits
// what is queued, stops the workers after their current pass and closes
// the database. A second call returns what the first did.
func (a *App) Shutdown() error {
	a.shutdownOnce.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := a.http.Shutdown(sctx)
		a.listener.Close() // when Start never served on it
		a.expiry.Stop()    // before the committer its sweeps go through
		a.retention.Stop() // before the store closes
		a.committer.Stop()
		a.engine.Stop()
		a.refunder.Stop()
		a.notifier.Stop()
		a.log.Info("stopped")
		a.shutdownErr = errors.Join(err, a.store.Close())
	})
	return a.shutdownErr
}
