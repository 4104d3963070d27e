package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
)

// bundle is one running API: a real SQLite file, a real committer and an
// HTTP server, owned by one test.
type bundle struct {
	srv      *httptest.Server
	client   *http.Client
	store    *sqlstore.DB
	adminKey string
}

// setup starts a fresh API on a new database in the test's temporary
// directory; everything is stopped when the test ends.
func setup(t *testing.T) *bundle {
	t.Helper()
	return setupWith(t, Config{}, nil)
}

// setupWith is setup with cfg (its AdminKeyHash is set here) and, when wrap
// is not nil, the store the API sees wrapped by it.
func setupWith(t *testing.T, cfg Config, wrap func(*sqlstore.DB) ledger.Store) *bundle {
	t.Helper()
	return start(t, options{cfg: cfg, wrapStore: wrap})
}

// options choose what start builds.
type options struct {
	cfg Config
	// postgres runs on a PostgreSQL schema of the test's own (pgtest)
	// instead of a SQLite file.
	postgres bool
	// wrapStore wraps the store the API sees; wrapPoster the one the
	// committer writes through (to inject faults at the store).
	wrapStore  func(*sqlstore.DB) ledger.Store
	wrapPoster func(*sqlstore.DB) ledger.Poster
	// clock is the store's and the API's clock (nil: the wall clock).
	clock clock.Clock
}

func start(t *testing.T, o options) *bundle {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := cmp.Or[clock.Clock](o.clock, clock.System)
	g := ids.New(c)
	var store *sqlstore.DB
	if o.postgres {
		store = pgtest.Open(t, c, g)
	} else {
		var err error
		store, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "topup.db"), c, g)
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() {
			if err := store.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
	}
	metrics := NewMetrics(prometheus.NewRegistry())
	var poster ledger.Poster = store.Ledger
	if o.wrapPoster != nil {
		poster = o.wrapPoster(store)
	}
	// Timeout: the production bound of one group (30 s) assumes a
	// production build; under the race detector the pure-Go SQLite takes
	// many times longer over the largest batch (10,000 postings of 1,000
	// bytes, TestBodyLimit), on a busy CI machine well over 30 s.
	committer := ledger.NewCommitter(poster, ledger.CommitterConfig{OnCommit: metrics.ObserveCommit, Logger: log, Timeout: 5 * time.Minute})
	committer.Start()
	t.Cleanup(committer.Stop)
	adminKey := ledger.NewKey(ledger.AdminKeyPrefix)
	cfg := o.cfg
	cfg.AdminKeyHash = ledger.HashKey(adminKey)
	var seen ledger.Store = store.Ledger
	if o.wrapStore != nil {
		seen = o.wrapStore(store)
	}
	// The alert routes write through the service, to the alerts the API
	// reads.
	svc := billing.New(billing.Config{}, billing.Deps{Alerts: store.Outbox, Clock: c, Logger: log})
	api := New(cfg, Deps{
		Store: seen, Committer: committer, Clock: c, IDs: g, Logger: log, Metrics: metrics, Service: svc, Alerts: store.Outbox,
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 128
	return &bundle{srv: srv, client: client, store: store, adminKey: adminKey}
}

// testWriter sends the server's warnings and errors to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call sends one request and decodes a JSON answer; it is safe to use from
// several goroutines. body is sent as is when it is a string or []byte, and
// as JSON otherwise; key "" sends no Authorization header.
func (b *bundle) call(method, path, key string, body any) (int, map[string]any, http.Header, error) {
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(v)
	case []byte:
		r = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			return 0, nil, nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, &out); err != nil {
			return 0, nil, nil, fmt.Errorf("%s %s: answer is not JSON: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, out, resp.Header, nil
}

// do is call for the test's own goroutine: a transport error ends the test.
func (b *bundle) do(t *testing.T, method, path, key string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	status, out, h, err := b.call(method, path, key, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, out, h
}

// must is do expecting status want.
func (b *bundle) must(t *testing.T, want int, method, path, key string, body any) map[string]any {
	t.Helper()
	status, out, _ := b.do(t, method, path, key, body)
	if status != want {
		t.Fatalf("%s %s = %d %v, want %d", method, path, status, out, want)
	}
	return out
}

// account creates an account with the admin key and returns its id and key.
func (b *bundle) account(t *testing.T, currency string) (string, string) {
	t.Helper()
	body := map[string]any{"email": "ada@example.com"}
	if currency != "" {
		body["currency"] = currency
	}
	out := b.must(t, http.StatusCreated, "POST", "/v1/accounts", b.adminKey, body)
	return str(t, out, "id"), str(t, out, "api_key")
}

// funded creates a usd account holding amount.
func (b *bundle) funded(t *testing.T, amount string) (string, string) {
	t.Helper()
	id, key := b.account(t, "")
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/credits", b.adminKey,
		map[string]any{"amount": amount, "idempotency_key": "grant"})
	return id, key
}

// ledgerState is what a client can see of an account's money: its balance
// and every transaction, newest first.
type ledgerState struct {
	Balance string
	Entries []map[string]any
}

func (b *bundle) state(t *testing.T, id string) ledgerState {
	t.Helper()
	acct := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+id, b.adminKey, nil)
	return ledgerState{Balance: str(t, acct, "balance"), Entries: b.allEntries(t, id)}
}

// allEntries pages through an account's transactions, 100 at a time.
func (b *bundle) allEntries(t *testing.T, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	after := ""
	for {
		path := "/v1/accounts/" + id + "/transactions?limit=100"
		if after != "" {
			path += "&starting_after=" + after
		}
		page := b.must(t, http.StatusOK, "GET", path, b.adminKey, nil)
		data := objects(t, page["data"])
		out = append(out, data...)
		if page["has_more"] != true {
			return out
		}
		if len(data) == 0 {
			t.Fatalf("GET %s: has_more with an empty page", path)
		}
		after = str(t, data[len(data)-1], "id")
	}
}

func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%q is %#v in %v, want a string", key, m[key], m)
	}
	return s
}

