package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/sqlstore"
)

// pgLikeStore refuses text holding U+0000 or invalid UTF-8 the way
// PostgreSQL does (a driver error, not a refusal of ours), so that tests on
// SQLite see what a handler that passed such an id or cursor to the
// database would answer on PostgreSQL: 500.
type pgLikeStore struct{ *sqlstore.Ledger }

var errPGEncoding = errors.New(`pq: invalid byte sequence for encoding "UTF8": 0x00`)

func (s pgLikeStore) Account(ctx context.Context, id string) (ledger.Account, error) {
	if !input.Clean(id) {
		return ledger.Account{}, errPGEncoding
	}
	return s.Ledger.Account(ctx, id)
}

func (s pgLikeStore) Entries(ctx context.Context, accountID string, p ledger.Page) ([]ledger.Entry, bool, error) {
	if !input.Clean(accountID) || !input.Clean(p.StartingAfter) {
		return nil, false, errPGEncoding
	}
	return s.Ledger.Entries(ctx, accountID, p)
}

func (s pgLikeStore) Accounts(ctx context.Context, p ledger.Page) ([]ledger.Account, bool, error) {
	if !input.Clean(p.StartingAfter) {
		return nil, false, errPGEncoding
	}
	return s.Ledger.Accounts(ctx, p)
}

func setupPGLike(t *testing.T, cfg Config) *bundle {
	t.Helper()
	return setupWith(t, cfg, func(s *sqlstore.DB) ledger.Store { return pgLikeStore{s.Ledger} })
}

// TestHostileTextInBodiesIsRefused: a string holding U+0000, invalid UTF-8
// or a lone surrogate escape (which encoding/json would quietly turn into
// U+FFFD) is refused with 400 naming its field, and nothing is written.
func TestHostileTextInBodiesIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct {
		name, call, body, field string
	}{
		{"NUL in description", "usage", `{"amount": "1", "idempotency_key": "k", "description": "a\u0000b"}`, "description"},
		{"NUL in subject", "usage", `{"amount": "1", "idempotency_key": "k", "subject": "\u0000"}`, "subject"},
		{"NUL in key", "usage", `{"amount": "1", "idempotency_key": "k\u0000"}`, "idempotency_key"},
		{"invalid UTF-8 in subject", "usage", "{\"amount\": \"1\", \"idempotency_key\": \"k\", \"subject\": \"caf\xe9\"}", "subject"},
		{"lone surrogate in description", "usage", `{"amount": "1", "idempotency_key": "k", "description": "\ud800"}`, "description"},
		{"NUL in credit description", "credits", `{"amount": "1", "idempotency_key": "k", "description": "\u0000"}`, "description"},
		{"invalid UTF-8 in credit key", "credits", "{\"amount\": \"1\", \"idempotency_key\": \"\xff\xfe\"}", "idempotency_key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, _ := b.funded(t, "10.00")
			before := b.state(t, id)
			status, body, _ := b.do(t, "POST", "/v1/accounts/"+id+"/"+tt.call, b.adminKey, tt.body)
			wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field)
			if after := b.state(t, id); after.Balance != before.Balance || len(after.Entries) != len(before.Entries) {
				t.Errorf("a refused request changed the ledger: %v -> %v", before, after)
			}
		})
	}
	t.Run("budget subject and account email", func(t *testing.T) {
		t.Parallel()
		id, _ := b.account(t, "")
		status, body, _ := b.do(t, "POST", "/v1/accounts/"+id+"/budgets", b.adminKey, `{"subject": "gpu\u0000", "kind": "monthly", "limit": "5.00"}`)
		wantError(t, status, body, http.StatusBadRequest, "invalid", "subject")
		status, body, _ = b.do(t, "POST", "/v1/accounts", b.adminKey, `{"email": "ada\u0000@example.com"}`)
		wantError(t, status, body, http.StatusBadRequest, "invalid", "email")
	})
}

// TestBatchEventWithHostileTextFailsAlone: a bad string in one event is
// that event's error, named events[i].field; the others are applied.
func TestBatchEventWithHostileTextFailsAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.funded(t, "10.00")
	ev := func(i int, extra string) string {
		return fmt.Sprintf(`{"account_id": %q, "amount": "1", "idempotency_key": "e%d"%s}`, id, i, extra)
	}
	body := `{"events": [` + strings.Join([]string{
		ev(0, ""),
		ev(1, ", \"subject\": \"\xff\""),
		ev(2, ""),
		ev(3, `, "description": "x\u0000"`),
		ev(4, `, "idempotency_key": "\udc00"`),
	}, ",") + `]}`
	// Event 4 names its key twice; the second, a lone surrogate, wins.
	out := b.must(t, http.StatusOK, "POST", "/v1/usage/batch", b.adminKey, body)
	results := out["results"].([]any)
	want := map[int]string{1: "events[1].subject", 3: "events[3].description", 4: "events[4].idempotency_key"}
	for i, r := range results {
		e, _ := r.(map[string]any)["error"].(map[string]any)
		switch field, bad := want[i]; {
		case bad && (e == nil || e["field"] != field || e["code"] != "invalid"):
			t.Errorf("results[%d] = %v; want invalid on %s", i, r, field)
		case !bad && e != nil:
			t.Errorf("results[%d] = %v; want applied", i, r)
		}
	}
	if got := b.state(t, id); got.Balance != "8.00" {
		t.Errorf("balance %s after 2 good events of 1.00; want 8.00", got.Balance)
	}
}

