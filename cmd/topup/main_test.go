package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/client"
	"github.com/topup/topup/internal/money"
)

// These tests start Topup the way main does, through run, on port 0 and a
// database in a temporary directory, and talk to it over HTTP.

const testAdminKey = "tpa_test_admin_key_for_e2e"

// TestE2EServeLedger walks the operator's first day: create an account,
// grant credit, post usage, replay a request, read the ledger; then a
// graceful stop, and verify finds every balance equal to its entries.
func TestE2EServeLedger(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	srv := startRun(t, testEnv{"TOPUP_ADMIN_KEY": testAdminKey}, "serve", "--addr", "127.0.0.1:0", "--db", db)

	ctx := context.Background()
	admin := client.New(srv.url, testAdminKey)
	acct, err := admin.CreateAccount(ctx, client.AccountParams{Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if acct.Email != "ada@example.com" || acct.Currency != "usd" || acct.Balance != "0.00" || !strings.HasPrefix(acct.APIKey, "tpk_") {
		t.Fatalf("created account = %+v; want ada@example.com, usd, 0.00 and a tpk_ key", acct)
	}
	res, err := admin.Credit(ctx, acct.ID, client.CreditParams{Amount: "10", IdempotencyKey: "grant-1", Description: "welcome"})
	if err != nil || res.Balance != "10.00" {
		t.Errorf("a 10 credit answered %+v, %v; want balance 10.00", res, err)
	}
	first, err := admin.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.25", IdempotencyKey: "u-1", Description: "chat"})
	if err != nil || first.Balance != "9.75" || !first.Spendable || first.EntryID == "" || first.Replayed {
		t.Fatalf("usage of 0.25 answered %+v, %v; want balance 9.75, spendable, an entry id", first, err)
	}

	// The same request again, "0.250" for "0.25", is a replay: the
	// Idempotent-Replayed header and the first body.
	replay, err := admin.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.250", IdempotencyKey: "u-1", Description: "chat"})
	if err != nil || !replay.Replayed || *replay != (client.UsageResult{Replayed: true, EntryID: first.EntryID, Balance: first.Balance,
		Currency: first.Currency, Spendable: true, CreatedAt: first.CreatedAt}) {
		t.Errorf("replay answered %+v, %v; want a replay of the first result %+v", replay, err, first)
	}
	// The same key with another meaning is refused.
	_, err = admin.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.30", IdempotencyKey: "u-1", Description: "chat"})
	if e := client.AsError(err); e == nil || e.Status != 409 || e.Code != client.CodeIdempotencyConflict {
		t.Errorf("key reused with another amount answered %v; want 409 idempotency_conflict", err)
	}
	if res, err = admin.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.000125", IdempotencyKey: "u-2"}); err != nil || res.Balance != "9.749875" {
		t.Errorf("0.000125 more usage answered %+v, %v; want balance 9.749875", res, err)
	}

	// The account reads its own ledger with its own key, newest first.
	entries := allEntries(t, srv.url, acct.APIKey, acct.ID)
	want := []struct{ kind, amount, after, key string }{
		{"usage", "-0.000125", "9.749875", "u-2"},
		{"usage", "-0.25", "9.75", "u-1"},
		{"credit", "10.00", "10.00", "grant-1"},
	}
	if len(entries) != len(want) {
		t.Fatalf("ledger has %d entries; want %d: %+v", len(entries), len(want), entries)
	}
	for i, w := range want {
		e := entries[i]
		if e.Kind != w.kind || e.Amount != w.amount || e.BalanceAfter != w.after || e.IdempotencyKey != w.key {
			t.Errorf("entry %d = %+v; want %+v", i, e, w)
		}
	}
	if entries[1].ID != first.EntryID {
		t.Errorf("the usage entry is %s; the response named %s", entries[1].ID, first.EntryID)
	}
	own := client.New(srv.url, acct.APIKey)
	if got, err := own.GetAccount(ctx, acct.ID); err != nil || got.Balance != "9.749875" {
		t.Errorf("account read with its own key = %+v, %v; want balance 9.749875", got, err)
	}
	// An account key may not post its own usage.
	if _, err := own.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "1", IdempotencyKey: "self"}); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("account key posting usage answered %v; want 403 forbidden", err)
	}

	if err := srv.stop(t); err != nil {
		t.Fatalf("run after a graceful stop returned %v; want nil", err)
	}
	out, err := runCmd(t, nil, "verify", "--db", db)
	if err != nil || !strings.Contains(out, "every balance equals the sum of its entries") {
		t.Fatalf("verify after the run: %v\n%s", err, out)
	}
}