func objects(t *testing.T, v any) []map[string]any {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%#v is not a list", v)
	}
	out := make([]map[string]any, len(list))
	for i, x := range list {
		if out[i], ok = x.(map[string]any); !ok {
			t.Fatalf("item %d is %#v, not an object", i, x)
		}
	}
	return out
}

// wantError checks an error answer: its status, error.code and error.field
// (field "" means the error must name no field).
func wantError(t *testing.T, status int, body map[string]any, wantStatus int, code, field string) {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if status != wantStatus || !ok {
		t.Fatalf("answer %d %v, want %d with an error object", status, body, wantStatus)
	}
	if e["code"] != code {
		t.Errorf("error.code = %v, want %q (%v)", e["code"], code, e)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("error.message is empty: %v", e)
	}
	gotField, hasField := e["field"]
	switch {
	case field == "" && hasField:
		t.Errorf("error.field = %v, want none", gotField)
	case field != "" && gotField != field:
		t.Errorf("error.field = %v, want %q", gotField, field)
	}
}

// badInput is the catalogue of refusals shared by usage and credits: each
// answers 400 invalid naming the field, and writes nothing.
var badInput = []struct {
	name  string
	body  string
	field string
}{
	{"negative", `{"amount": "-1", "idempotency_key": "k1"}`, "amount"},
	{"zero", `{"amount": "0", "idempotency_key": "k1"}`, "amount"},
	{"zero with decimals", `{"amount": "0.00", "idempotency_key": "k1"}`, "amount"},
	{"exponent", `{"amount": "1e3", "idempotency_key": "k1"}`, "amount"},
	{"plus sign", `{"amount": "+1", "idempotency_key": "k1"}`, "amount"},
	{"leading zero", `{"amount": "01", "idempotency_key": "k1"}`, "amount"},
	{"seven fraction digits", `{"amount": "0.0000001", "idempotency_key": "k1"}`, "amount"},
	{"overflow", `{"amount": "9999999999999999999", "idempotency_key": "k1"}`, "amount"},
	{"JSON number", `{"amount": 1, "idempotency_key": "k1"}`, "amount"},
	{"empty amount", `{"amount": "", "idempotency_key": "k1"}`, "amount"},
	{"spaces", `{"amount": " 1", "idempotency_key": "k1"}`, "amount"},
	{"trailing point", `{"amount": "10.", "idempotency_key": "k1"}`, "amount"},
	{"no whole part", `{"amount": ".5", "idempotency_key": "k1"}`, "amount"},
	{"thousands separator", `{"amount": "1,000", "idempotency_key": "k1"}`, "amount"},
	{"missing amount", `{"idempotency_key": "k1"}`, "amount"},
	{"null amount", `{"amount": null, "idempotency_key": "k1"}`, "amount"},
	{"missing idempotency_key", `{"amount": "1"}`, "idempotency_key"},
	{"empty idempotency_key", `{"amount": "1", "idempotency_key": ""}`, "idempotency_key"},
	{"256-character idempotency_key", `{"amount": "1", "idempotency_key": "` + strings.Repeat("k", 256) + `"}`, "idempotency_key"},
	{"numeric idempotency_key", `{"amount": "1", "idempotency_key": 7}`, "idempotency_key"},
	{"long description", `{"amount": "1", "idempotency_key": "k1", "description": "` + strings.Repeat("d", 1001) + `"}`, "description"},
	{"unknown field", `{"amount": "1", "idempotency_key": "k1", "bogus": true}`, "bogus"},
	{"account_id in the body", `{"amount": "1", "idempotency_key": "k1", "account_id": "acct_x"}`, "account_id"},
	{"malformed JSON", `{"amount": "1", "idempotency_key": `, ""},
	{"not an object", `["1"]`, ""},
	{"two objects", `{"amount": "1", "idempotency_key": "k1"} {}`, ""},
	{"empty body", ``, ""},
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, call := range []string{"usage", "credits"} {
		for _, tt := range badInput {
			t.Run(call+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				id, _ := b.funded(t, "10.00")
				before := b.state(t, id)
				status, body, _ := b.do(t, "POST", "/v1/accounts/"+id+"/"+call, b.adminKey, tt.body)
				wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field)
				if after := b.state(t, id); !reflect.DeepEqual(after, before) {
					t.Errorf("a refused request changed the ledger:\nbefore %v\nafter  %v", before, after)
				}
				// The refused request must not have claimed its key either.
				b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/"+call, b.adminKey,
					map[string]any{"amount": "1", "idempotency_key": "k1"})
			})
		}
	}
	t.Run("credits/kind", func(t *testing.T) {
		t.Parallel()
		id, _ := b.funded(t, "10.00")
		status, body, _ := b.do(t, "POST", "/v1/accounts/"+id+"/credits", b.adminKey,
			map[string]any{"amount": "1", "idempotency_key": "k1", "kind": "refund"})
		wantError(t, status, body, http.StatusBadRequest, "invalid", "kind")
		if got := b.state(t, id); got.Balance != "10.00" || len(got.Entries) != 1 {
			t.Errorf("after a refused credit: balance %s, %d entries; want 10.00, 1", got.Balance, len(got.Entries))
		}
	})
}

