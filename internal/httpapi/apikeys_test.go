package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topup/topup/internal/authlimit"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
)

// serveOn starts an API on store, as one replica of a deployment whose
// operator key is adminKey.
func serveOn(t *testing.T, store *sqlstore.DB, c clock.Clock, adminKey string, cfg Config) *bundle {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	metrics := NewMetrics(prometheus.NewRegistry())
	committer := ledger.NewCommitter(store.Ledger, ledger.CommitterConfig{OnCommit: metrics.ObserveCommit, Logger: log})
	committer.Start()
	t.Cleanup(committer.Stop)
	cfg.AdminKeyHash = ledger.HashKey(adminKey)
	api := New(cfg, Deps{Store: store.Ledger, Alerts: store.Outbox, Committer: committer, Clock: c, IDs: ids.New(c), Logger: log, Metrics: metrics})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &bundle{srv: srv, client: srv.Client(), store: store, adminKey: adminKey}
}

// setupClock is setup with a clock the test moves and the API config cfg.
func setupClock(t *testing.T, cfg Config) (*bundle, *clock.Manual) {
	t.Helper()
	c := clock.NewManual(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "topup.db"), c, ids.New(c))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return serveOn(t, store, c, ledger.NewKey(ledger.AdminKeyPrefix), cfg), c
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, aKey := b.account(t, "")
	other, otherKey := b.account(t, "")
	path := "/v1/accounts/" + a + "/api_keys"

	// The key made with the account is listed as default, never shown.
	list := b.must(t, http.StatusOK, "GET", path, aKey, nil)
	keys := objects(t, list["data"])
	if len(keys) != 1 || keys[0]["name"] != "default" || keys[0]["prefix"] != aKey[:12] || list["has_more"] != false {
		t.Fatalf("a new account's keys = %v; want default with prefix %s", list, aKey[:12])
	}
	defaultID := str(t, keys[0], "id")
	wantTime(t, "the default key's last_used_at", keys[0]["last_used_at"]) // this very request used it

	made := b.must(t, http.StatusCreated, "POST", path, aKey, map[string]any{"name": "ci"})
	key := str(t, made, "key")
	if !strings.HasPrefix(key, "tpk_") || len(key) < 4+22 || made["prefix"] != key[:12] || made["name"] != "ci" ||
		!strings.HasPrefix(str(t, made, "id"), "key_") {
		t.Fatalf("a new key = %v; want tpk_…, with its first 12 characters as prefix", made)
	}
	wantTime(t, "created_at", made["created_at"])
	b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a, key, nil)
	status, body, _ := b.do(t, "GET", "/v1/accounts/"+other, key, nil)
	wantError(t, status, body, http.StatusNotFound, "not_found", "")
	// No name is an empty name; the admin may make keys too.
	unnamed := b.must(t, http.StatusCreated, "POST", path, b.adminKey, map[string]any{})
	if unnamed["name"] != "" {
		t.Errorf("a key made without a name is named %v", unnamed["name"])
	}

	list = b.must(t, http.StatusOK, "GET", path, b.adminKey, nil)
	keys = objects(t, list["data"])
	if len(keys) != 3 || keys[0]["id"] != unnamed["id"] || keys[1]["id"] != made["id"] || keys[2]["id"] != defaultID {
		t.Fatalf("keys = %v; want the unnamed, ci, default (newest first)", keys)
	}
	raw, _ := json.Marshal(list)
	for _, k := range keys {
		if _, ok := k["key"]; ok || strings.Contains(string(raw), key) || strings.Contains(string(raw), aKey) {
			t.Fatalf("the list shows a key: %v", list)
		}
	}
	if keys[0]["last_used_at"] != nil {
		t.Errorf("an unused key's last_used_at = %v; want null", keys[0]["last_used_at"])
	}
	page := b.must(t, http.StatusOK, "GET", path+"?limit=1&starting_after="+str(t, keys[0], "id"), aKey, nil)
	if got := objects(t, page["data"]); len(got) != 1 || got[0]["id"] != made["id"] || page["has_more"] != true {
		t.Errorf("the second page of one = %v; want ci and has_more", page)
	}
	status, body, _ = b.do(t, "GET", path+"?starting_after=key_nope", aKey, nil)
	wantError(t, status, body, http.StatusBadRequest, "invalid", "starting_after")

	// Another account can neither list nor revoke these keys.
	status, body, _ = b.do(t, "GET", path, otherKey, nil)
	wantError(t, status, body, http.StatusNotFound, "not_found", "")
	status, body, _ = b.do(t, "DELETE", path+"/"+str(t, made, "id"), otherKey, nil)
	wantError(t, status, body, http.StatusNotFound, "not_found", "")
	status, body, _ = b.do(t, "DELETE", "/v1/accounts/"+other+"/api_keys/"+str(t, made, "id"), otherKey, nil)
	wantError(t, status, body, http.StatusNotFound, "not_found", "")

	// Revoked: the next request with it answers 401.
	gone := b.must(t, http.StatusOK, "DELETE", path+"/"+str(t, made, "id"), aKey, nil)
	if gone["id"] != made["id"] || gone["deleted"] != true {
		t.Errorf("DELETE answered %v; want {id, deleted: true}", gone)
	}
	status, body, _ = b.do(t, "GET", "/v1/accounts/"+a, key, nil)
	wantError(t, status, body, http.StatusUnauthorized, "unauthenticated", "")
	status, body, _ = b.do(t, "DELETE", path+"/"+str(t, made, "id"), aKey, nil)
	wantError(t, status, body, http.StatusNotFound, "not_found", "")

	// The default key can be revoked too, by the account itself.
	b.must(t, http.StatusOK, "DELETE", path+"/"+defaultID, aKey, nil)
	status, body, _ = b.do(t, "GET", path, aKey, nil)
	wantError(t, status, body, http.StatusUnauthorized, "unauthenticated", "")
}

func TestAPIKeyRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, aKey := b.account(t, "")
	path := "/v1/accounts/" + a + "/api_keys"

	t.Run("names count characters", func(t *testing.T) {
		made := b.must(t, http.StatusCreated, "POST", path, aKey, map[string]any{"name": strings.Repeat("é", 100)})
		if made["name"] != strings.Repeat("é", 100) {
			t.Errorf("name = %v", made["name"])
		}
		b.must(t, http.StatusOK, "DELETE", path+"/"+str(t, made, "id"), aKey, nil)
		for _, name := range []string{strings.Repeat("é", 101), "a\u0000b"} {
			status, body, _ := b.do(t, "POST", path, aKey, map[string]any{"name": name})
			wantError(t, status, body, http.StatusBadRequest, "invalid", "name")
		}
		status, body, _ := b.do(t, "POST", path, aKey, map[string]any{"name": 7})
		wantError(t, status, body, http.StatusBadRequest, "invalid", "name")
	})

	t.Run("at most 20 keys", func(t *testing.T) {
		var last string
		for i := 1; i < ledger.MaxAPIKeys; i++ { // the default key is the first
			last = str(t, b.must(t, http.StatusCreated, "POST", path, aKey, map[string]any{"name": "k"}), "id")
		}
		status, body, _ := b.do(t, "POST", path, aKey, map[string]any{"name": "one too many"})
		wantError(t, status, body, http.StatusConflict, "limit_exceeded", "")
		list := b.must(t, http.StatusOK, "GET", path+"?limit=100", aKey, nil)
		if n := len(objects(t, list["data"])); n != ledger.MaxAPIKeys {
			t.Errorf("the account holds %d keys; want %d", n, ledger.MaxAPIKeys)
		}
		b.must(t, http.StatusOK, "DELETE", path+"/"+last, aKey, nil)
		b.must(t, http.StatusCreated, "POST", path, aKey, map[string]any{"name": "after a revoke"})
	})

	t.Run("a closed account makes no keys but revokes", func(t *testing.T) {
		c, cKey := b.account(t, "")
		cPath := "/v1/accounts/" + c + "/api_keys"
		extra := b.must(t, http.StatusCreated, "POST", cPath, cKey, map[string]any{"name": "x"})
		b.must(t, http.StatusOK, "PATCH", "/v1/accounts/"+c, b.adminKey, map[string]any{"status": "closed"})
		for _, key := range []string{cKey, b.adminKey} {
			status, body, _ := b.do(t, "POST", cPath, key, map[string]any{"name": "y"})
			wantError(t, status, body, http.StatusConflict, "account_closed", "")
		}
		b.must(t, http.StatusOK, "GET", cPath, cKey, nil) // its keys can still read
		b.must(t, http.StatusOK, "DELETE", cPath+"/"+str(t, extra, "id"), cKey, nil)
	})

	t.Run("unknown account", func(t *testing.T) {
		for _, method := range []string{"GET", "POST"} {
			status, body, _ := b.do(t, method, "/v1/accounts/acct_nobody/api_keys", b.adminKey, map[string]any{})
			wantError(t, status, body, http.StatusNotFound, "not_found", "")
		}
	})
}

// TestKeyLastUsedAtMostOncePerMinute: last_used_at follows use, but is
// written at most once a minute.
func TestKeyLastUsedAtMostOncePerMinute(t *testing.T) {
	t.Parallel()
	b, c := setupClock(t, Config{})
	a, aKey := b.account(t, "")
	path := "/v1/accounts/" + a + "/api_keys"
	lastUsed := func() time.Time {
		t.Helper()
		keys := objects(t, b.must(t, http.StatusOK, "GET", path, b.adminKey, nil)["data"])
		return wantTime(t, "last_used_at", keys[0]["last_used_at"])
	}
	first := c.Now()
	b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a, aKey, nil)
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("last_used_at = %v; want %v", got, first)
	}
	c.Advance(59 * time.Second)
	b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a, aKey, nil)
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("59s later last_used_at = %v; want it unwritten (%v)", got, first)
	}
	c.Advance(time.Second)
	b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a, aKey, nil)
	if got := lastUsed(); !got.Equal(c.Now()) {
		t.Errorf("a minute later last_used_at = %v; want %v", got, c.Now())
	}
}

