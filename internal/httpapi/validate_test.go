package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/refund"
)

func init() {
	// The pages and receipts answer HTML, statements CSV and receipts PDF,
	// which the document declares as strings.
	asString := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		data, err := io.ReadAll(body)
		return string(data), err
	}
	for _, ct := range []string{"text/html", "text/csv", "application/pdf"} {
		openapi3filter.RegisterBodyDecoder(ct, asString)
	}
}

// validator is an http.RoundTripper that checks every request a test sends
// and every answer it gets against the OpenAPI document the server serves:
// a status, header or body the document does not declare fails the test.
type validator struct {
	doc    *openapi3.T
	router routers.Router
	next   http.RoundTripper

	mu sync.Mutex
	// invalid is set while the test sends requests that break the
	// document on purpose (no key, a JSON number for money): their
	// request must fail validation; their answer must still pass.
	invalid  bool
	errs     []string
	requests int
	// seen counts answers by "METHOD /path/template" and status.
	seen map[string]map[int]int
}

// newValidator loads the document the server at base serves.
func newValidator(t *testing.T, base string, next http.RoundTripper) *validator {
	t.Helper()
	resp, err := http.Get(base + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatalf("load the served openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the served openapi.json is not a valid document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("route the served openapi.json: %v", err)
	}
	return &validator{doc: doc, router: router, next: next, seen: map[string]map[int]int{}}
}

func (v *validator) fail(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	v.errs = append(v.errs, msg)
}

// RoundTrip validates req, sends it, and validates the answer.
func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	reset := func() { req.Body = io.NopCloser(bytes.NewReader(body)) }
	name := req.Method + " " + req.URL.Path
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		v.fail("%s: not in the document: %v", name, err)
		reset()
		return v.next.RoundTrip(req)
	}
	name = req.Method + " " + route.Path
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearer}}
	reset()
	reqErr := openapi3filter.ValidateRequest(req.Context(), in)
	v.mu.Lock()
	invalid := v.invalid
	v.requests++
	v.mu.Unlock()
	switch {
	case reqErr != nil && !invalid:
		v.fail("%s: the request breaks the document: %v", name, reqErr)
	case reqErr == nil && invalid:
		v.fail("%s: a request meant to break the document passes it (body %.200s)", name, body)
	}
	reset()
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(data)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		v.fail("%s: the answer %d breaks the document: %v\n%.500s", name, resp.StatusCode, err, data)
	}
	v.mu.Lock()
	if v.seen[name] == nil {
		v.seen[name] = map[int]int{}
	}
	v.seen[name][resp.StatusCode]++
	v.mu.Unlock()
	return resp, nil
}

// bearer is the document's bearerAuth as a validator sees it: a request
// must carry a bearer token (the server decides whether it is valid).
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if k, ok := strings.CutPrefix(h, "Bearer "); !ok || k == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// breaking runs fn with requests that break the document on purpose.
func (v *validator) breaking(fn func()) {
	v.mu.Lock()
	v.invalid = true
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.invalid = false
		v.mu.Unlock()
	}()
	fn()
}

// report fails t with what broke the document, and returns the statuses
// seen across all operations.
func (v *validator) report(t *testing.T) map[int]bool {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		t.Error(e)
	}
	statuses := map[int]bool{}
	var lines []string
	for name, byStatus := range v.seen {
		var codes []string
		for code, n := range byStatus {
			statuses[code] = true
			codes = append(codes, fmt.Sprintf("%d×%d", code, n))
		}
		sort.Strings(codes)
		lines = append(lines, name+" "+strings.Join(codes, " "))
	}
	sort.Strings(lines)
	t.Logf("%d requests validated over %d operations:\n%s", v.requests, len(v.seen), strings.Join(lines, "\n"))
	return statuses
}

