// Package httpapi is Topup's JSON API over net/http: every route is listed
// in routes.go; handlers take their dependencies from Server.
package httpapi

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/authlimit"
	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/topup"
)

// Config holds what the API needs besides its collaborators.
type Config struct {
	// AdminKeyHash is the hex SHA-256 of the operator's key.
	AdminKeyHash string
	// MaxBodyBytes limits request bodies; the default fits a 10,000-event
	// batch with long descriptions.
	MaxBodyBytes int64
	// MaxAmount is TOPUP_MAX_AMOUNT: the largest amount of one usage,
	// credit or top-up (default input.DefaultMaxAmount, 1,000,000.00).
	MaxAmount money.Amount
	// MetricsPublic is TOPUP_METRICS_PUBLIC: /metrics answers without the
	// admin key.
	MetricsPublic bool
	// PublicURL is where browsers reach this service (hosted pages, the 3-D
	// Secure page, return URLs).
	PublicURL string
	// ConsoleURL is where the console is served (PublicURL + "/console"),
	// when it is: action_url then opens the console's 3-D Secure page.
	ConsoleURL string
	// TrustedProxies is TOPUP_TRUSTED_PROXIES: connections from these
	// addresses have their client read from X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// AuthLimit limits failed authentication per client address; its zero
	// value is the contract's 20 failures in 10 seconds, on Deps.Clock.
	AuthLimit authlimit.Config
	// Business is the operator as receipts name it
	// (TOPUP_BUSINESS_NAME, TOPUP_BUSINESS_ADDRESS, TOPUP_BUSINESS_TAX_ID).
	Business receipt.Business
}

// Server serves the API.
type Server struct {
	cfg       Config
	store     ledger.Store
	committer *ledger.Committer
	clock     clock.Clock
	ids       *ids.Generator
	log       *slog.Logger
	metrics   *Metrics
	billing   Billing
	svc       *billing.Service
	engine    *topup.Engine
	webhooks  WebhookParser
	sandbox   Sandbox
	logins    LoginLinks
	alerts    Alerts
	keys      ledger.KeyStore
	holds     ledger.HoldStore
	// statements reads monthly statements; nil serves none.
	statements Statements
	// disputes keeps disputes and applies refund and dispute events; nil
	// lists none and acknowledges those events unapplied.
	disputes  Disputes
	authLimit *authlimit.Limiter
	lastUsed  *lastUsed
	handler   http.Handler
	// openAPI is the document served, naming cfg.PublicURL.
	openAPI []byte
	// refunder and refunds serve refunds; nil serves none.
	refunder Refunder
	refunds  RefundStore
}

// Deps are the collaborators of the API.
type Deps struct {
	Store     ledger.Store
	Committer *ledger.Committer
	Clock     clock.Clock
	IDs       *ids.Generator
	Logger    *slog.Logger
	Metrics   *Metrics
	Billing   Billing
	// Service holds the operations the API shares with the console and
	// the simulator (manual top-ups, settings, cards, 3-D Secure, alerts,
	// budgets, endpoints); the console is given the same one.
	Service *billing.Service
	Engine  *topup.Engine
	// Webhooks verifies and reads provider webhooks (Stripe); nil refuses
	// them.
	Webhooks WebhookParser
	// Sandbox serves the sandbox's hosted pages and charge log; nil with
	// Stripe.
	Sandbox Sandbox
	// LoginLinks mints console sign-in links; nil when no console is
	// served (login_links answers 404).
	LoginLinks LoginLinks
	// Alerts keeps low balance alerts, budgets, webhook endpoints and the
	// notification list (*sqlstore.Outbox); nil serves none of them.
	Alerts Alerts
	// Keys keeps accounts' API keys; nil takes Store when it implements
	// ledger.KeyStore (as *sqlstore.Ledger does).
	Keys ledger.KeyStore
	// Holds keeps holds; nil takes Store when it implements
	// ledger.HoldStore (as *sqlstore.Ledger does).
	Holds ledger.HoldStore
	// Statements reads monthly statements; nil takes Store when it
	// implements Statements (as *sqlstore.Ledger does).
	Statements Statements
	// Refunder sends refunds (*refund.Worker) and Refunds lists them
	// (*sqlstore.Refunds); nil serves none (404).
	Refunder Refunder
	Refunds  RefundStore
	// Disputes keeps disputes and applies the provider's refund and
	// dispute events (*sqlstore.Refunds); nil takes Billing when it
	// implements Disputes.
	Disputes Disputes
}