// TestServeMakesAdminKeyOnce: without TOPUP_ADMIN_KEY the first start makes
// a key and prints it once; later starts keep it and never print it.
func TestServeMakesAdminKeyOnce(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	srv := startRun(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", db)
	m := regexp.MustCompile(`shown only this once:\s+(tpa_\S+)`).FindStringSubmatch(srv.out.String())
	if m == nil {
		t.Fatalf("first start printed no admin key:\n%s", srv.out)
	}
	key := m[1]
	mustCall(t, srv.url, "GET", "/v1/accounts", key, "", 200, nil)
	if status, _, _ := doHTTP(t, srv.url, "GET", "/v1/accounts", key+"x", ""); status != 401 {
		t.Errorf("a wrong admin key answered %d; want 401", status)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}

	again := startRun(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", db)
	if out := again.out.String(); strings.Contains(out, "shown only this once") || strings.Contains(out, key) {
		t.Errorf("second start printed an admin key:\n%s", out)
	}
	mustCall(t, again.url, "GET", "/v1/accounts", key, "", 200, nil)
}

// TestDemoPrintsWhatToTry: `topup demo` serves a demo account with credit
// and history, prints the keys and curl lines that work as printed, and a
// second start prints the same keys without doubling the history.
func TestDemoPrintsWhatToTry(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	srv := startRun(t, nil, "demo", "--addr", "127.0.0.1:0", "--db", db)
	b := parseBanner(t, srv.out.String(), srv.url)
	if !strings.HasPrefix(b.adminKey, "tpa_") || !strings.HasPrefix(b.accountID, "acct_") || !strings.HasPrefix(b.accountKey, "tpk_") {
		t.Fatalf("banner keys = %+v", b)
	}
	for _, line := range []string{"API:          " + srv.url + "/v1", "Health:       " + srv.url + "/healthz", "OpenAPI:      " + srv.url + "/v1/openapi.json"} {
		if !strings.Contains(srv.out.String(), line) {
			t.Errorf("banner lacks %q:\n%s", line, srv.out)
		}
	}
	mustCall(t, srv.url, "GET", "/v1/openapi.json", "", "", 200, nil)

	// The history: a 50.00 credit, then 30 metered calls, dated in the past,
	// and a balance equal to their sum.
	history := allEntries(t, srv.url, b.accountKey, b.accountID)
	if len(history) != 31 {
		t.Fatalf("demo history has %d entries; want 31", len(history))
	}
	oldest := history[len(history)-1]
	if oldest.Kind != "credit" || oldest.Amount != "50.00" {
		t.Errorf("oldest demo entry = %+v; want a 50.00 credit", oldest)
	}
	var sum money.Amount
	times := map[string]bool{}
	for _, e := range history {
		sum += mustParse(t, e.Amount)
		times[e.CreatedAt] = true
		if e.Kind == "usage" && !regexp.MustCompile(`^(chat completion|embeddings) · [\d,]+ tokens$|^image generation`).MatchString(e.Description) {
			t.Errorf("usage description %q does not read like metered usage", e.Description)
		}
		if at, err := time.Parse(time.RFC3339Nano, e.CreatedAt); err != nil || !at.Before(time.Now()) {
			t.Errorf("entry %s is dated %q; want a past RFC 3339 time", e.ID, e.CreatedAt)
		}
	}
	if len(times) != len(history) {
		t.Errorf("the history has %d distinct times for %d entries; want it spread out", len(times), len(history))
	}
	if bal := readBalance(t, srv.url, b.accountKey, b.accountID); bal != sum || bal <= 0 || bal >= 50_000_000 {
		t.Errorf("demo balance = %s; want the entries' sum %s, between 0 and 50", bal, sum)
	}

	// The printed curl lines work as printed.
	var res postResult
	status, body := b.try[0].do(t)
	decodeBody(t, body, &res)
	if status != 201 || mustParse(t, res.Balance) != sum-250_000 {
		t.Fatalf("the printed usage curl answered %d %s; want 201 and balance %s", status, body, sum-250_000)
	}
	status, body = b.try[1].do(t)
	if status != 200 || !strings.Contains(string(body), `"idempotency_key":"try-1"`) {
		t.Fatalf("the printed transactions curl answered %d %s; want 200 listing try-1", status, body)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}

	again := startRun(t, nil, "demo", "--addr", "127.0.0.1:0", "--db", db)
	b2 := parseBanner(t, again.out.String(), again.url)
	if b2.adminKey != b.adminKey || b2.accountID != b.accountID || b2.accountKey != b.accountKey {
		t.Errorf("second start printed %+v; want the same keys as the first %+v", b2, b)
	}
	status, body = b2.try[0].do(t)
	if status != 200 {
		t.Errorf("the usage curl on the second start answered %d %s; want 200, a replay", status, body)
	}
	if n := len(allEntries(t, again.url, b2.accountKey, b2.accountID)); n != 32 {
		t.Errorf("after a restart the demo account has %d entries; want 32 (31 demo + 1 try)", n)
	}
	if err := again.stop(t); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, nil, "verify", "--db", db); err != nil {
		t.Fatalf("verify on the demo database: %v\n%s", err, out)
	}
}

// TestDemoNeverPrintsOperatorAdminKey: a key from TOPUP_ADMIN_KEY may be a
// real one, so the demo uses it without printing it.
func TestDemoNeverPrintsOperatorAdminKey(t *testing.T) {
	t.Parallel()
	srv := startRun(t, testEnv{"TOPUP_ADMIN_KEY": testAdminKey}, "demo", "--addr", "127.0.0.1:0", "--db", tempDB(t))
	out := srv.out.String()
	if strings.Contains(out, testAdminKey) || !strings.Contains(out, "$TOPUP_ADMIN_KEY") {
		t.Errorf("banner should refer to $TOPUP_ADMIN_KEY and not print it:\n%s", out)
	}
	mustCall(t, srv.url, "GET", "/v1/accounts", testAdminKey, "", 200, nil)
}

// TestAccountCreateAndList: the command line creates an account, shows its
// key once, and lists it.
func TestAccountCreateAndList(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	out, err := runCmd(t, nil, "account", "create", "--email", "x@y.z", "--db", db)
	if err != nil {
		t.Fatalf("account create: %v\n%s", err, out)
	}
	id := regexp.MustCompile(`id:\s+(acct_\S+)`).FindStringSubmatch(out)
	if id == nil || !regexp.MustCompile(`api key:\s+tpk_\S+\s+\(shown only this once\)`).MatchString(out) {
		t.Fatalf("account create printed no id or key:\n%s", out)
	}
	out, err = runCmd(t, nil, "account", "list", "--db", db)
	if err != nil || !regexp.MustCompile(regexp.QuoteMeta(id[1])+`\s+x@y\.z\s+usd\s+0\.00\s+active`).MatchString(out) {
		t.Fatalf("account list (%v) does not show %s x@y.z:\n%s", err, id[1], out)
	}
	if out, err := runCmd(t, nil, "account", "create", "--email", "not an address", "--db", db); err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("account create with a bad e-mail: err %v; want one naming email\n%s", err, out)
	}
}