// operations returns every "METHOD /path" of the document.
func (v *validator) operations() []string {
	var out []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIValidatesTheMainFlows drives a server with payments through
// what integrations do — accounts, credits, usage, cards, Automatic Top-Up,
// manual top-ups with a decline and 3-D Secure, alerts, budgets, webhook
// endpoints, notifications, API keys, and the errors of each — and checks
// every request and every answer against the document the server serves,
// so the published contract cannot drift from what the server does. Every
// operation of the document must be exercised, every event type must be
// seen and must match its own schema.
func TestOpenAPIValidatesTheMainFlows(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{maxBody: 64 << 10})
	v := newValidator(t, b.srv.URL, b.client.Transport)
	b.client = &http.Client{Transport: v, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f := &flow{billingBundle: b, v: v}

	f.operations(t)
	acct, key := f.accounts(t)
	f.ledger(t, acct, key)
	f.alerts(t, acct, key)
	cards := f.cards(t, acct, key)
	f.autoTopUp(t, acct, key, cards)
	f.topUps(t, acct, key)
	f.webhooks(t, acct, key)
	f.apiKeys(t, acct, key)
	f.errors(t, acct, key)
	f.events(t, acct, key)
	f.close(t, acct)
	f.rateLimit(t, acct)

	statuses := v.report(t)
	for _, code := range []int{200, 201, 202, 303, 400, 401, 402, 403, 404, 409, 413, 429} {
		if !statuses[code] {
			t.Errorf("no answer %d was validated", code)
		}
	}
	for _, op := range v.operations() {
		if v.seen[op] == nil {
			t.Errorf("%s was never called: add it to the flows", op)
		}
	}
}

// flow is the validation test's client: the billing bundle with its
// client validated.
type flow struct {
	*billingBundle
	v *validator
}

func (f *flow) operations(t *testing.T) {
	f.must(t, http.StatusOK, "GET", "/healthz", "", nil)
	f.must(t, http.StatusOK, "GET", "/v1/openapi.json", "", nil)
	f.must(t, http.StatusOK, "GET", "/metrics", f.adminKey, nil)
	f.must(t, http.StatusOK, "GET", "/v1/sandbox/charges?limit=5", f.adminKey, nil)
	// No provider webhooks in the sandbox; one without its signature
	// header breaks the document.
	f.v.breaking(func() {
		if status, _, _ := f.do(t, "POST", "/v1/stripe/webhook", "", `{"id": "evt_1"}`); status < 400 {
			t.Errorf("a Stripe webhook in the sandbox = %d", status)
		}
	})
}

func (f *flow) accounts(t *testing.T) (string, string) {
	created := f.must(t, http.StatusCreated, "POST", "/v1/accounts", f.adminKey, map[string]any{"email": "ada@example.com"})
	acct, key := str(t, created, "id"), str(t, created, "api_key")
	f.must(t, http.StatusCreated, "POST", "/v1/accounts", f.adminKey, map[string]any{"email": "bob@example.com", "currency": "EUR"})
	f.must(t, http.StatusOK, "GET", "/v1/accounts?limit=1", f.adminKey, nil)
	f.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct, key, nil)
	f.must(t, http.StatusOK, "PATCH", "/v1/accounts/"+acct, f.adminKey, map[string]any{"email": "ada@example.org"})
	f.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/spendable", key, nil)
	// The console is not served by this bundle: 404, documented.
	f.must(t, http.StatusNotFound, "POST", "/v1/accounts/"+acct+"/login_links", f.adminKey, nil)
	return acct, key
}

