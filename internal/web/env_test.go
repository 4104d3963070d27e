package web_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/httpapi"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/web"
)

// The console's tests run a real Topup in process, wired by internal/app as
// `topup serve` wires it: SQLite in a temporary file, the group committer,
// the sandbox provider, the top-up engine, the API and the console on one
// HTTP server. The notification worker stays stopped: the tests that need
// it run its passes by hand.

const adminKey = "tpa_console_test_admin"

type env struct {
	t       *testing.T
	url     string
	store   *sqlstore.DB
	clock   clock.Clock
	console *web.Console
	server  *httpapi.Server
	// passes hears of the top-up engine's passes (with envOptions.engine),
	// at most one waiting: tests wait on it instead of sleeping.
	passes chan struct{}
}

type envOptions struct {
	clock  clock.Clock // the wall clock when nil
	engine bool        // run the top-up engine
	// allowPrivate lets webhook endpoints live on loopback, for a receiver
	// in the test (TOPUP_WEBHOOKS_ALLOW_PRIVATE).
	allowPrivate bool
	// noAuthLimit switches the failed-authentication limit off, for tests
	// that fail authentication on purpose many times from one address.
	noAuthLimit bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	c := o.clock
	if c == nil {
		c = clock.System
	}
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g := ids.New(c)
	store, err := app.OpenStore(ctx, "sqlite:"+filepath.Join(t.TempDir(), "topup.db"), c, g)
	if err != nil {
		t.Fatal(err)
	}
	cfg := app.Config{Addr: "127.0.0.1:0", AdminKeyHash: ledger.HashKey(adminKey), Logger: log, Clock: c, IDs: g,
		Settings: app.Settings{Payments: "sandbox", WebhooksAllowPrivate: o.allowPrivate}, EnginePoll: 50 * time.Millisecond,
		NoEngine: !o.engine, NoNotifier: true}
	passes := make(chan struct{}, 1)
	cfg.OnPass = func(int, error) {
		select {
		case passes <- struct{}{}:
		default:
		}
	}
	if o.noAuthLimit {
		cfg.AuthLimit.Failures = -1
	}
	a, err := app.New(cfg, store)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	a.Start()
	t.Cleanup(func() {
		if err := a.Shutdown(); err != nil {
			t.Errorf("shut down: %v", err)
		}
	})
	return &env{t: t, url: a.URL(), store: store, clock: c, console: a.Console(), server: a.API(), passes: passes}
}

// tlog sends the server's warnings to the test log.
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// api calls the JSON API with key and decodes the answer into out (when
// not nil); it returns the status.
func (e *env) api(method, path, key, body string, out any) int {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s answered %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// mustAPI is api that fails the test unless the status is want.
func (e *env) mustAPI(method, path, key, body string, want int, out any) {
	e.t.Helper()
	var raw json.RawMessage
	if got := e.api(method, path, key, body, &raw); got != want {
		e.t.Fatalf("%s %s answered %d %s; want %d", method, path, got, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

type account struct {
	ID  string `json:"id"`
	Key string `json:"api_key"`
}

// account creates an account with credit.
func (e *env) account(email, credit string) account {
	e.t.Helper()
	var a account
	e.mustAPI("POST", "/v1/accounts", adminKey, `{"email":"`+email+`"}`, 201, &a)
	if credit != "" {
		e.mustAPI("POST", "/v1/accounts/"+a.ID+"/credits", adminKey, `{"amount":"`+credit+`","idempotency_key":"grant","description":"welcome credit"}`, 201, nil)
	}
	return a
}

// usage records usage on an account.
func (e *env) usage(a account, amount, key, desc string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"amount": amount, "idempotency_key": key, "description": desc})
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/usage", adminKey, string(body), 201, nil)
}

// usageOf records usage on an account with a subject (a budget's).
func (e *env) usageOf(a account, amount, key, subject string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"amount": amount, "idempotency_key": key, "subject": subject})
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/usage", adminKey, string(body), 201, nil)
}

// loginLink asks the API for a sign-in link.
func (e *env) loginLink(a account) (string, time.Time) {
	e.t.Helper()
	var l struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expires_at"`
	}
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/login_links", adminKey, "", 201, &l)
	at, err := time.Parse(time.RFC3339Nano, l.ExpiresAt)
	if err != nil {
		e.t.Fatalf("expires_at %q: %v", l.ExpiresAt, err)
	}
	return l.URL, at
}

// browser is a plain HTTP client with cookies, for the tests that need no
// JavaScript.
type browser struct {
	t    *testing.T
	e    *env
	http *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is an answer as the browser got it.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) page {
	b.t.Helper()
	return b.do("GET", path, nil)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.do("POST", path, form)
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = b.e.url + path
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

var hiddenRE = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

// hidden returns the value of the first hidden field named name.
func (p page) hidden(t *testing.T, name string) string {
	t.Helper()
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] == name {
			return html.UnescapeString(m[2])
		}
	}
	t.Fatalf("the page has no field %s:\n%s", name, p.body)
	return ""
}

// signIn opens a sign-in link and presses Sign in; it returns the page
// the browser lands on.
func (b *browser) signIn(link string) page {
	b.t.Helper()
	p := b.get(link)
	if p.status != 200 {
		b.t.Fatalf("sign-in link answered %d:\n%s", p.status, p.body)
	}
	return b.post(web.Prefix+"/login", url.Values{"token": {p.hidden(b.t, "token")}, "form": {p.hidden(b.t, "form")}})
}

// signedIn returns a browser signed into a.
func (e *env) signedIn(a account) (*browser, string) {
	e.t.Helper()
	b := e.browser()
	link, _ := e.loginLink(a)
	p := b.signIn(link)
	if p.status != 303 || p.header.Get("Location") != web.Prefix+"/accounts/"+a.ID {
		e.t.Fatalf("Sign in answered %d to %q; want 303 to the account", p.status, p.header.Get("Location"))
	}
	home := b.get(web.Prefix + "/accounts/" + a.ID)
	return b, home.hidden(e.t, "csrf")
}

// shiftClock is the wall clock, moved back while a test writes history
// dated in the past.
type shiftClock struct {
	mu   sync.Mutex
	back time.Duration
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(-c.back)
}

// set moves the clock back by d; zero returns it to the wall.
func (c *shiftClock) set(d time.Duration) {
	c.mu.Lock()
	c.back = d
	c.mu.Unlock()
}