// DefaultMaxBodyBytes is TOPUP_MAX_BODY's default, 16 MiB: it fits a
// 10,000-event batch with long descriptions.
const DefaultMaxBodyBytes = 16 << 20

// New returns the API server.
func New(cfg Config, d Deps) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if cfg.MaxAmount <= 0 {
		cfg.MaxAmount = input.DefaultMaxAmount
	}
	s := &Server{cfg: cfg, store: d.Store, committer: d.Committer, clock: d.Clock, ids: d.IDs, log: d.Logger, metrics: d.Metrics,
		billing: d.Billing, svc: d.Service, engine: d.Engine, webhooks: d.Webhooks, sandbox: d.Sandbox, logins: d.LoginLinks}
	s.alerts = d.Alerts
	s.refunder, s.refunds = d.Refunder, d.Refunds
	if s.keys = d.Keys; s.keys == nil {
		s.keys, _ = d.Store.(ledger.KeyStore)
	}
	if s.holds = d.Holds; s.holds == nil {
		s.holds, _ = d.Store.(ledger.HoldStore)
	}
	if s.statements = d.Statements; s.statements == nil {
		s.statements, _ = d.Store.(Statements)
	}
	if s.disputes = d.Disputes; s.disputes == nil {
		s.disputes, _ = d.Billing.(Disputes)
	}
	if cfg.AuthLimit.Clock == nil {
		cfg.AuthLimit.Clock = d.Clock
	}
	s.authLimit = authlimit.New(cfg.AuthLimit)
	s.lastUsed = newLastUsed()
	doc, err := openAPIFor(cfg.PublicURL)
	if err != nil {
		// The embedded document is checked by the tests; serve it as is.
		doc = openAPI
	}
	s.openAPI = doc
	s.handler = s.secureHeaders(s.routes())
	return s
}

// Content-Security-Policy of the API's answers: JSON loads nothing and is
// framed nowhere; the API's few HTML pages (the sandbox's card page, the
// 3-D Secure page) may run their own and Stripe's scripts but are framed
// nowhere either, so no other site can dress them up to steal a click.
const (
	apiCSP  = "default-src 'none'; frame-ancestors 'none'"
	pageCSP = "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

// secureHeaders sets the headers every answer carries, errors and the 404
// fallback included: nosniff, no framing, and HSTS when the public URL is
// https (a browser that reached us once over TLS never tries plain HTTP).
func (s *Server) secureHeaders(next http.Handler) http.Handler {
	hsts := strings.HasPrefix(s.cfg.PublicURL, "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", apiCSP)
		h.Set("X-Frame-Options", "DENY")
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// clean answers 404 for a path that holds U+0000 or invalid UTF-8 (no id
// can hold them, so nothing is there) and 400 naming the parameter for
// such a query value, before any handler passes them to the database.
func clean(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !input.Clean(r.URL.Path) {
			writeJSON(w, http.StatusNotFound, errorBody{Error: errorObject{Code: apperr.NotFound, Message: "no such resource"}})
			return
		}
		if err := input.Query(r.URL.Query()); err != nil {
			_, obj := errorObjectOf(err)
			writeJSON(w, http.StatusBadRequest, errorBody{Error: obj})
			return
		}
		next(w, r)
	}
}

// cleanForm refuses, naming the field, a form value of an HTML page's POST
// that holds U+0000 or invalid UTF-8.
func cleanForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return apperr.Invalidf("", "the form cannot be read: %v", err)
	}
	return input.Query(r.PostForm)
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// principal is who is calling: the operator, or one account with one of
// its keys.
type principal struct {
	admin   bool
	account ledger.Account
	key     ledger.APIKey
}