func TestOversizedBodyIs413(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.funded(t, "10.00")
	huge := `{"amount": "1", "idempotency_key": "k1", "description": "` + strings.Repeat("a", DefaultMaxBodyBytes+1) + `"}`
	for _, path := range []string{"/v1/accounts/" + id + "/usage", "/v1/accounts/" + id + "/credits", "/v1/usage/batch"} {
		status, body, _ := b.do(t, "POST", path, b.adminKey, huge)
		wantError(t, status, body, http.StatusRequestEntityTooLarge, "payload_too_large", "")
	}
	if got := b.state(t, id); got.Balance != "10.00" || len(got.Entries) != 1 {
		t.Errorf("after refused bodies: balance %s, %d entries; want 10.00, 1", got.Balance, len(got.Entries))
	}
}

func TestUnknownAccountIs404(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := map[string]any{"amount": "1", "idempotency_key": "k1"}
	for _, tt := range []struct{ method, path string }{
		{"POST", "/v1/accounts/acct_nope/usage"},
		{"POST", "/v1/accounts/acct_nope/credits"},
		{"GET", "/v1/accounts/acct_nope"},
		{"GET", "/v1/accounts/acct_nope/transactions"},
		{"GET", "/v1/accounts/acct_nope/spendable"},
		{"PATCH", "/v1/accounts/acct_nope"},
		{"GET", "/v1/no/such/route"},
	} {
		var send any
		if tt.method != "GET" {
			send = body
		}
		if tt.method == "PATCH" {
			send = map[string]any{"status": "closed"}
		}
		status, out, _ := b.do(t, tt.method, tt.path, b.adminKey, send)
		wantError(t, status, out, http.StatusNotFound, "not_found", "")
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("more than 10,000 events", func(t *testing.T) {
		t.Parallel()
		id, _ := b.funded(t, "10.00")
		var sb strings.Builder
		sb.WriteString(`{"events": [`)
		for i := range MaxBatch + 1 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"account_id": %q, "amount": "0.000001", "idempotency_key": "e%d"}`, id, i)
		}
		sb.WriteString(`]}`)
		status, body, _ := b.do(t, "POST", "/v1/usage/batch", b.adminKey, sb.String())
		wantError(t, status, body, http.StatusBadRequest, "invalid", "events")
		if got := b.state(t, id); got.Balance != "10.00" || len(got.Entries) != 1 {
			t.Errorf("after a refused batch: balance %s, %d entries; want 10.00, 1", got.Balance, len(got.Entries))
		}
	})

	t.Run("empty or missing events", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{`{}`, `{"events": []}`, `{"events": null}`} {
			status, out, _ := b.do(t, "POST", "/v1/usage/batch", b.adminKey, body)
			wantError(t, status, out, http.StatusBadRequest, "invalid", "events")
		}
	})

	t.Run("bad events spoil only themselves", func(t *testing.T) {
		t.Parallel()
		id, _ := b.funded(t, "10.00")
		b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/usage", b.adminKey,
			map[string]any{"amount": "2", "idempotency_key": "single"})
		events := []string{
			fmt.Sprintf(`{"account_id": %q, "amount": "1.00", "idempotency_key": "b0"}`, id),
			fmt.Sprintf(`{"account_id": %q, "amount": "-1", "idempotency_key": "b1"}`, id),
			fmt.Sprintf(`{"account_id": %q, "amount": "0.5", "idempotency_key": "b2"}`, id),
			fmt.Sprintf(`{"account_id": %q, "amount": 1, "idempotency_key": "b3"}`, id),
			`{"account_id": "acct_nope", "amount": "1", "idempotency_key": "b4"}`,
			`{"amount": "1", "idempotency_key": "b5"}`,
			fmt.Sprintf(`{"account_id": %q, "amount": "1", "idempotency_key": "b6", "bogus": 1}`, id),
			fmt.Sprintf(`{"account_id": %q, "amount": "1.00", "idempotency_key": "b0"}`, id),
			fmt.Sprintf(`{"account_id": %q, "amount": "3", "idempotency_key": "single"}`, id),
			fmt.Sprintf(`{"account_id": %q, "amount": "2.00", "idempotency_key": "single"}`, id),
			fmt.Sprintf(`{"account_id": %q, "amount": "1", "idempotency_key": ""}`, id),
			`"not an object"`,
		}
		body := b.must(t, http.StatusOK, "POST", "/v1/usage/batch", b.adminKey, `{"events": [`+strings.Join(events, ",")+`]}`)
		results := objects(t, body["results"])
		if len(results) != len(events) {
			t.Fatalf("%d results for %d events", len(results), len(events))
		}
		wantErr := map[int][2]string{
			1:  {"invalid", "events[1].amount"},
			3:  {"invalid", "events[3].amount"},
			4:  {"not_found", ""},
			5:  {"invalid", "events[5].account_id"},
			6:  {"invalid", "events[6].bogus"},
			8:  {"idempotency_conflict", "events[8].idempotency_key"},
			10: {"invalid", "events[10].idempotency_key"},
			11: {"invalid", "events[11]"},
		}
		for i, r := range results {
			want, bad := wantErr[i]
			if !bad {
				if _, ok := r["error"]; ok || r["entry_id"] == nil {
					t.Errorf("result %d = %v, want a recorded debit", i, r)
				}
				continue
			}
			e, ok := r["error"].(map[string]any)
			if !ok {
				t.Errorf("result %d = %v, want an error", i, r)
				continue
			}
			if e["code"] != want[0] || (e["field"] != nil || want[1] != "") && e["field"] != want[1] {
				t.Errorf("result %d error = %v, want code %s field %q", i, e, want[0], want[1])
			}
			if _, ok := r["entry_id"]; ok {
				t.Errorf("result %d carries both an error and an entry: %v", i, r)
			}
		}
		for i, want := range map[int]bool{0: false, 2: false, 7: true, 9: true} {
			if results[i]["replayed"] != want {
				t.Errorf("result %d replayed = %v, want %v", i, results[i]["replayed"], want)
			}
		}
		if results[7]["entry_id"] != results[0]["entry_id"] || results[7]["balance"] != results[0]["balance"] {
			t.Errorf("a key repeated in the batch answered %v, want the first result %v", results[7], results[0])
		}
		if results[0]["balance"] != "7.00" || results[2]["balance"] != "6.50" {
			t.Errorf("balances after events 0 and 2 = %v, %v; want 7.00, 6.50", results[0]["balance"], results[2]["balance"])
		}
		// 10.00 - 2 (single) - 1.00 (event 0) - 0.5 (event 2); the replays add nothing.
		if got := b.state(t, id); got.Balance != "6.50" || len(got.Entries) != 4 {
			t.Errorf("after the batch: balance %s, %d entries; want 6.50, 4", got.Balance, len(got.Entries))
		}
	})
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, aKey := b.funded(t, "10.00")
	other, _ := b.funded(t, "10.00")
	usage := map[string]any{"amount": "1", "idempotency_key": "k1"}

	t.Run("no key or a wrong key is 401", func(t *testing.T) {
		t.Parallel()
		for _, key := range []string{"", "tpk_wrong", "tpa_wrong", aKey + "x"} {
			status, body, _ := b.do(t, "GET", "/v1/accounts/"+a, key, nil)
			wantError(t, status, body, http.StatusUnauthorized, "unauthenticated", "")
			status, body, _ = b.do(t, "POST", "/v1/accounts/"+a+"/usage", key, usage)
			wantError(t, status, body, http.StatusUnauthorized, "unauthenticated", "")
		}
		// A key that is not sent as a Bearer token is no key.
		req, _ := http.NewRequest("GET", b.srv.URL+"/v1/accounts/"+a, nil)
		req.Header.Set("Authorization", "Basic "+aKey)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization: Basic = %d, want 401", resp.StatusCode)
		}
	})

	t.Run("another account's resources are 404", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/accounts/" + other, nil},
			{"GET", "/v1/accounts/" + other + "/transactions", nil},
			{"GET", "/v1/accounts/" + other + "/spendable", nil},
			{"PATCH", "/v1/accounts/" + other, map[string]any{"status": "closed"}},
			{"POST", "/v1/accounts/" + other + "/usage", usage},
			{"POST", "/v1/accounts/" + other + "/credits", usage},
		} {
			status, body, _ := b.do(t, tt.method, tt.path, aKey, tt.body)
			wantError(t, status, body, http.StatusNotFound, "not_found", "")
		}
	})

	t.Run("admin-only routes are 403 to an account key", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/v1/accounts/" + a + "/usage", usage},
			{"POST", "/v1/accounts/" + a + "/credits", usage},
			{"PATCH", "/v1/accounts/" + a, map[string]any{"status": "closed"}},
			{"POST", "/v1/accounts", map[string]any{"email": "eve@example.com"}},
			{"GET", "/v1/accounts", nil},
			{"POST", "/v1/usage/batch", map[string]any{"events": []any{map[string]any{"account_id": a, "amount": "1", "idempotency_key": "k1"}}}},
		} {
			status, body, _ := b.do(t, tt.method, tt.path, aKey, tt.body)
			wantError(t, status, body, http.StatusForbidden, "forbidden", "")
		}
	})

	t.Run("the owner reads its own account", func(t *testing.T) {
		t.Parallel()
		acct := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a, aKey, nil)
		if acct["id"] != a || acct["balance"] != "10.00" {
			t.Errorf("GET own account = %v", acct)
		}
		if _, ok := acct["api_key"]; ok {
			t.Errorf("GET account shows the api_key: %v", acct)
		}
		list := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a+"/transactions", aKey, nil)
		if n := len(objects(t, list["data"])); n != 1 {
			t.Errorf("own transactions: %d entries, want 1", n)
		}
		sp := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a+"/spendable", aKey, nil)
		if sp["spendable"] != true {
			t.Errorf("spendable = %v, want true", sp)
		}
	})

	// Whatever was refused above, nothing moved.
	t.Cleanup(func() {
		for _, id := range []string{a, other} {
			acct, err := b.store.Account(context.Background(), id)
			if err != nil {
				t.Errorf("read %s: %v", id, err)
				continue
			}
			if acct.Status != ledger.Active || acct.Balance.String() != "10.00" {
				t.Errorf("account %s after refused calls: %s %s, want active 10.00", id, acct.Status, acct.Balance)
			}
		}
	})
}

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.must(t, http.StatusCreated, "POST", "/v1/accounts", b.adminKey, map[string]any{"email": "ada@example.com"})
	key := str(t, out, "api_key")
	if !strings.HasPrefix(key, "tpk_") || !strings.HasPrefix(str(t, out, "id"), "acct_") {
		t.Errorf("created account = %v", out)
	}
	if out["balance"] != "0.00" || out["currency"] != "usd" || out["status"] != "active" || out["spendable"] != false {
		t.Errorf("a new account = %v, want balance 0.00, currency usd, active, not spendable", out)
	}
	if got := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+str(t, out, "id"), key, nil); got["email"] != "ada@example.com" {
		t.Errorf("the new key reads %v", got)
	}
	jpy := b.must(t, http.StatusCreated, "POST", "/v1/accounts", b.adminKey, map[string]any{"email": "ken@example.jp", "currency": "JPY"})
	if jpy["currency"] != "jpy" || jpy["balance"] != "0" {
		t.Errorf("a jpy account = %v, want currency jpy, balance 0", jpy)
	}
	for _, tt := range []struct {
		body  string
		field string
	}{
		{`{}`, "email"},
		{`{"email": "not an address"}`, "email"},
		{`{"email": "ada@example.com", "currency": "xxx"}`, "currency"},
		{`{"email": "ada@example.com", "balance": "100"}`, "balance"},
	} {
		status, body, _ := b.do(t, "POST", "/v1/accounts", b.adminKey, tt.body)
		wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field)
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.funded(t, "100.00")
	path := "/v1/accounts/" + id + "/usage"

	status, first, h := b.do(t, "POST", path, b.adminKey, map[string]any{"amount": "10", "idempotency_key": "u1", "description": "gpu"})
	if status != http.StatusCreated || h.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first usage = %d %v (Idempotent-Replayed %q), want 201 without the header", status, first, h.Get("Idempotent-Replayed"))
	}
	if first["balance"] != "90.00" {
		t.Fatalf("first usage balance = %v, want 90.00", first["balance"])
	}
	b.must(t, http.StatusCreated, "POST", path, b.adminKey, map[string]any{"amount": "5", "idempotency_key": "u2"})

	// The same key and meaning answers the first body, balance of that time,
	// even written differently ("10.00" means "10").
	for _, amount := range []string{"10", "10.00", "10.000000"} {
		status, again, h := b.do(t, "POST", path, b.adminKey, map[string]any{"amount": amount, "idempotency_key": "u1", "description": "gpu"})
		if status != http.StatusOK || h.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay with %q = %d (Idempotent-Replayed %q), want 200 true", amount, status, h.Get("Idempotent-Replayed"))
		}
		if !reflect.DeepEqual(again, first) {
			t.Errorf("replay with %q answered %v, want the first body %v", amount, again, first)
		}
	}

	// The same key with another meaning is a conflict.
	for _, body := range []map[string]any{
		{"amount": "11", "idempotency_key": "u1", "description": "gpu"},
		{"amount": "10", "idempotency_key": "u1", "description": "cpu"},
		{"amount": "10", "idempotency_key": "u1", "description": "gpu", "subject": "model-a"},
	} {
		status, out, _ := b.do(t, "POST", path, b.adminKey, body)
		wantError(t, status, out, http.StatusConflict, "idempotency_conflict", "idempotency_key")
	}
	if got := b.state(t, id); got.Balance != "85.00" || len(got.Entries) != 3 {
		t.Fatalf("after replays and conflicts: balance %s, %d entries; want 85.00, 3", got.Balance, len(got.Entries))
	}

	// Credits are another scope: the usage key "u1" is new there, and the
	// credit key "grant" (used by funded) is new for usage.
	credit := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/credits", b.adminKey, map[string]any{"amount": "10", "idempotency_key": "u1"})
	if credit["balance"] != "95.00" {
		t.Errorf("credit under a usage key: balance %v, want 95.00", credit["balance"])
	}
	b.must(t, http.StatusCreated, "POST", path, b.adminKey, map[string]any{"amount": "100.00", "idempotency_key": "grant"})
	status, replay, h := b.do(t, "POST", "/v1/accounts/"+id+"/credits", b.adminKey, map[string]any{"amount": "100", "idempotency_key": "grant"})
	if status != http.StatusOK || h.Get("Idempotent-Replayed") != "true" || replay["balance"] != "100.00" {
		t.Errorf("credit replay = %d %v (Idempotent-Replayed %q), want 200, balance 100.00, true", status, replay, h.Get("Idempotent-Replayed"))
	}
	status, out, _ := b.do(t, "POST", "/v1/accounts/"+id+"/credits", b.adminKey, map[string]any{"amount": "100", "idempotency_key": "grant", "kind": "adjustment"})
	wantError(t, status, out, http.StatusConflict, "idempotency_conflict", "idempotency_key")

	// Keys belong to one account: another account may use "u1".
	other, _ := b.funded(t, "1.00")
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+other+"/usage", b.adminKey, map[string]any{"amount": "10", "idempotency_key": "u1", "description": "gpu"})

	// Single and batched usage share one scope.
	batch := b.must(t, http.StatusOK, "POST", "/v1/usage/batch", b.adminKey, map[string]any{"events": []any{
		map[string]any{"account_id": id, "amount": "10.0", "idempotency_key": "u1", "description": "gpu"},
	}})
	r := objects(t, batch["results"])[0]
	if r["replayed"] != true || r["entry_id"] != first["entry_id"] || r["balance"] != "90.00" {
		t.Errorf("batch event with a single call's key = %v, want the replay of %v", r, first)
	}
	if got := b.state(t, id); got.Balance != "-5.00" || len(got.Entries) != 5 {
		t.Errorf("at the end: balance %s, %d entries; want -5.00, 5", got.Balance, len(got.Entries))
	}
}

func TestClosedAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.funded(t, "10.00")
	acct := b.must(t, http.StatusOK, "PATCH", "/v1/accounts/"+id, b.adminKey, map[string]any{"status": "closed"})
	if acct["status"] != "closed" {
		t.Fatalf("PATCH status closed = %v", acct)
	}
	for _, call := range []string{"usage", "credits"} {
		status, body, _ := b.do(t, "POST", "/v1/accounts/"+id+"/"+call, b.adminKey, map[string]any{"amount": "1", "idempotency_key": "k1"})
		wantError(t, status, body, http.StatusConflict, "account_closed", "")
	}
	batch := b.must(t, http.StatusOK, "POST", "/v1/usage/batch", b.adminKey, map[string]any{"events": []any{
		map[string]any{"account_id": id, "amount": "1", "idempotency_key": "k2"},
	}})
	if e, _ := objects(t, batch["results"])[0]["error"].(map[string]any); e["code"] != "account_closed" {
		t.Errorf("batch event on a closed account = %v, want account_closed", batch)
	}
	// The history stays readable.
	if got := b.state(t, id); got.Balance != "10.00" || len(got.Entries) != 1 {
		t.Errorf("closed account: balance %s, %d entries; want 10.00, 1", got.Balance, len(got.Entries))
	}
	for _, tt := range []struct{ body, field string }{
		{`{"status": "frozen"}`, "status"},
		{`{"email": "nope"}`, "email"},
		{`{"status": 1}`, "status"},
	} {
		status, body, _ := b.do(t, "PATCH", "/v1/accounts/"+id, b.adminKey, tt.body)
		wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field)
	}
	// Reopened, it takes usage again, and the refused keys were never used.
	acct = b.must(t, http.StatusOK, "PATCH", "/v1/accounts/"+id, b.adminKey, map[string]any{"status": "active", "email": "grace@example.com"})
	if acct["status"] != "active" || acct["email"] != "grace@example.com" {
		t.Fatalf("PATCH reopen = %v", acct)
	}
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/usage", b.adminKey, map[string]any{"amount": "1", "idempotency_key": "k1"})
}

func TestListing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.funded(t, "10.00")
	events := make([]any, 24)
	for i := range events {
		events[i] = map[string]any{"account_id": id, "amount": "0.01", "idempotency_key": fmt.Sprintf("u%02d", i)}
	}
	b.must(t, http.StatusOK, "POST", "/v1/usage/batch", b.adminKey, map[string]any{"events": events})
	path := "/v1/accounts/" + id + "/transactions"

	first := b.must(t, http.StatusOK, "GET", path, b.adminKey, nil)
	if n := len(objects(t, first["data"])); n != 10 || first["has_more"] != true {
		t.Fatalf("default page: %d entries, has_more %v; want 10, true", n, first["has_more"])
	}

	// Paging newest first: the last usage comes first, the grant last.
	var keys []string
	after := ""
	pages := 0
	for {
		q := path + "?limit=7"
		if after != "" {
			q += "&starting_after=" + after
		}
		page := b.must(t, http.StatusOK, "GET", q, b.adminKey, nil)
		data := objects(t, page["data"])
		pages++
		for _, e := range data {
			keys = append(keys, str(t, e, "idempotency_key"))
		}
		if page["has_more"] != true {
			if len(data) != 4 {
				t.Errorf("last page holds %d entries, want 4", len(data))
			}
			break
		}
		if len(data) != 7 || pages > 10 {
			t.Fatalf("page %d holds %d entries with has_more", pages, len(data))
		}
		after = str(t, data[len(data)-1], "id")
	}
	var want []string
	for i := 23; i >= 0; i-- {
		want = append(want, fmt.Sprintf("u%02d", i))
	}
	want = append(want, "grant")
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("paged keys = %v\nwant %v", keys, want)
	}
	if first := objects(t, first["data"]); str(t, first[0], "idempotency_key") != "u23" {
		t.Errorf("the default page starts with %v, want the newest (u23)", first[0])
	}

	other, _ := b.funded(t, "1.00")
	otherEntry := str(t, b.allEntries(t, other)[0], "id")
	for _, tt := range []struct{ query, field string }{
		{"?limit=101", "limit"},
		{"?limit=0", "limit"},
		{"?limit=-1", "limit"},
		{"?limit=ten", "limit"},
		{"?starting_after=ent_unknown", "starting_after"},
		{"?starting_after=" + otherEntry, "starting_after"},
	} {
		status, body, _ := b.do(t, "GET", path+tt.query, b.adminKey, nil)
		wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field)
	}
	if page := b.must(t, http.StatusOK, "GET", path+"?limit=100", b.adminKey, nil); len(objects(t, page["data"])) != 25 || page["has_more"] != false {
		t.Errorf("limit=100 over 25 entries = %d entries, has_more %v", len(objects(t, page["data"])), page["has_more"])
	}

	// Accounts list the same way, newest first.
	var created []string
	for range 11 {
		acct, _ := b.account(t, "")
		created = append(created, acct)
	}
	accts := b.must(t, http.StatusOK, "GET", "/v1/accounts", b.adminKey, nil)
	data := objects(t, accts["data"])
	if len(data) != 10 || accts["has_more"] != true {
		t.Fatalf("accounts default page: %d, has_more %v; want 10, true", len(data), accts["has_more"])
	}
	if data[0]["id"] != created[10] || data[9]["id"] != created[1] {
		t.Errorf("accounts page runs %v .. %v, want %s .. %s", data[0]["id"], data[9]["id"], created[10], created[1])
	}
	next := b.must(t, http.StatusOK, "GET", "/v1/accounts?limit=2&starting_after="+created[1], b.adminKey, nil)
	if d := objects(t, next["data"]); len(d) != 2 || d[0]["id"] != created[0] || d[1]["id"] != other {
		t.Errorf("accounts after %s = %v, want %s then %s", created[1], next, created[0], other)
	}
	for _, q := range []string{"?limit=101", "?starting_after=acct_unknown"} {
		status, body, _ := b.do(t, "GET", "/v1/accounts"+q, b.adminKey, nil)
		wantError(t, status, body, http.StatusBadRequest, "invalid", strings.Trim(strings.Split(q, "=")[0], "?"))
	}
}

// timePattern is RFC 3339 in UTC with at least millisecond precision.
var timePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,9}Z$`)