func (f *flow) ledger(t *testing.T, acct, key string) {
	base := "/v1/accounts/" + acct
	credit := map[string]any{"amount": "100.00", "idempotency_key": "credit-1", "description": "Welcome"}
	f.must(t, http.StatusCreated, "POST", base+"/credits", f.adminKey, credit)
	f.must(t, http.StatusOK, "POST", base+"/credits", f.adminKey, credit)
	f.must(t, http.StatusCreated, "POST", base+"/credits", f.adminKey, map[string]any{"amount": "1", "idempotency_key": "adj-1", "kind": "adjustment"})
	usage := map[string]any{"amount": "0.000125", "idempotency_key": "use-1", "description": "1 request", "subject": "api"}
	f.must(t, http.StatusCreated, "POST", base+"/usage", f.adminKey, usage)
	f.must(t, http.StatusOK, "POST", base+"/usage", f.adminKey, usage)
	f.must(t, http.StatusOK, "POST", "/v1/usage/batch", f.adminKey, map[string]any{"events": []any{
		map[string]any{"account_id": acct, "amount": "0.5", "idempotency_key": "batch-1"},
		map[string]any{"account_id": "acct_nope", "amount": "1", "idempotency_key": "batch-3"},
	}})
	f.must(t, http.StatusCreated, "POST", base+"/credits", f.adminKey, map[string]any{"amount": "0.01", "idempotency_key": "paid-1",
		"category": "paid", "priority": 5, "expires_at": "2030-01-01T00:00:00Z"})
	f.v.breaking(func() {
		f.must(t, http.StatusBadRequest, "POST", base+"/credits", f.adminKey, map[string]any{"amount": "5", "idempotency_key": "paid-2", "priority": 101})
		f.must(t, http.StatusBadRequest, "GET", base+"/grants?status=gone", key, nil)
	})
	page := f.must(t, http.StatusOK, "GET", base+"/transactions?limit=2", key, nil)
	last := objects(t, page["data"])[1]
	f.must(t, http.StatusOK, "GET", base+"/transactions?limit=2&starting_after="+str(t, last, "id"), key, nil)
	grants := f.must(t, http.StatusOK, "GET", base+"/grants?limit=2", key, nil)
	f.must(t, http.StatusOK, "GET", base+"/grants?status=active&starting_after="+str(t, objects(t, grants["data"])[0], "id"), key, nil)
	f.holds(t, acct, key)
	f.must(t, http.StatusOK, "GET", base, key, nil)
	f.voids(t, acct, key)
}