// TestRevokedOnEveryReplica: two API servers on one PostgreSQL database, as
// two `topup serve` replicas; a key revoked through one is refused by the
// other at its next request.
func TestRevokedOnEveryReplica(t *testing.T) {
	t.Parallel()
	u := pgtest.Schema(t)
	admin := ledger.NewKey(ledger.AdminKeyPrefix)
	replica := func() *bundle {
		c := clock.System
		store, err := postgres.Open(t.Context(), u, c, ids.New(c))
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { store.Close() })
		return serveOn(t, store, c, admin, Config{})
	}
	one, two := replica(), replica()
	a, aKey := one.account(t, "")
	made := one.must(t, http.StatusCreated, "POST", "/v1/accounts/"+a+"/api_keys", aKey, map[string]any{"name": "leaked"})
	key := str(t, made, "key")
	two.must(t, http.StatusOK, "GET", "/v1/accounts/"+a, key, nil)
	one.must(t, http.StatusOK, "DELETE", "/v1/accounts/"+a+"/api_keys/"+str(t, made, "id"), aKey, nil)
	revoked := time.Now()
	status, body, _ := two.do(t, "GET", "/v1/accounts/"+a, key, nil)
	wantError(t, status, body, http.StatusUnauthorized, "unauthenticated", "")
	if took := time.Since(revoked); took > time.Second {
		t.Errorf("the other replica refused the key %v after the revoke; want within 1s", took)
	}
	two.must(t, http.StatusOK, "GET", "/v1/accounts/"+a, aKey, nil)
}

// TestFailedAuthLimit: 20 failures within 10 s from one address, and that
// address's requests without a valid key answer 429 with Retry-After; a
// valid key still passes and public routes are not limited.
func TestFailedAuthLimit(t *testing.T) {
	t.Parallel()
	b, c := setupClock(t, Config{})
	a, aKey := b.account(t, "")
	for i := range 20 {
		key := []string{"", "tpk_wrong"}[i%2]
		status, body, _ := b.do(t, "GET", "/v1/accounts/"+a, key, nil)
		wantError(t, status, body, http.StatusUnauthorized, "unauthenticated", "")
		c.Advance(100 * time.Millisecond)
	}
	for _, key := range []string{"", "tpk_wrong", aKey + "x"} {
		status, body, h := b.do(t, "GET", "/v1/accounts/"+a, key, nil)
		wantError(t, status, body, http.StatusTooManyRequests, "rate_limited", "")
		if h.Get("Retry-After") != "8" {
			t.Errorf("Retry-After = %q; want 8 (the first failure leaves the window 10s after it)", h.Get("Retry-After"))
		}
	}
	b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a, aKey, nil)
	b.must(t, http.StatusOK, "GET", "/v1/accounts", b.adminKey, nil)
	b.must(t, http.StatusOK, "GET", "/healthz", "", nil)
	c.Advance(8 * time.Second)
	status, body, _ := b.do(t, "GET", "/v1/accounts/"+a, "", nil)
	wantError(t, status, body, http.StatusUnauthorized, "unauthenticated", "")
}

// TestFailedAuthLimitBehindProxy: X-Forwarded-For names the client only
// when the connection comes from TOPUP_TRUSTED_PROXIES.
func TestFailedAuthLimitBehindProxy(t *testing.T) {
	t.Parallel()
	fail := func(b *bundle, from string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", b.srv.URL+"/v1/accounts", nil)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	t.Run("trusted proxy: per forwarded client", func(t *testing.T) {
		t.Parallel()
		trusted, _ := authlimit.ParseTrusted("127.0.0.1, ::1")
		b, _ := setupClock(t, Config{TrustedProxies: trusted})
		for range 20 {
			if status, _ := fail(b, "198.51.100.1"); status != http.StatusUnauthorized {
				t.Fatalf("a failure answered %d; want 401", status)
			}
		}
		if status, h := fail(b, "6.6.6.6, 198.51.100.1"); status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
			t.Errorf("the 21st failure (a forged hop before the client) answered %d %v; want 429 with Retry-After", status, h)
		}
		if status, _ := fail(b, "198.51.100.2"); status != http.StatusUnauthorized {
			t.Errorf("another client behind the proxy answered %d; want 401", status)
		}
	})
	t.Run("untrusted connection: X-Forwarded-For ignored", func(t *testing.T) {
		t.Parallel()
		b, _ := setupClock(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		for i := range 20 {
			fail(b, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String())
		}
		if status, _ := fail(b, "198.51.100.250"); status != http.StatusTooManyRequests {
			t.Errorf("a fresh X-Forwarded-For from an untrusted connection answered %d; want 429", status)
		}
	})
}