func wantTime(t *testing.T, what string, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	if !timePattern.MatchString(s) {
		t.Errorf("%s = %q, want RFC 3339 UTC with a fraction", what, v)
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("%s = %q: %v", what, s, err)
	}
	return tm
}

func TestMoneyAndTimeFormats(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now().Add(-time.Second)
	id, _ := b.account(t, "")
	credit := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/credits", b.adminKey, map[string]any{"amount": "10", "idempotency_key": "c1"})
	if credit["balance"] != "10.00" || credit["currency"] != "usd" || credit["spendable"] != true {
		t.Errorf("credit of 10 = %v, want balance 10.00", credit)
	}
	use := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/usage", b.adminKey, map[string]any{"amount": "0.000125", "idempotency_key": "u1", "subject": "model-a"})
	if use["balance"] != "9.999875" {
		t.Errorf("balance after 0.000125 = %v, want 9.999875", use["balance"])
	}
	half := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/usage", b.adminKey, map[string]any{"amount": "9.5", "idempotency_key": "u2"})
	if half["balance"] != "0.499875" {
		t.Errorf("balance after 9.5 = %v, want 0.499875", half["balance"])
	}
	neg := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/usage", b.adminKey, map[string]any{"amount": "1.499875", "idempotency_key": "u3"})
	if neg["balance"] != "-1.00" || neg["spendable"] != false {
		t.Errorf("usage beyond the balance = %v, want balance -1.00, not spendable", neg)
	}
	sp := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+id+"/spendable", b.adminKey, nil)
	if sp["spendable"] != false || sp["reason"] != "insufficient_balance" {
		t.Errorf("spendable = %v, want false, insufficient_balance", sp)
	}

	entries := b.allEntries(t, id)
	want := []struct{ kind, amount, after string }{
		{"usage", "-1.499875", "-1.00"},
		{"usage", "-9.50", "0.499875"},
		{"usage", "-0.000125", "9.999875"},
		{"credit", "10.00", "10.00"},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(entries), len(want))
	}
	for i, w := range want {
		e := entries[i]
		if e["kind"] != w.kind || e["amount"] != w.amount || e["balance_after"] != w.after {
			t.Errorf("entry %d = %v, want kind %s amount %s balance_after %s", i, e, w.kind, w.amount, w.after)
		}
		at := wantTime(t, fmt.Sprintf("entry %d created_at", i), e["created_at"])
		if at.Before(start) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("entry %d created_at %v is not about now", i, at)
		}
	}
	if entries[2]["subject"] != "model-a" || entries[2]["idempotency_key"] != "u1" {
		t.Errorf("usage entry = %v, want subject model-a and key u1", entries[2])
	}
	if entries[2]["created_at"] != use["created_at"] || entries[2]["id"] != use["entry_id"] {
		t.Errorf("the listed entry %v differs from the usage answer %v", entries[2], use)
	}
	wantTime(t, "usage created_at", use["created_at"])
	acct := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+id, b.adminKey, nil)
	wantTime(t, "account created_at", acct["created_at"])
	if acct["balance"] != "-1.00" {
		t.Errorf("account balance = %v, want -1.00", acct["balance"])
	}

	// A currency without minor units shows none, but keeps micros.
	jpy, _ := b.account(t, "jpy")
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+jpy+"/credits", b.adminKey, map[string]any{"amount": "100", "idempotency_key": "c1"})
	if out := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+jpy+"/usage", b.adminKey, map[string]any{"amount": "0.5", "idempotency_key": "u1"}); out["balance"] != "99.5" {
		t.Errorf("jpy balance = %v, want 99.5", out["balance"])
	}
	if e := b.allEntries(t, jpy); e[0]["amount"] != "-0.5" || e[1]["amount"] != "100" {
		t.Errorf("jpy entries = %v, want -0.5 and 100", e)
	}
}