// TestVerifyNamesBrokenAccount: a balance changed behind the ledger's back
// makes verify fail, naming that account and no other.
func TestVerifyNamesBrokenAccount(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	var ids []string
	for _, email := range []string{"good@example.com", "bad@example.com"} {
		out, err := runCmd(t, nil, "account", "create", "--email", email, "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, regexp.MustCompile(`id:\s+(acct_\S+)`).FindStringSubmatch(out)[1])
	}
	good, bad := ids[0], ids[1]
	if out, err := runCmd(t, nil, "verify", "--db", db); err != nil {
		t.Fatalf("verify before the corruption: %v\n%s", err, out)
	}

	raw, err := sql.Open("sqlite", strings.TrimPrefix(db, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE accounts SET balance = balance + 1 WHERE id = ?`, bad); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := runCmd(t, nil, "verify", "--db", db)
	if err == nil {
		t.Fatalf("verify passed a corrupted database:\n%s", out)
	}
	if !strings.Contains(out, "BROKEN "+bad) || strings.Contains(out, good) {
		t.Errorf("verify output should name %s and not %s:\n%s", bad, good, out)
	}
}

// TestE2ERunRefusesUnknownCommand: run reports a command it does not know,
// with the usage.
func TestE2ERunRefusesUnknownCommand(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serv"}, testEnv(nil).get, io.Discard, &stderr)
	if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "topup demo") {
		t.Errorf("run serv = %v, stderr %q; want errUsage and the usage", err, stderr.String())
	}
}

// testEnv is the environment a test gives run.
type testEnv map[string]string

func (e testEnv) get(k string) string { return e[k] }

func tempDB(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "x.db")
}

// syncBuffer collects what run writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs a command that ends by itself and returns its stdout.
func runCmd(t *testing.T, e testEnv, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, e.get, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("topup %s stderr: %s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), err
}

// runServer is run serving in the background.
type runServer struct {
	url    string
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

var listeningRE = regexp.MustCompile(`topup: listening on (http://\S+)`)

// startRun calls run in a goroutine and returns once /healthz answers 200.
// The test's cleanup stops it.
func startRun(t *testing.T, e testEnv, args ...string) *runServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &runServer{out: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	stderr := &syncBuffer{}
	go func() { s.done <- run(ctx, args, e.get, s.out, stderr) }()
	t.Cleanup(func() {
		if err := s.stop(t); err != nil {
			t.Errorf("topup %s: %v", args[0], err)
		}
	})
	s.url = waitListening(t, s.out, s.done, func() string { return s.out.String() + stderr.String() })
	waitHealthy(t, s.url)
	return s
}

// stop cancels run's context, as SIGTERM does, and returns what run returned.
func (s *runServer) stop(t *testing.T) error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = errors.New("run did not return within 30 s of the stop")
		}
	})
	return s.err
}

// waitListening polls out for the "listening on" line and returns the URL;
// exited reports a run that ended before listening.
func waitListening[T any](t *testing.T, out *syncBuffer, exited <-chan T, all func() string) string {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(15 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case v := <-exited:
			t.Fatalf("topup ended before listening (%v):\n%s", v, all())
		case <-deadline:
			t.Fatalf("topup printed no listening line within 15 s:\n%s", all())
		case <-tick.C:
		}
	}
}