// TestHostileQueryAndPath: a query value holding U+0000 or invalid UTF-8 is
// 400 naming the parameter; an id in the path holding one is simply not
// found. Neither reaches the database (where PostgreSQL answered 500).
func TestHostileQueryAndPath(t *testing.T) {
	t.Parallel()
	b := setupPGLike(t, Config{})
	id, _ := b.funded(t, "10.00")
	for _, tt := range []struct{ path, field string }{
		{"/v1/accounts/" + id + "/transactions?starting_after=%00", "starting_after"},
		{"/v1/accounts?starting_after=tx%ff", "starting_after"},
		{"/v1/accounts/" + id + "/spendable?subject=%00", "subject"},
		{"/v1/accounts/" + id + "/spendable?subject=%c3%28", "subject"},
	} {
		status, body, _ := b.do(t, "GET", tt.path, b.adminKey, nil)
		wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field)
	}
	for _, path := range []string{
		"/v1/accounts/acct%00x",
		"/v1/accounts/%ff%fe/transactions",
		"/v1/accounts/" + id + "/top_ups/tu%00x",
		"/v1/accounts/" + id + "/budgets/%00",
	} {
		status, body, _ := b.do(t, "GET", path, b.adminKey, nil)
		wantError(t, status, body, http.StatusNotFound, "not_found", "")
	}
}

// TestLengthsCountCharacters: 200 × "é" is 400 bytes but 200 characters,
// within every limit; one character over a limit is refused.
func TestLengthsCountCharacters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.funded(t, "10.00")
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/usage", b.adminKey, map[string]any{
		"amount": "0.01", "idempotency_key": strings.Repeat("é", 255), "subject": strings.Repeat("é", 255), "description": strings.Repeat("é", 1000)})
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/credits", b.adminKey, map[string]any{
		"amount": "0.01", "idempotency_key": strings.Repeat("é", 200), "description": strings.Repeat("é", 1000)})
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/budgets", b.adminKey, map[string]any{
		"subject": strings.Repeat("é", 255), "kind": "monthly", "limit": "5.00"})
	b.must(t, http.StatusOK, "GET", "/v1/accounts/"+id+"/spendable?subject="+strings.Repeat("%C3%A9", 255), b.adminKey, nil)
	for _, tt := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"amount": "0.01", "idempotency_key": strings.Repeat("é", 256)}, "idempotency_key"},
		{map[string]any{"amount": "0.01", "idempotency_key": "k2", "subject": strings.Repeat("é", 256)}, "subject"},
		{map[string]any{"amount": "0.01", "idempotency_key": "k3", "description": strings.Repeat("é", 1001)}, "description"},
	} {
		status, body, _ := b.do(t, "POST", "/v1/accounts/"+id+"/usage", b.adminKey, tt.body)
		wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field)
	}
}

// TestMaxAmount: one amount above TOPUP_MAX_AMOUNT (default 1,000,000.00)
// is 400 on amount, in a batch on events[i].amount.
func TestMaxAmount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.funded(t, "10.00")
	for _, call := range []string{"usage", "credits"} {
		status, body, _ := b.do(t, "POST", "/v1/accounts/"+id+"/"+call, b.adminKey, map[string]any{"amount": "1000000.000001", "idempotency_key": "big"})
		wantError(t, status, body, http.StatusBadRequest, "invalid", "amount")
	}
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/credits", b.adminKey, map[string]any{"amount": "1000000.00", "idempotency_key": "max"})
	out := b.must(t, http.StatusOK, "POST", "/v1/usage/batch", b.adminKey, map[string]any{"events": []any{
		map[string]any{"account_id": id, "amount": "1", "idempotency_key": "b0"},
		map[string]any{"account_id": id, "amount": "9223372036854.775807", "idempotency_key": "b1"},
	}})
	results := out["results"].([]any)
	if e, _ := results[1].(map[string]any)["error"].(map[string]any); e == nil || e["field"] != "events[1].amount" {
		t.Errorf("results[1] = %v; want invalid on events[1].amount", results[1])
	}
	if got := b.state(t, id); got.Balance != "1000009.00" {
		t.Errorf("balance %s; want 1000009.00", got.Balance)
	}

	c := setupWith(t, Config{MaxAmount: 50_000_000}, nil) // TOPUP_MAX_AMOUNT=50.00
	cid, _ := c.account(t, "")
	status, body, _ := c.do(t, "POST", "/v1/accounts/"+cid+"/credits", c.adminKey, map[string]any{"amount": "50.01", "idempotency_key": "a"})
	wantError(t, status, body, http.StatusBadRequest, "invalid", "amount")
	c.must(t, http.StatusCreated, "POST", "/v1/accounts/"+cid+"/credits", c.adminKey, map[string]any{"amount": "50.00", "idempotency_key": "b"})
}