type ctxKey int

const (
	principalKey ctxKey = iota
	requestIDKey
)

func (s *Server) authenticate(r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || key == "" {
		return principal{}, apperr.New(apperr.Unauthenticated, "send Authorization: Bearer <key>")
	}
	hash := ledger.HashKey(key)
	if subtle.ConstantTimeCompare([]byte(hash), []byte(s.cfg.AdminKeyHash)) == 1 {
		return principal{admin: true}, nil
	}
	var acct ledger.Account
	var k ledger.APIKey
	var err error
	if s.keys != nil {
		acct, k, err = s.keys.KeyByHash(r.Context(), hash)
	} else {
		acct, err = s.store.AccountByKeyHash(r.Context(), hash)
	}
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return principal{}, apperr.New(apperr.Unauthenticated, "the key is not valid")
		}
		return principal{}, err
	}
	if k.ID != "" {
		s.touchKey(r.Context(), k)
	}
	return principal{account: acct, key: k}, nil
}

// access says who may call a route.
type access int

const (
	public    access = iota // anyone
	adminOnly               // the operator
	owner                   // the operator, or the account named in the path
)

// guard authenticates the caller and checks it may act on the account in
// the path: an account key on another account's resource answers 404, and
// on an admin-only route of its own account 403.
func (s *Server) guard(a access, next http.HandlerFunc) http.HandlerFunc {
	if a == public {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		// The key is checked first, so that a valid key is never refused
		// by the limit; only a request without one counts and is refused.
		p, err := s.authenticate(r)
		if err != nil {
			if apperr.CodeOf(err) == apperr.Unauthenticated {
				addr := authlimit.ClientAddr(r, s.cfg.TrustedProxies)
				if wait, blocked := s.authLimit.Blocked(addr); blocked {
					w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
					s.fail(w, r, apperr.New(apperr.RateLimited, "too many failed authentications from this address: try again later"))
					return
				}
				s.authLimit.Fail(addr)
			}
			s.fail(w, r, err)
			return
		}
		if !p.admin {
			id := r.PathValue("id")
			switch {
			case id != "" && id != p.account.ID:
				s.fail(w, r, apperr.NotFoundf("no account %s", id))
				return
			case a == adminOnly:
				s.fail(w, r, apperr.New(apperr.Forbidden, "this route needs the admin key"))
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	}
}

func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey).(principal)
	return p
}

// fail writes err; internal errors are logged with the request id and
// shown only as "internal error".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, obj := errorObjectOf(err)
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r), "err", err)
	}
	writeJSON(w, status, errorBody{Error: obj})
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// statusRecorder remembers the status a handler wrote, for logs and metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer (a
// long statement moves its write deadline).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument wraps a route with the request id, the body limit, the access
// log and the metrics.
func (s *Server) instrument(pattern string, next http.Handler) http.Handler {
	requests := s.metrics.requests.MustCurryWith(prometheus.Labels{"route": pattern})
	latency := s.metrics.latency.WithLabelValues(pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 200 {
			id = s.ids.New(ids.Request)
		}
		w.Header().Set("Request-Id", id)
		if r.ContentLength > s.cfg.MaxBodyBytes {
			// Refused before a byte is read, whatever the body holds.
			r.Body.Close()
			s.fail(w, r, tooLarge(s.cfg.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
		took := time.Since(start)
		latency.Observe(took.Seconds())
		requests.WithLabelValues(statusClass(rec.status)).Inc()
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", rec.status), slog.Duration("took", took))
	})
}

func statusClass(code int) string {
	switch {
	case code < 300:
		return "2xx"
	case code < 400:
		return "3xx"
	case code < 500:
		return statusText[code]
	}
	return "5xx"
}

var statusText = map[int]string{400: "400", 401: "401", 402: "402", 403: "403", 404: "404", 405: "405", 409: "409", 413: "413", 429: "429"}