// waitHealthy polls /healthz until it answers 200.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-deadline:
			t.Fatalf("%s/healthz did not answer 200 within 10 s (last: %v)", base, err)
		case <-tick.C:
		}
	}
}

// doHTTP sends one request with an optional bearer key and JSON body.
func doHTTP(t *testing.T, base, method, path, key, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// mustCall is doHTTP expecting status, decoding the body into v when not nil.
func mustCall(t *testing.T, base, method, path, key, body string, status int, v any) {
	t.Helper()
	got, _, b := doHTTP(t, base, method, path, key, body)
	if got != status {
		t.Fatalf("%s %s answered %d %s; want %d", method, path, got, b, status)
	}
	if v != nil {
		decodeBody(t, b, v)
	}
}

func decodeBody(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func mustParse(t *testing.T, s string) money.Amount {
	t.Helper()
	neg := strings.HasPrefix(s, "-")
	a, err := money.Parse(strings.TrimPrefix(s, "-"))
	if err != nil {
		t.Fatalf("amount %q: %v", s, err)
	}
	if neg {
		a = -a
	}
	return a
}

// postResult is the body of a usage or credit response.
type postResult struct {
	EntryID   string `json:"entry_id"`
	Balance   string `json:"balance"`
	Currency  string `json:"currency"`
	Spendable bool   `json:"spendable"`
	CreatedAt string `json:"created_at"`
}

// entryBody is a ledger entry as listed.
type entryBody struct {
	ID             string `json:"id"`
	Kind           string `json:"kind"`
	Amount         string `json:"amount"`
	BalanceAfter   string `json:"balance_after"`
	Description    string `json:"description"`
	IdempotencyKey string `json:"idempotency_key"`
	CreatedAt      string `json:"created_at"`
}

// allEntries pages through an account's ledger, newest first, with the
// client's iterator.
func allEntries(t *testing.T, base, key, accountID string) []entryBody {
	t.Helper()
	var out []entryBody
	for e, err := range client.New(base, key).Transactions(context.Background(), accountID) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entryBody{ID: e.ID, Kind: e.Kind, Amount: e.Amount.String(), BalanceAfter: e.BalanceAfter.String(),
			Description: e.Description, IdempotencyKey: e.IdempotencyKey, CreatedAt: e.CreatedAt.Format(time.RFC3339Nano)})
	}
	return out
}