// TestConcurrentDebits sends 10,000 debits from 100 clients at once through
// the HTTP API and the group committer: none may be lost or doubled. With
// -short it sends 1,000 from 20 clients.
func TestConcurrentDebits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.funded(t, "1000.00")
	workers, each := 100, 100
	if testing.Short() {
		workers, each = 20, 50
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf(`{"amount": "0.012345", "idempotency_key": "w%03d-%03d"}`, w, i)
				status, out, _, err := b.call("POST", "/v1/accounts/"+id+"/usage", b.adminKey, body)
				if err != nil || status != http.StatusCreated {
					t.Errorf("worker %d debit %d: %d %v %v", w, i, status, out, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// 1000.00 - n × 0.012345, to the micro: 876.55 for 10,000 debits.
	want, err := money.Sub(1000*money.MicrosPerUnit, money.Amount(workers*each*12345))
	if err != nil {
		t.Fatal(err)
	}
	st := b.state(t, id)
	if st.Balance != want.String() {
		t.Errorf("balance = %s, want %s", st.Balance, want)
	}
	usage := 0
	seen := map[string]bool{}
	for _, e := range st.Entries {
		if e["kind"] == "usage" {
			usage++
		}
		seen[str(t, e, "idempotency_key")] = true
	}
	if usage != workers*each || len(seen) != workers*each+1 {
		t.Errorf("%d usage entries with %d distinct keys, want %d and %d", usage, len(seen), workers*each, workers*each+1)
	}
	violations, err := b.store.Verify(t.Context())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, v := range violations {
		t.Errorf("verify: %s: %s", v.AccountID, v.Problem)
	}
	metrics := b.metricsText(t)
	if !strings.Contains(metrics, fmt.Sprintf("\ntopup_debits_total %d\n", workers*each)) {
		t.Errorf("/metrics does not count %d debits:\n%s", workers*each, grepLines(metrics, "topup_debits_total"))
	}
}

func (b *bundle) metricsText(t *testing.T) string {
	t.Helper()
	req, err := http.NewRequest("GET", b.srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+b.adminKey)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	return string(data)
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestOperations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	health := b.must(t, http.StatusOK, "GET", "/healthz", "", nil)
	if health["status"] != "ok" {
		t.Errorf("/healthz = %v", health)
	}

	id, _ := b.funded(t, "1.00")
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+id+"/usage", b.adminKey, map[string]any{"amount": "0.1", "idempotency_key": "u1"})
	b.must(t, http.StatusOK, "POST", "/v1/accounts/"+id+"/usage", b.adminKey, map[string]any{"amount": "0.1", "idempotency_key": "u1"})
	metrics := b.metricsText(t)
	for _, want := range []string{"\ntopup_debits_total 1\n", "topup_commit_group_postings_count", "topup_http_requests_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}

	resp, err := b.client.Get(b.srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/v1/openapi.json = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var parsed struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc, &parsed); err != nil || !strings.HasPrefix(parsed.OpenAPI, "3.1") || parsed.Paths["/v1/accounts/{id}/usage"] == nil {
		t.Errorf("/v1/openapi.json is not the API's OpenAPI 3.1 document (%v): %.200s", err, doc)
	}

	// Every answer carries a request id, the caller's when it sent one.
	req, _ := http.NewRequest("GET", b.srv.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "trace-42")
	r2, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.Header.Get("Request-Id") != "trace-42" {
		t.Errorf("Request-Id = %q, want the caller's trace-42", r2.Header.Get("Request-Id"))
	}
}
