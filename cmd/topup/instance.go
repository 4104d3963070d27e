package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/httpapi"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/stripe"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/web"
)

// openStore opens the database named by --db and applies its migrations.
func openStore(ctx context.Context, db string, c clock.Clock, g *ids.Generator) (*sqlstore.Store, error) {
	if isPostgres(db) {
		return postgres.Open(ctx, db, c, g)
	}
	path, ok := cutPrefix(db, "sqlite:")
	if !ok || path == "" {
		return nil, fmt.Errorf("--db must be sqlite:PATH or postgres://…, not %q", db)
	}
	return sqlite.Open(ctx, path, c, g)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// instanceConfig is what a running Topup needs.
type instanceConfig struct {
	Addr         string
	DB           string
	AdminKeyHash string
	Logger       *slog.Logger
	Settings     settings
}

// instance is one running Topup: database, committer and HTTP server.
type instance struct {
	store     *sqlstore.Store
	committer *ledger.Committer
	engine    *topup.Engine
	notifier  *notify.Worker
	api       *httpapi.Server
	links     *web.Links // console sign-in links, for the demo banner
	http      *http.Server
	listener  net.Listener
	serveErr  chan error
	log       *slog.Logger
	clock     clock.Clock
	ids       *ids.Generator
}

// URL is the base address the instance serves on.
func (in *instance) URL() string { return "http://" + in.listener.Addr().String() }

// startInstance opens the store, starts the committer and serves HTTP on
// cfg.Addr (port 0 picks a free port). The caller owns Shutdown.
func startInstance(ctx context.Context, cfg instanceConfig, store *sqlstore.Store) (*instance, error) {
	log := cfg.Logger
	c := clock.System
	g := ids.New(c)
	metrics := httpapi.NewMetrics(prometheus.NewRegistry())
	workers := 1
	if store.DialectName() == "postgres" {
		workers = 2
	}
	committer := ledger.NewCommitter(store, ledger.CommitterConfig{Workers: workers, OnCommit: metrics.ObserveCommit, Logger: log})
	committer.Start()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		committer.Stop()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	set := cfg.Settings
	if set.payments == "" {
		set.payments, set.retryBackoff, set.maxTarget = "sandbox", time.Hour, 10_000*money.MicrosPerUnit
	}
	publicURL := set.publicURL
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	// The console is served beside the API, on the same server.
	links := web.NewLinks(store, c, strings.TrimRight(publicURL, "/")+web.Prefix)
	deps := httpapi.Deps{Store: store, Committer: committer, Clock: c, IDs: g, Logger: log, Metrics: metrics, Billing: store, LoginLinks: links}
	apiCfg := httpapi.Config{AdminKeyHash: cfg.AdminKeyHash, MaxTarget: set.maxTarget, MaxAmount: set.maxAmount, MaxBodyBytes: set.maxBody,
		MetricsPublic: set.metricsPublic, PublicURL: publicURL, WebhooksAllowPrivate: set.webhooksAllowPrivate, TrustedProxies: set.trustedProxies}
	if set.payments == "stripe" {
		sp, err := stripe.New(set.stripe)
		if err != nil {
			ln.Close()
			committer.Stop()
			return nil, err
		}
		deps.Provider, deps.Webhooks, apiCfg.StripePublishableKey = sp, sp, sp.PublishableKey()
	} else {
		sb := sandbox.New(store, sandbox.Config{Latency: set.sandboxLatency, BaseURL: publicURL, Clock: c, IDs: g})
		deps.Provider, deps.Sandbox = sb, sandboxPages{sb}
	}
	engine := topup.NewEngine(store, deps.Provider, topup.Config{RetryBackoff: set.retryBackoff, Lease: set.workerLease, ReclaimOnStart: store.DialectName() == "sqlite", Concurrency: 16, Clock: c, Logger: log, OnSettled: metrics.ObserveTopUp,
		// top_up.action_required events carry the console's page, as the API's
		// action_url does.
		PayURL: strings.TrimRight(publicURL, "/") + web.Prefix + "/pay"})
	deps.Engine = engine
	committer.OnTopUp(engine.Kick)
	notifier, err := notify.New(store, notify.Config{SMTPURL: set.smtpURL, RetryBase: set.webhookRetryBase, AllowPrivate: set.webhooksAllowPrivate,
		ReclaimOnStart: store.DialectName() == "sqlite", Concurrency: 16, Clock: c, Logger: log})
	if err != nil {
		ln.Close()
		committer.Stop()
		return nil, err
	}
	apiCfg.ConsoleURL = strings.TrimRight(publicURL, "/") + web.Prefix
	api := httpapi.New(apiCfg, deps)
	console := web.New(web.Config{PublicURL: publicURL}, web.Deps{Store: store, API: api, Provider: deps.Provider, Clock: c, Logger: log})
	engine.Start()
	notifier.Start()
	srv := &http.Server{
		Handler:           console.Mount(api),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	in := &instance{store: store, committer: committer, engine: engine, notifier: notifier, api: api, links: links, http: srv, listener: ln, serveErr: make(chan error, 1), log: log, clock: c, ids: g}
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		in.serveErr <- err
	}()
	return in, nil
}

// wait serves until ctx ends (SIGTERM, SIGINT) or the server fails, then
// shuts down gracefully: stop accepting, finish in-flight requests, commit
// what is queued, close the database.
func (in *instance) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-in.serveErr:
	}
	return errors.Join(err, in.shutdown())
}

func (in *instance) shutdown() error {
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := in.http.Shutdown(sctx)
	in.committer.Stop()
	in.engine.Stop()
	in.notifier.Stop()
	in.log.Info("stopped")
	return errors.Join(err, in.store.Close())
}

// newLogger returns the process logger: JSON lines on w.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
