// Package web is the console: the customer's billing pages, served by the
// same binary and the same http.Server as the API. Pages are rendered on the
// server with html/template from embedded files; the little JavaScript there
// is (the Automatic Payments dialog and its preview) is a static file, so
// the Content-Security-Policy allows no inline script at all.
//
// Every page of an account lives under /console/accounts/{id}/…: a session
// of another account gets 404, as the API answers a foreign key. Sessions
// come only from one-time sign-in links (POST /v1/accounts/{id}/login_links).
package web

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/console"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// Prefix is where the console is mounted.
const Prefix = "/console"

// Store is what the console keeps itself (*sqlstore.Console): sign-in
// links, sessions and the daily totals of the chart and the preview.
// Methods return *apperr.Error with NotFound for unknown ids.
type Store interface {
	LinkStore
	LoginLink(ctx context.Context, tokenHash string) (console.LoginLink, error)
	UseLoginLink(ctx context.Context, tokenHash string, sess console.Session) (console.Session, error)
	ConsoleSession(ctx context.Context, idHash string) (console.Session, error)
	EndConsoleSession(ctx context.Context, idHash string) error
	DailyTotals(ctx context.Context, accountID string, since time.Time) ([]ledger.Day, error)
}

// Ledger is the ledger the console reads (*sqlstore.Ledger): the account,
// its entries and grants, and the installation's sign-in form key in meta.
type Ledger interface {
	Account(ctx context.Context, id string) (ledger.Account, error)
	Entries(ctx context.Context, accountID string, p ledger.Page) ([]ledger.Entry, bool, error)
	// Credit is what remains of the account's active grants, by category.
	Credit(ctx context.Context, accountID string) (paid, promotional money.Amount, err error)
	// Grants lists the account's grants, newest first, of status only
	// when it is not empty; an unknown StartingAfter is Invalid.
	Grants(ctx context.Context, accountID string, status ledger.GrantStatus, p ledger.Page) ([]ledger.Grant, bool, error)
	// GrantsExpiringBefore lists the account's active grants that expire
	// before before, soonest first, at most limit.
	GrantsExpiringBefore(ctx context.Context, accountID string, before time.Time, limit int) ([]ledger.Grant, error)
	// Holds lists the account's holds, newest first, of status only when
	// it is not empty.
	Holds(ctx context.Context, accountID string, status ledger.HoldStatus, p ledger.Page) ([]ledger.Hold, bool, error)
	// GrantsByID returns those of ids that are the account's grants.
	GrantsByID(ctx context.Context, accountID string, ids []string) (map[string]ledger.Grant, error)
	// Meta and SetMetaIfAbsent keep the installation's sign-in form key.
	Meta(ctx context.Context, key string) (string, bool, error)
	SetMetaIfAbsent(ctx context.Context, key, value string) (string, error)
}

// Payments is what the console reads of settings, cards and top-ups
// (*sqlstore.Payments); it writes them through billing.Service, except the
// default card.
type Payments interface {
	Settings(ctx context.Context, accountID string) (topup.Settings, money.Amount, error)
	Cards(ctx context.Context, accountID string) ([]topup.Card, error)
	SetDefaultCard(ctx context.Context, accountID, cardID string) (topup.Card, error)
	CustomerID(ctx context.Context, accountID string) (string, error)
	TopUp(ctx context.Context, accountID, id string) (topup.TopUp, error)
	TopUps(ctx context.Context, accountID string, p ledger.Page) ([]topup.TopUp, bool, error)
}

// Alerts is what the console reads of alerts, budgets, endpoints and
// notifications (*sqlstore.Outbox); it writes them through
// billing.Service.
type Alerts interface {
	LowBalanceAlerts(ctx context.Context, accountID string) ([]alert.Threshold, error)
	Budgets(ctx context.Context, accountID string, p ledger.Page) ([]alert.Budget, bool, error)
	NotificationPage(ctx context.Context, accountID string, p ledger.Page) ([]topup.Notification, bool, error)
	Endpoints(ctx context.Context, accountID string, p ledger.Page) ([]notify.Endpoint, bool, error)
	DeliveryAttempts(ctx context.Context, accountID, endpointID string, p ledger.Page) ([]notify.Attempt, bool, error)
}