// TestBodyLimit: a body over TOPUP_MAX_BODY is 413 whatever it holds (even
// malformed JSON, which the old streaming decoder answered 400), and the
// default 16 MiB takes a full batch of 10,000 events with long
// descriptions.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	small := setupWith(t, Config{MaxBodyBytes: 1 << 10}, nil)
	id, _ := small.funded(t, "10.00")
	for _, body := range []string{`{"amount": 1, ` + strings.Repeat("x", 2<<10), `{"events": [` + strings.Repeat("{},", 1<<10) + `{}]}`} {
		for _, path := range []string{"/v1/accounts/" + id + "/usage", "/v1/usage/batch"} {
			status, out, _ := small.do(t, "POST", path, small.adminKey, body)
			wantError(t, status, out, http.StatusRequestEntityTooLarge, "payload_too_large", "")
		}
	}

	b := setup(t)
	id, _ = b.funded(t, "10.00")
	var sb strings.Builder
	sb.WriteString(`{"events": [`)
	desc := strings.Repeat("é", 500) // 1,000 bytes
	for i := range MaxBatch {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"account_id": %q, "amount": "0.000001", "idempotency_key": "event-%05d", "subject": "model-large-v2", "description": %q}`, id, i, desc)
	}
	sb.WriteString(`]}`)
	if sb.Len() <= 8<<20 {
		t.Fatalf("the batch is %d bytes; it should be over the old 8 MiB limit", sb.Len())
	}
	out := b.must(t, http.StatusOK, "POST", "/v1/usage/batch", b.adminKey, sb.String())
	for i, r := range out["results"].([]any) {
		if e := r.(map[string]any)["error"]; e != nil {
			t.Fatalf("results[%d]: %v", i, e)
		}
	}
	if got := str(t, b.must(t, http.StatusOK, "GET", "/v1/accounts/"+id, b.adminKey, nil), "balance"); got != "9.99" {
		t.Errorf("balance %s after 10,000 × 0.000001; want 9.99", got)
	}
}

// TestSecureHeaders: every answer carries nosniff and a CSP that forbids
// framing — JSON, errors, the 404 fallback, the OpenAPI document — and HSTS
// when the public URL is https.
func TestSecureHeaders(t *testing.T) {
	t.Parallel()
	for _, publicURL := range []string{"https://topup.example", "http://127.0.0.1:8080"} {
		b := setupWith(t, Config{PublicURL: publicURL}, nil)
		for _, tt := range []struct{ path, key string }{
			{"/healthz", ""}, {"/v1/openapi.json", ""}, {"/v1/accounts", ""}, {"/v1/accounts", b.adminKey},
			{"/v1/no/such/route", ""}, {"/v1/accounts/acct%00", b.adminKey}, {"/metrics", b.adminKey},
		} {
			req, _ := http.NewRequest("GET", b.srv.URL+tt.path, nil)
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			checkSecureHeaders(t, tt.path, resp.Header, strings.HasPrefix(publicURL, "https:"))
		}
	}
}

func checkSecureHeaders(t *testing.T, what string, h http.Header, https bool) {
	t.Helper()
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q; want nosniff", what, got)
	}
	if got := h.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy = %q; want frame-ancestors 'none'", what, got)
	}
	if got := h.Get("Strict-Transport-Security"); https != (got != "") {
		t.Errorf("%s: Strict-Transport-Security = %q with https=%v", what, got, https)
	}
}

// TestHTMLPagesCannotBeFramed: the sandbox's hosted card page (and its
// refusal of a bad form) carries nosniff and frame-ancestors 'none'.
func TestHTMLPagesCannotBeFramed(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	id, _ := b.account(t, "")
	u := str(t, b.must(t, http.StatusOK, "POST", "/v1/accounts/"+id+"/payment_methods/setup", b.adminKey, nil), "url")
	resp, err := b.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s: Content-Type %q", u, resp.Header.Get("Content-Type"))
	}
	checkSecureHeaders(t, u, resp.Header, false)

	resp, err = b.client.Post(u, "application/x-www-form-urlencoded", strings.NewReader("card=pm_card_visa%00"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST a card with NUL: %d; want 400", resp.StatusCode)
	}
}

// TestMetricsNeedAdminKey: /metrics (Go version, volume per route) needs
// the admin key, unless TOPUP_METRICS_PUBLIC=true.
func TestMetricsNeedAdminKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, key := b.account(t, "")
	for _, tt := range []struct {
		key  string
		want int
	}{{"", 401}, {key, 403}, {b.adminKey, 200}} {
		status, _, _ := b.do(t, "GET", "/metrics", tt.key, nil)
		if status != tt.want {
			t.Errorf("/metrics with key %q: %d; want %d", tt.key, status, tt.want)
		}
	}
	open := setupWith(t, Config{MetricsPublic: true}, nil)
	if status, _, _ := open.do(t, "GET", "/metrics", "", nil); status != http.StatusOK {
		t.Errorf("/metrics with TOPUP_METRICS_PUBLIC=true and no key: %d; want 200", status)
	}
}