// voids voids a grant (and replays it), is refused for a grant no longer
// active, an unknown grant and an account key; and has the expiry worker's
// two events written: credit.expiring for a grant that expires within the
// hour, credit.expired for one whose expiry has come (made and swept
// through the store: the API takes only future expiries, and this bundle
// runs no expiry worker).
func (f *flow) voids(t *testing.T, acct, key string) {
	base := "/v1/accounts/" + acct
	made := f.must(t, http.StatusCreated, "POST", base+"/credits", f.adminKey, map[string]any{"amount": "2.00", "idempotency_key": "to-void",
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	void := base + "/grants/" + str(t, made, "grant_id") + "/void"
	f.must(t, http.StatusOK, "POST", void, f.adminKey, map[string]any{"idempotency_key": "void-1"})
	f.must(t, http.StatusOK, "POST", void, f.adminKey, map[string]any{"idempotency_key": "void-1"})
	f.must(t, http.StatusConflict, "POST", void, f.adminKey, map[string]any{"idempotency_key": "void-2"})
	f.must(t, http.StatusNotFound, "POST", base+"/grants/grt_nope/void", f.adminKey, map[string]any{"idempotency_key": "void-3"})
	f.must(t, http.StatusForbidden, "POST", void, key, map[string]any{"idempotency_key": "void-4"})
	f.v.breaking(func() {
		f.must(t, http.StatusBadRequest, "POST", void, f.adminKey, map[string]any{})
	})
	f.must(t, http.StatusCreated, "POST", base+"/credits", f.adminKey, map[string]any{"amount": "1.00", "idempotency_key": "to-warn",
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if n, err := f.store.WarnExpiring(t.Context(), time.Now(), 100); err != nil || n != 1 {
		t.Fatalf("warn of the grant that expires within the hour: %d, %v", n, err)
	}
	// A grant that expires a moment after it is made (the store refuses
	// one already expired), then the sweep that expires it.
	expired := ledger.Posting{AccountID: acct, Kind: ledger.KindCredit, Amount: money.MicrosPerUnit, IdempotencyKey: "to-expire", Call: ledger.ScopeCredit,
		Terms: ledger.GrantTerms{Category: ledger.Promotional, Priority: 10, ExpiresAt: time.Now().Add(20 * time.Millisecond).UTC().Truncate(time.Microsecond)}}
	for i, p := range []ledger.Posting{expired, ledger.Sweep(acct)} {
		if i == 1 {
			time.Sleep(time.Until(expired.Terms.ExpiresAt) + time.Millisecond)
		}
		if r, err := f.store.Post(t.Context(), []ledger.Posting{p}); err != nil || r[0].Err != nil {
			t.Fatalf("post %s: %v %+v", p.Kind, err, r)
		}
	}
}

func (f *flow) holds(t *testing.T, acct, key string) {
	base := "/v1/accounts/" + acct + "/holds"
	hold := map[string]any{"amount": "10", "idempotency_key": "hold-1", "subject": "gpu-hour", "expires_in": 3600}
	h := f.must(t, http.StatusCreated, "POST", base, f.adminKey, hold)
	f.must(t, http.StatusOK, "POST", base, f.adminKey, hold)
	f.must(t, http.StatusPaymentRequired, "POST", base, f.adminKey, map[string]any{"amount": "100000", "idempotency_key": "hold-big"})
	f.must(t, http.StatusForbidden, "POST", base, key, map[string]any{"amount": "1", "idempotency_key": "hold-owner"})
	id := str(t, h, "id")
	capture := map[string]any{"amount": "4", "idempotency_key": "cap-1", "description": "41 minutes"}
	f.must(t, http.StatusCreated, "POST", base+"/"+id+"/capture", f.adminKey, capture)
	f.must(t, http.StatusOK, "POST", base+"/"+id+"/capture", f.adminKey, capture)
	f.must(t, http.StatusConflict, "POST", base+"/"+id+"/capture", f.adminKey, map[string]any{"idempotency_key": "cap-2"})
	f.must(t, http.StatusConflict, "POST", base+"/"+id+"/release", f.adminKey, nil)
	other := str(t, f.must(t, http.StatusCreated, "POST", base, f.adminKey, map[string]any{"amount": "2", "idempotency_key": "hold-2"}), "id")
	f.must(t, http.StatusOK, "POST", base+"/"+other+"/release", f.adminKey, nil)
	f.must(t, http.StatusOK, "POST", base+"/"+other+"/release", f.adminKey, nil)
	f.must(t, http.StatusNotFound, "POST", base+"/hld_nope/release", f.adminKey, nil)
	f.v.breaking(func() {
		f.must(t, http.StatusBadRequest, "POST", base, f.adminKey, map[string]any{"amount": "1", "idempotency_key": "hold-3", "expires_in": 0})
		f.must(t, http.StatusBadRequest, "GET", base+"?status=gone", key, nil)
	})
	f.must(t, http.StatusOK, "GET", base+"?status=captured", key, nil)
	page := f.must(t, http.StatusOK, "GET", base+"?limit=1", key, nil)
	f.must(t, http.StatusOK, "GET", base+"?starting_after="+str(t, objects(t, page["data"])[0], "id"), key, nil)
}

func (f *flow) alerts(t *testing.T, acct, key string) {
	base := "/v1/accounts/" + acct
	f.must(t, http.StatusOK, "PUT", base+"/low_balance_alerts", key, map[string]any{"thresholds": []string{"90", "50"}})
	f.must(t, http.StatusOK, "GET", base+"/low_balance_alerts", key, nil)
	budget := f.must(t, http.StatusCreated, "POST", base+"/budgets", key, map[string]any{"kind": "one_time", "limit": "20", "subject": "gpu"})
	id := str(t, budget, "id")
	monthly := f.must(t, http.StatusCreated, "POST", base+"/budgets", key, map[string]any{"kind": "monthly", "limit": "500"})
	f.must(t, http.StatusOK, "PUT", base+"/budgets/"+str(t, monthly, "id"), key, map[string]any{"limit": "400"})
	f.must(t, http.StatusOK, "GET", base+"/budgets", key, nil)
	f.must(t, http.StatusOK, "GET", base+"/budgets/"+id, key, nil)
	// 50 %, 80 % and 100 % of the gpu budget, and the 90.00 threshold.
	for i, amount := range []string{"10", "6", "4"} {
		f.must(t, http.StatusCreated, "POST", base+"/usage", f.adminKey, map[string]any{"amount": amount, "subject": "gpu",
			"idempotency_key": fmt.Sprintf("gpu-%d", i)})
	}
	f.must(t, http.StatusOK, "DELETE", base+"/budgets/"+id, key, nil)
}

func (f *flow) cards(t *testing.T, acct, key string) []string {
	base := "/v1/accounts/" + acct + "/payment_methods"
	visa := str(t, f.must(t, http.StatusCreated, "POST", base, key, map[string]any{"payment_method": "pm_card_visa"}), "id")
	mc := str(t, f.must(t, http.StatusCreated, "POST", base, key, map[string]any{"payment_method": "pm_card_mastercard"}), "id")
	f.must(t, http.StatusOK, "POST", base+"/"+mc+"/default", key, nil)
	f.must(t, http.StatusOK, "GET", base+"?limit=1", key, nil)

	// The hosted card page: setup, the sandbox's page, the return.
	setup := str(t, f.must(t, http.StatusOK, "POST", base+"/setup", key, nil), "url")
	f.form(t, http.StatusOK, "GET", setup, nil)
	resp := f.form(t, http.StatusSeeOther, "POST", setup, url.Values{"card": {"pm_card_visa"}})
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("the sandbox page sent no Location: %v", err)
	}
	added := f.must(t, http.StatusOK, "GET", loc.RequestURI(), "", nil)
	f.must(t, http.StatusConflict, "GET", loc.RequestURI(), "", nil)
	f.must(t, http.StatusOK, "DELETE", base+"/"+str(t, added, "id"), key, nil)
	return []string{visa, mc}
}

func (f *flow) autoTopUp(t *testing.T, acct, key string, cards []string) {
	path := "/v1/accounts/" + acct + "/auto_top_up"
	f.must(t, http.StatusOK, "GET", path, key, nil)
	// Below the threshold: saving starts a top-up, up to the monthly limit.
	f.must(t, http.StatusOK, "PUT", path, key, map[string]any{"enabled": true, "threshold": "100", "target": "110", "monthly_limit": "29.75",
		"payment_method": cards[0]})
	f.waitFor(t, acct, "top_up.succeeded")
	// The limit is used up: the next crossing tells the customer once.
	f.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/usage", f.adminKey, map[string]any{"amount": "15", "idempotency_key": "limit-1"})
	f.waitFor(t, acct, "auto_top_up.limit_reached")
	f.must(t, http.StatusOK, "GET", path+"/audit?limit=5", key, nil)
}

func (f *flow) topUps(t *testing.T, acct, key string) {
	base := "/v1/accounts/" + acct + "/top_ups"
	paid := f.must(t, http.StatusCreated, "POST", base, key, map[string]any{"amount": "10", "idempotency_key": "buy-1"})
	f.must(t, http.StatusOK, "POST", base, key, map[string]any{"amount": "10", "idempotency_key": "buy-1"})
	f.must(t, http.StatusOK, "GET", base+"/"+str(t, paid, "id"), key, nil)
	declined := str(t, f.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/payment_methods", key,
		map[string]any{"payment_method": "pm_card_chargeDeclined"}), "id")
	f.must(t, http.StatusPaymentRequired, "POST", base, key, map[string]any{"amount": "5", "idempotency_key": "buy-2", "payment_method": declined})

	threeDS := str(t, f.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/payment_methods", key,
		map[string]any{"payment_method": "pm_card_authenticationRequired"}), "id")
	pending := f.must(t, http.StatusCreated, "POST", base, key, map[string]any{"amount": "7", "idempotency_key": "buy-3", "payment_method": threeDS})
	action := str(t, pending, "action_url")
	f.form(t, http.StatusOK, "GET", action, nil)
	f.form(t, http.StatusSeeOther, "POST", action, url.Values{"result": {"ok"}})
	f.form(t, http.StatusOK, "POST", action, url.Values{"result": {"ok"}})
	f.must(t, http.StatusOK, "GET", base+"?limit=10", key, nil)
	f.must(t, http.StatusOK, "DELETE", "/v1/accounts/"+acct+"/payment_methods/"+declined, key, nil)
	f.refunds(t, acct, key, str(t, paid, "id"))
	f.documents(t, acct, key, str(t, paid, "id"))
	f.disputes(t, acct, key, str(t, paid, "id"))
}

// refunds refunds part of a paid top-up (and replays it), is refused for
// more than is left, a key reused for another amount, an account key and
// another account's top-up, and lists the refunds. Part of the top-up is
// left for the dispute that follows.
func (f *flow) refunds(t *testing.T, acct, key, paid string) {
	path := "/v1/accounts/" + acct + "/top_ups/" + paid + "/refunds"
	f.must(t, http.StatusCreated, "POST", path, f.adminKey, map[string]any{"amount": "1", "idempotency_key": "refund-1", "reason": "duplicate"})
	f.must(t, http.StatusOK, "POST", path, f.adminKey, map[string]any{"amount": "1.00", "idempotency_key": "refund-1", "reason": "duplicate"})
	f.must(t, http.StatusBadRequest, "POST", path, f.adminKey, map[string]any{"amount": "9.01", "idempotency_key": "refund-2"})
	f.must(t, http.StatusConflict, "POST", path, f.adminKey, map[string]any{"amount": "2", "idempotency_key": "refund-1"})
	f.must(t, http.StatusForbidden, "POST", path, key, map[string]any{"amount": "1", "idempotency_key": "refund-3"})
	f.must(t, http.StatusNotFound, "POST", "/v1/accounts/"+acct+"/top_ups/tu_nope/refunds", f.adminKey, map[string]any{"idempotency_key": "refund-4"})
	f.must(t, http.StatusOK, "GET", path+"?limit=5", key, nil)
	f.must(t, http.StatusNotFound, "GET", "/v1/accounts/"+acct+"/top_ups/tu_nope/refunds", key, nil)
}

// documents fetches a receipt in both formats and a statement in both.
func (f *flow) documents(t *testing.T, acct, key, paid string) {
	base := "/v1/accounts/" + acct
	for _, accept := range []string{"", "application/pdf", "text/html"} {
		req, err := http.NewRequest("GET", f.srv.URL+base+"/top_ups/"+paid+"/receipt", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := cmp.Or(accept, "application/pdf"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
			t.Errorf("receipt with Accept %q: %d %s; want 200 %s", accept, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
	}
	f.must(t, http.StatusNotFound, "GET", base+"/top_ups/tu_nope/receipt", key, nil)
	month := time.Now().UTC().Format("2006-01")
	f.must(t, http.StatusOK, "GET", base+"/statement?month="+month, key, nil)
	f.must(t, http.StatusOK, "GET", base+"/statement?month="+month+"&format=csv", f.adminKey, nil)
	f.v.breaking(func() {
		f.must(t, http.StatusBadRequest, "GET", base+"/statement?month=2026-13", key, nil)
		f.must(t, http.StatusBadRequest, "GET", base+"/statement?month="+month+"&format=xml", key, nil)
	})
}

// disputes refunds part of a paid top-up at the provider, disputes its
// charge in the sandbox, closes the dispute and lists it.
func (f *flow) disputes(t *testing.T, acct, key, topUpID string) {
	var charge string
	for _, c := range objects(t, f.must(t, http.StatusOK, "GET", "/v1/sandbox/charges?limit=100", f.adminKey, nil)["data"]) {
		if c["top_up_id"] == topUpID {
			charge = str(t, c, "id")
		}
	}
	// A refund made at the provider directly (Stripe's Dashboard), as its
	// refund.updated event is applied: the customer is told
	// (top_up.refunded).
	if _, ok, err := f.store.ApplyRefund(t.Context(), refund.Word{ProviderID: "re_flow", ChargeID: charge, AmountMinor: 100,
		Status: refund.Succeeded}); err != nil || !ok {
		t.Fatalf("a provider refund of %s: %t, %v", charge, ok, err)
	}
	path := "/v1/sandbox/charges/" + charge + "/dispute"
	f.must(t, http.StatusOK, "POST", path, f.adminKey, nil)
	f.must(t, http.StatusOK, "POST", path, f.adminKey, map[string]any{"reason": "general"})
	open := f.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/disputes", key, nil)
	if ds := objects(t, open["data"]); len(ds) != 1 || ds[0]["status"] != "open" || ds[0]["top_up_id"] != topUpID || ds[0]["amount_withdrawn"] != "8.00" {
		// The refunds flow refunded 1.00 through the API before, and 1.00
		// was refunded at the provider above.
		t.Errorf("disputes while open = %v, want one, open, 8.00 withdrawn (10.00 less the 2.00 refunded)", open)
	}
	f.must(t, http.StatusOK, "POST", path+"/close", f.adminKey, map[string]any{"outcome": "won"})
	f.must(t, http.StatusConflict, "POST", path+"/close", f.adminKey, map[string]any{"outcome": "lost"})
	f.must(t, http.StatusNotFound, "POST", "/v1/sandbox/charges/pi_unknown/dispute", f.adminKey, nil)
	f.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/disputes?limit=1", f.adminKey, nil)
	f.must(t, http.StatusNotFound, "GET", "/v1/accounts/acct_nope/disputes", f.adminKey, nil)
	f.must(t, http.StatusBadRequest, "GET", "/v1/accounts/"+acct+"/disputes?starting_after=dp_nope", key, nil)
}

func (f *flow) webhooks(t *testing.T, acct, key string) {
	base := "/v1/accounts/" + acct + "/webhook_endpoints"
	ep := str(t, f.must(t, http.StatusCreated, "POST", base, key, map[string]any{"url": "https://93.184.215.14/topup"}), "id")
	f.must(t, http.StatusOK, "GET", base, key, nil)
	f.must(t, http.StatusOK, "GET", base+"/"+ep+"/deliveries", key, nil)
	f.must(t, http.StatusOK, "POST", base+"/"+ep+"/rotate_secret", key, nil)
	events := objects(t, f.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/notifications?limit=1", key, nil)["data"])
	if len(events) == 0 {
		t.Fatal("no notifications to resend")
	}
	f.must(t, http.StatusAccepted, "POST", base+"/"+ep+"/resend", f.adminKey, map[string]any{"event_id": str(t, events[0], "id")})
	f.must(t, http.StatusOK, "DELETE", base+"/"+ep, key, nil)
}

func (f *flow) apiKeys(t *testing.T, acct, key string) {
	base := "/v1/accounts/" + acct + "/api_keys"
	created := f.must(t, http.StatusCreated, "POST", base, key, map[string]any{"name": "ci"})
	f.must(t, http.StatusOK, "GET", base, key, nil)
	f.must(t, http.StatusOK, "DELETE", base+"/"+str(t, created, "id"), key, nil)
}

// errors sends what integrations get wrong and checks each answer is the
// documented error.
func (f *flow) errors(t *testing.T, acct, key string) {
	base := "/v1/accounts/" + acct
	other, otherKey := f.account(t, "")
	f.must(t, http.StatusBadRequest, "GET", base+"/transactions?starting_after=ent_nope", key, nil)
	f.must(t, http.StatusBadRequest, "PUT", base+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "30", "target": "6"})
	f.must(t, http.StatusForbidden, "POST", base+"/credits", key, map[string]any{"amount": "1", "idempotency_key": "mine"})
	f.must(t, http.StatusNotFound, "GET", "/v1/accounts/"+other, key, nil)
	f.must(t, http.StatusNotFound, "GET", base+"/top_ups/tu_nope", key, nil)
	f.must(t, http.StatusNotFound, "GET", base+"/budgets/bud_nope", otherKey, nil)
	f.must(t, http.StatusConflict, "POST", base+"/usage", f.adminKey, map[string]any{"amount": "2", "idempotency_key": "use-1"})
	f.v.breaking(func() {
		f.must(t, http.StatusRequestEntityTooLarge, "POST", base+"/usage", f.adminKey,
			`{"amount": "1", "idempotency_key": "big", "description": "`+strings.Repeat("x", 70<<10)+`"}`)
		f.must(t, http.StatusUnauthorized, "GET", base, "", nil)
		f.must(t, http.StatusBadRequest, "POST", base+"/usage", f.adminKey, `{"amount": 1, "idempotency_key": "number"}`)
		f.must(t, http.StatusBadRequest, "POST", base+"/usage", f.adminKey, map[string]any{"amount": "1.0000001", "idempotency_key": "bad-1"})
		f.must(t, http.StatusOK, "POST", "/v1/usage/batch", f.adminKey, map[string]any{"events": []any{
			map[string]any{"account_id": acct, "amount": "-1", "idempotency_key": "batch-negative"}}})
		f.must(t, http.StatusBadRequest, "POST", "/v1/accounts", f.adminKey, map[string]any{"email": "x@example.com", "plan": "gold"})
		f.must(t, http.StatusBadRequest, "GET", base+"/top_ups?limit=1000", key, nil)
	})
	f.must(t, http.StatusUnauthorized, "GET", base, "tpk_not_a_key", nil)
}

// events checks every notification against the schema of its type, and
// that every type was seen.
func (f *flow) events(t *testing.T, acct, key string) {
	f.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/credits", f.adminKey, map[string]any{"amount": "0.50", "idempotency_key": "last"})
	f.waitFor(t, acct, "budget.exhausted")
	seen := map[string]bool{}
	mapping := f.v.doc.Components.Schemas["Event"].Value.Discriminator.Mapping
	after := ""
	for {
		page := f.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/notifications?limit=100"+after, key, nil)
		for _, e := range objects(t, page["data"]) {
			typ := str(t, e, "type")
			seen[typ] = true
			ref, ok := mapping[typ]
			if !ok {
				t.Errorf("event %s has a type the document does not map", typ)
				continue
			}
			schema := f.v.doc.Components.Schemas[strings.TrimPrefix(ref.Ref, "#/components/schemas/")].Value
			if err := schema.VisitJSON(e, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s breaks its schema: %v\n%v", typ, err, e)
			}
			after = "&starting_after=" + str(t, e, "id")
		}
		if page["has_more"] != true {
			break
		}
	}
	for _, typ := range eventTypes {
		if !seen[typ] && typ != "auto_top_up.disabled" {
			t.Errorf("no %s event was seen", typ)
		}
	}
}

// close closes the account, which switches Automatic Top-Up off and tells
// the customer.
func (f *flow) close(t *testing.T, acct string) {
	f.must(t, http.StatusOK, "PATCH", "/v1/accounts/"+acct, f.adminKey, map[string]any{"status": "closed"})
	f.must(t, http.StatusConflict, "POST", "/v1/accounts/"+acct+"/credits", f.adminKey, map[string]any{"amount": "1", "idempotency_key": "closed"})
	e := f.waitFor(t, acct, "auto_top_up.disabled")
	ref := f.v.doc.Components.Schemas["AutoTopUpDisabledEvent"].Value
	if err := ref.VisitJSON(e, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("auto_top_up.disabled breaks its schema: %v\n%v", err, e)
	}
}

// rateLimit fails authentication until the address is blocked.
func (f *flow) rateLimit(t *testing.T, acct string) {
	for range 40 {
		status, _, _ := f.do(t, "GET", "/v1/accounts/"+acct, "tpk_wrong", nil)
		if status == http.StatusTooManyRequests {
			return
		}
	}
	t.Error("40 failed authentications were never answered 429")
}

// waitFor waits for the account's newest event of type typ and returns it.
func (f *flow) waitFor(t *testing.T, acct, typ string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		page := f.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/notifications?limit=100", f.adminKey, nil)
		for _, e := range objects(t, page["data"]) {
			if e["type"] == typ {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s after 15 s", typ, acct)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// form sends a browser's request to a page (a full URL on the server) and
// checks the status; redirects are not followed.
func (f *flow) form(t *testing.T, want int, method, u string, values url.Values) *http.Response {
	t.Helper()
	var body io.Reader
	if values != nil {
		body = strings.NewReader(values.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if values != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %.300s", method, u, resp.StatusCode, want, data)
	}
	return resp
}