// Documents writes receipts and statements (*httpapi.Server): the console
// answers them with the API's own code, after its own sign-in check. Each
// returns an error before anything is written, for the console to show.
type Documents interface {
	WriteReceipt(w http.ResponseWriter, r *http.Request, accountID, topUpID string) error
	WriteStatement(w http.ResponseWriter, r *http.Request, accountID string) error
}

// Config holds what the console needs besides its collaborators.
type Config struct {
	// PublicURL is where browsers reach Topup; the console is PublicURL +
	// "/console". An https URL makes the session cookie Secure.
	PublicURL string
	// SessionTTL is how long a sign-in lasts (default 12 hours).
	SessionTTL time.Duration
}

// Deps are the console's collaborators.
type Deps struct {
	Store    Store
	Ledger   Ledger
	Payments Payments
	Alerts   Alerts
	// Billing holds the operations the console shares with the API: the
	// same manual top-up, settings save, card removal, card setup, 3-D
	// Secure answer, low balance alerts, budgets and webhook endpoints,
	// so every refusal is the API's.
	Billing *billing.Service
	// Documents serves receipts and statements; nil serves none (404).
	Documents Documents
	// AfterCharge reads the refunds and disputes the top-up history shows;
	// nil shows none.
	AfterCharge AfterCharge
	Clock       clock.Clock
	Logger      *slog.Logger
}

// AfterCharge reads what happened after the charge of a page of top-ups:
// their refunds and disputes by top-up id (*sqlstore.Refunds, in two
// queries).
type AfterCharge interface {
	AfterCharge(ctx context.Context, accountID string, topUpIDs []string) (map[string][]refund.Refund, map[string][]refund.DisputeRecord, error)
}