// readBalance reads an account's balance in micros.
func readBalance(t *testing.T, base, key, accountID string) money.Amount {
	t.Helper()
	a, err := client.New(base, key).GetAccount(context.Background(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, a.Balance.String())
}

// banner is what `topup demo` prints for a newcomer.
type banner struct {
	adminKey, accountID, accountKey string
	try                             []curlLine
}

// curlLine is a printed `curl -s -H '…' [-d '…'] URL`, to be sent as is.
type curlLine struct {
	header, body, url string
}

var curlRE = regexp.MustCompile(`(?m)^\s*curl -s -H '([^']+)'(?: -d '([^']+)')? (\S+)\s*$`)

func parseBanner(t *testing.T, out, base string) banner {
	t.Helper()
	if !strings.Contains(out, "Topup demo is running.") {
		t.Fatalf("demo printed no banner:\n%s", out)
	}
	var b banner
	if m := regexp.MustCompile(`Admin key:\s+(tpa_\S+)\s+\(demo only`).FindStringSubmatch(out); m != nil {
		b.adminKey = m[1]
	}
	if m := regexp.MustCompile(`Demo account:\s+(acct_\S+)\s+key (tpk_\S+)`).FindStringSubmatch(out); m != nil {
		b.accountID, b.accountKey = m[1], m[2]
	}
	for _, m := range curlRE.FindAllStringSubmatch(out, -1) {
		b.try = append(b.try, curlLine{header: m[1], body: m[2], url: m[3]})
	}
	if len(b.try) != 2 || !strings.HasPrefix(b.try[0].url, base+"/v1/accounts/"+b.accountID) {
		t.Fatalf("demo banner should show two curl lines on %s:\n%s", base, out)
	}
	return b
}

// do sends the request the curl line describes: curl -d posts the body.
func (c curlLine) do(t *testing.T) (int, []byte) {
	t.Helper()
	method, rd := "GET", io.Reader(nil)
	if c.body != "" {
		method, rd = "POST", strings.NewReader(c.body)
	}
	req, err := http.NewRequest(method, c.url, rd)
	if err != nil {
		t.Fatal(err)
	}
	name, value, _ := strings.Cut(c.header, ": ")
	req.Header.Set(name, value)
	if c.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl -d sends
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