// Console serves the console's pages.
type Console struct {
	cfg      Config
	store    Store
	ledger   Ledger
	payments Payments
	outbox   Alerts
	svc      *billing.Service
	docs     Documents
	after    AfterCharge
	clock    clock.Clock
	log      *slog.Logger
	pages    map[string]*template.Template
	mux      *http.ServeMux
	secure   bool
	formKey  formKey
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// New returns the console.
func New(cfg Config, d Deps) *Console {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if d.Clock == nil {
		d.Clock = clock.System
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, store: d.Store, ledger: d.Ledger, payments: d.Payments, outbox: d.Alerts, svc: d.Billing, docs: d.Documents, after: d.AfterCharge, clock: d.Clock, log: d.Logger,
		pages: parsePages(), secure: strings.HasPrefix(cfg.PublicURL, "https://")}
	c.mux = c.routes()
	return c
}

// URL is where the console is reached: PublicURL + "/console".
func (c *Console) URL() string { return strings.TrimRight(c.cfg.PublicURL, "/") + Prefix }

// Mount returns the server's handler: the console under /console, and
// everything else to api. The API's route table stays its own, so its
// OpenAPI test sees only API routes.
func (c *Console) Mount(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Prefix || strings.HasPrefix(r.URL.Path, Prefix+"/") {
			c.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the console with its security headers, and logs each
// request without its query (sign-in and 3-D Secure tokens travel there).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	c.serve(rec, r)
	c.log.LogAttrs(r.Context(), slog.LevelInfo, "console request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", rec.status), slog.Duration("took", time.Since(start)))
}

// statusRecorder remembers the status a handler wrote, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (c *Console) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp(false))
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// Sign-in links and action pages carry their token in the URL: no
	// Referer ever takes it elsewhere.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if c.secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, Prefix+"/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if r.Method == http.MethodPost {
		// A form the browser says another site sent is refused before
		// anything else: CSRF tokens are the rule, this is the belt.
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			c.errorPage(w, r, http.StatusForbidden, "This form came from another site", "For your safety, Topup only takes forms sent from its own pages.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	}
	// No id holds U+0000 or invalid UTF-8, and no form field may: they are
	// refused here, once, before any page hands them to the database.
	if !input.Clean(r.URL.Path) {
		c.errorPage(w, r, http.StatusNotFound, "Page not found", "There is no such page in the console.")
		return
	}
	bad := input.Query(r.URL.Query())
	if bad == nil && r.Method == http.MethodPost && r.ParseForm() == nil {
		bad = input.Query(r.PostForm)
	}
	if bad != nil {
		c.errorPage(w, r, http.StatusBadRequest, "This form holds characters Topup cannot take",
			"The field "+apperr.As(bad).Field+" holds a NUL character or bytes that are not UTF-8 text. Go back, correct it and try again.")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// csp is the Content-Security-Policy: scripts and styles only from the
// console's own static files, forms only to itself (and to Stripe
// Checkout, where "Add payment method" redirects), no framing. With stripe
// it also lets the 3-D Secure page run Stripe.js and its challenge frame.
func csp(stripe bool) string {
	script, connect, frame := "'self'", "'self'", ""
	if stripe {
		script, connect = "'self' https://js.stripe.com", "'self' https://api.stripe.com"
		frame = "; frame-src https://js.stripe.com https://hooks.stripe.com"
	}
	return "default-src 'none'; script-src " + script + "; style-src 'self'; img-src 'self' data:; connect-src " + connect +
		"; form-action 'self' https://checkout.stripe.com; frame-ancestors 'none'; base-uri 'none'" + frame
}

func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	files := http.StripPrefix(Prefix+"/static/", http.FileServer(http.FS(static)))
	mux.Handle("GET "+Prefix+"/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			// A folder is not a page: no listing of the static files.
			c.errorPage(w, r, http.StatusNotFound, "Page not found", "There is no such page in the console.")
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET "+Prefix+"/{$}", c.home)
	mux.HandleFunc("GET "+Prefix+"/login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"/login", c.login)
	mux.HandleFunc("POST "+Prefix+"/logout", c.logout)
	mux.HandleFunc("GET "+Prefix+"/pay/{top_up_id}", c.payPage)
	mux.HandleFunc("POST "+Prefix+"/pay/{top_up_id}", c.payAnswer)

	acct := Prefix + "/accounts/{id}"
	mux.HandleFunc("GET "+acct, c.signedIn(c.overview))
	mux.HandleFunc("POST "+acct+"/top_ups", c.signedIn(c.addCredit))
	mux.HandleFunc("GET "+acct+"/top_ups", c.signedIn(c.history))
	mux.HandleFunc("GET "+acct+"/credit", c.signedIn(c.credit))
	mux.HandleFunc("GET "+acct+"/top_ups/{top_up_id}/receipt", c.signedIn(c.receipt))
	mux.HandleFunc("GET "+acct+"/statement", c.signedIn(c.statement))
	mux.HandleFunc("GET "+acct+"/payment_methods", c.signedIn(c.methods))
	mux.HandleFunc("POST "+acct+"/payment_methods/setup", c.signedIn(c.setupCard))
	mux.HandleFunc("GET "+acct+"/payment_methods/return", c.signedIn(c.setupReturn))
	mux.HandleFunc("POST "+acct+"/payment_methods/{pm}/default", c.signedIn(c.makeDefault))
	mux.HandleFunc("POST "+acct+"/payment_methods/{pm}/remove", c.signedIn(c.removeCard))
	mux.HandleFunc("POST "+acct+"/auto_top_up", c.signedIn(c.saveSettings))
	mux.HandleFunc("GET "+acct+"/auto_top_up/preview", c.signedIn(c.preview))
	mux.HandleFunc("GET "+acct+"/low_balance_alerts", c.signedIn(c.alerts))
	mux.HandleFunc("POST "+acct+"/low_balance_alerts", c.signedIn(c.saveAlerts))
	mux.HandleFunc("POST "+acct+"/low_balance_alerts/remove", c.signedIn(c.removeAlert))
	mux.HandleFunc("GET "+acct+"/budgets", c.signedIn(c.budgets))
	mux.HandleFunc("POST "+acct+"/budgets", c.signedIn(c.createBudget))
	mux.HandleFunc("POST "+acct+"/budgets/{budget_id}", c.signedIn(c.changeBudget))
	mux.HandleFunc("POST "+acct+"/budgets/{budget_id}/delete", c.signedIn(c.deleteBudget))
	mux.HandleFunc("GET "+acct+"/notifications", c.signedIn(c.notifications))
	mux.HandleFunc("POST "+acct+"/webhook_endpoints", c.signedIn(c.createEndpoint))
	mux.HandleFunc("POST "+acct+"/webhook_endpoints/{endpoint_id}/delete", c.signedIn(c.deleteEndpoint))
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusNotFound, "Page not found", "There is no such page in the console.")
	})
	return mux
}

// request is one signed-in request: its session and account.
type request struct {
	*http.Request
	sess console.Session
	acct ledger.Account
}

// base is the path of the account's pages.
func (q *request) base() string { return Prefix + "/accounts/" + q.acct.ID }

// signedIn admits a request of a live session on its own account: without
// a session the page asks to sign in (401); another account's pages answer
// 404, as if they did not exist; a POST without the session's CSRF token
// answers 403 and changes nothing.
func (c *Console) signedIn(next func(http.ResponseWriter, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := c.session(r)
		if !ok {
			c.renderStatus(w, r, http.StatusUnauthorized, "signedout", view{Title: "Sign in"})
			return
		}
		if r.PathValue("id") != sess.AccountID {
			c.errorPage(w, r, http.StatusNotFound, "Page not found", "There is no such page in the console.")
			return
		}
		if r.Method == http.MethodPost && !validCSRF(r, sess.CSRF) {
			c.errorPage(w, r, http.StatusForbidden, "This form has expired", "The form was missing its security token. Go back, reload the page and try again.")
			return
		}
		acct, err := c.ledger.Account(r.Context(), sess.AccountID)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		next(w, &request{Request: r, sess: sess, acct: acct})
	}
}

// view is what every page's template gets.
type view struct {
	Title   string
	Nav     string // the current section: billing, credit, methods, history, alerts, budgets, notifications
	Account *ledger.Account
	Base    string // the account's pages: /console/accounts/{id}
	CSRF    string
	Notice  *notice
	Page    any
}

// notice is a message at the top of a page.
type notice struct {
	Kind     string // success, error, info, warning
	Text     string
	Link     string
	LinkText string
}

func (q *request) view(title, nav string, page any) view {
	return view{Title: title, Nav: nav, Account: &q.acct, Base: q.base(), CSRF: q.sess.CSRF, Page: page}
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, v view) {
	c.renderStatus(w, r, http.StatusOK, name, v)
}

func (c *Console) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t, ok := c.pages[name]
	if !ok {
		c.log.Error("console: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.ErrorContext(r.Context(), "console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// errorPage answers status with a page that says what happened.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	v := view{Title: title, Page: text}
	if sess, ok := c.session(r); ok {
		// Signed in: keep the header, so the way back is one click.
		if acct, err := c.ledger.Account(r.Context(), sess.AccountID); err == nil {
			v.Account, v.Base, v.CSRF = &acct, Prefix+"/accounts/"+acct.ID, sess.CSRF
		}
	}
	c.renderStatus(w, r, status, "error", v)
}

// fail answers an error from below: a refusal with its code's status, and
// anything unexpected as a logged internal error.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch apperr.CodeOf(err) {
	case apperr.NotFound:
		c.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such page in the console.")
	case apperr.Invalid:
		c.errorPage(w, r, http.StatusBadRequest, "That did not work", fieldMessage(apperr.As(err).Message))
	case apperr.RequestInProgress, apperr.Conflict, apperr.IdempotencyConflict, apperr.AccountClosed, apperr.LimitExceeded:
		c.errorPage(w, r, http.StatusConflict, "That did not work", apperr.As(err).Message+".")
	default:
		c.log.ErrorContext(r.Context(), "console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		c.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Topup could not do that. Try again in a moment.")
	}
}

// redirect sends the browser to path after a form (303, so a reload does
// not post again).
func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// isNotFound reports whether err is a NotFound refusal.
func isNotFound(err error) bool { return apperr.CodeOf(err) == apperr.NotFound }
