package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/topup"
)

// billingBundle is an API wired as `topup serve` wires it: the sandbox
// provider charges, the top-up engine runs (unless the test drives it
// itself), and the usual bundle helpers talk to it.
type billingBundle struct {
	*bundle
	engine *topup.Engine
	// sandboxEvents are the refund and dispute events the sandbox sent,
	// each applied as `topup serve` applies them (topup.ApplyEvent).
	sandboxEvents *sentEvents
}

// sentEvents records the events the sandbox sends.
type sentEvents struct {
	mu  sync.Mutex
	evs []payment.Event
}

func (s *sentEvents) add(ev payment.Event) {
	s.mu.Lock()
	s.evs = append(s.evs, ev)
	s.mu.Unlock()
}

// take returns the events sent since the last take.
func (s *sentEvents) take() []payment.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.evs
	s.evs = nil
	return out
}

// billingOptions vary the billing setup.
type billingOptions struct {
	// webhooks verifies provider webhooks (the Stripe provider); nil refuses
	// them.
	webhooks WebhookParser
	// idleEngine leaves the worker stopped, so that top-ups stay where the
	// test puts them.
	idleEngine bool
	// latency makes each sandbox charge take this long.
	latency time.Duration
	// maxBody is TOPUP_MAX_BODY (0: the default).
	maxBody int64
	// business is the operator as receipts name it.
	business receipt.Business
	// postgres runs on a PostgreSQL schema of the test's own (pgtest)
	// instead of a SQLite file.
	postgres bool
}

// setupBilling starts a fresh API with payments on a new SQLite database,
// as cmd/topup/instance.go does; everything stops when the test ends.
func setupBilling(t *testing.T, o billingOptions) *billingBundle {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := clock.System
	g := ids.New(c)
	var store *sqlstore.DB
	if o.postgres {
		store = pgtest.Open(t, c, g)
	} else {
		var err error
		if store, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "topup.db"), c, g); err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() {
			if err := store.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
	}
	metrics := NewMetrics(prometheus.NewRegistry())
	committer := ledger.NewCommitter(store.Ledger, ledger.CommitterConfig{OnCommit: metrics.ObserveCommit, Logger: log})
	// The hosted pages and action_url need the server's address before
	// the API is built.
	srv := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + srv.Listener.Addr().String()
	sent := &sentEvents{}
	var engine *topup.Engine
	applyEvent := func(ctx context.Context, ev payment.Event) error {
		sent.add(ev)
		return topup.Events{Store: store, Backoff: engine.RetryBackoff(), Log: log, OnDispute: metrics.ObserveDispute}.Apply(ctx, ev)
	}
	sb := sandbox.New(store.Sandbox, sandbox.Config{BaseURL: publicURL, Clock: c, IDs: g, Latency: o.latency, Events: applyEvent})
	engine = topup.NewEngine(store.Payments, sb, topup.Config{Clock: c, Logger: log, PollInterval: 50 * time.Millisecond})
	committer.OnTopUp(engine.Kick)
	committer.Start()
	t.Cleanup(committer.Stop)
	if !o.idleEngine {
		engine.Start()
		t.Cleanup(engine.Stop)
	}
	adminKey := ledger.NewKey(ledger.AdminKeyPrefix)
	svc := billing.New(billing.Config{PublicURL: publicURL},
		billing.Deps{Store: store.Payments, Alerts: store.Outbox, Provider: sb, Sandbox: sb, Engine: engine, Clock: c, Logger: log})
	refunder := refund.NewWorker(store.Refunds, sb, refund.Config{Clock: c, Logger: log})
	t.Cleanup(refunder.Stop)
	api := New(Config{AdminKeyHash: ledger.HashKey(adminKey), PublicURL: publicURL, MaxBodyBytes: o.maxBody, Business: o.business}, Deps{
		Store: store.Ledger, Alerts: store.Outbox, Committer: committer, Clock: c, IDs: g, Logger: log, Metrics: metrics,
		Billing: store.Payments, Disputes: store.Refunds, Service: svc, Engine: engine, Webhooks: o.webhooks, Sandbox: testSandboxPages{sb},
		Refunder: refunder, Refunds: store.Refunds,
	})
	srv.Config.Handler = api
	srv.Start()
	t.Cleanup(srv.Close)
	return &billingBundle{bundle: &bundle{srv: srv, client: srv.Client(), store: store, adminKey: adminKey}, engine: engine, sandboxEvents: sent}
}

// testSandboxPages adapts the sandbox to the API's Sandbox, as
// cmd/topup/payments.go does.
type testSandboxPages struct{ p *sandbox.Provider }

func (s testSandboxPages) CardChoices() []CardChoice {
	var out []CardChoice
	for _, c := range sandbox.CardOptions() {
		out = append(out, CardChoice{Token: c.Token, Label: c.Label})
	}
	return out
}

func (s testSandboxPages) ChooseCard(ctx context.Context, sessionID, token string) (string, error) {
	return s.p.ChooseCard(ctx, sessionID, token)
}

func (s testSandboxPages) Authenticate(ctx context.Context, chargeID string, ok bool) (payment.Charge, error) {
	return s.p.Authenticate(ctx, chargeID, ok)
}

func (s testSandboxPages) Dispute(ctx context.Context, chargeID, reason string) (payment.Dispute, error) {
	return s.p.Dispute(ctx, chargeID, reason)
}

func (s testSandboxPages) CloseDispute(ctx context.Context, chargeID, outcome string) (payment.Dispute, error) {
	return s.p.CloseDispute(ctx, chargeID, outcome)
}

func (s testSandboxPages) ChargeLog(ctx context.Context, limit int, startingAfter string) ([]SandboxCharge, bool, error) {
	charges, more, err := s.p.Charges(ctx, limit, startingAfter)
	out := make([]SandboxCharge, 0, len(charges))
	for _, c := range charges {
		out = append(out, SandboxCharge{ID: c.ID, IdempotencyKey: c.IdempotencyKey, TopUpID: c.TopUpID, Amount: c.Amount,
			Currency: c.Currency, Status: string(c.Status), CreatedAt: c.CreatedAt})
	}
	return out, more, err
}

// attach adds a sandbox test card to an account and returns the saved card.
func (b *billingBundle) attach(t *testing.T, acct, key, token string) map[string]any {
	t.Helper()
	return b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/payment_methods", key, map[string]any{"payment_method": token})
}

// cardIDs lists an account's payment methods as the API lists them,
// newest first, and names the default.
func (b *billingBundle) cardIDs(t *testing.T, acct string) (all []string, def string) {
	t.Helper()
	for _, c := range objects(t, b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/payment_methods", b.adminKey, nil)["data"]) {
		all = append(all, str(t, c, "id"))
		if c["default"] == true {
			if def != "" {
				t.Fatalf("two default cards: %s and %s", def, c["id"])
			}
			def = str(t, c, "id")
		}
	}
	return all, def
}

func (b *billingBundle) balance(t *testing.T, acct string) string {
	t.Helper()
	return str(t, b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct, b.adminKey, nil), "balance")
}

func (b *billingBundle) topUps(t *testing.T, acct string) []map[string]any {
	t.Helper()
	return objects(t, b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/top_ups?limit=100", b.adminKey, nil)["data"])
}

// waitTopUp polls a top-up until it reaches status; the engine works in the
// background.
func (b *billingBundle) waitTopUp(t *testing.T, acct, id, status string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		tu := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/top_ups/"+id, b.adminKey, nil)
		if tu["status"] == status {
			return tu
		}
		if time.Now().After(deadline) {
			t.Fatalf("top-up %s is %v after 15 s, want %s: %v", id, tu["status"], status, tu)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// charges is the sandbox's log of every charge, newest first.
func (b *billingBundle) charges(t *testing.T) []map[string]any {
	t.Helper()
	return objects(t, b.must(t, http.StatusOK, "GET", "/v1/sandbox/charges?limit=100", b.adminKey, nil)["data"])
}

// chargesFor counts the sandbox charges sent under a top-up's key.
func (b *billingBundle) chargesFor(t *testing.T, topUpID string) int {
	t.Helper()
	n := 0
	for _, c := range b.charges(t) {
		if c["idempotency_key"] == "topup-"+topUpID {
			n++
		}
	}
	return n
}

// topUpEntries returns the ledger's top_up entries, by top-up id.
func (b *billingBundle) topUpEntries(t *testing.T, acct string) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, e := range b.allEntries(t, acct) {
		if e["kind"] == "top_up" {
			id, _ := e["top_up_id"].(string)
			out[id] = append(out[id], e)
		}
	}
	return out
}

// TestCardsAttachListDefaultRemove walks a customer's cards: attaching, listing, the
// default, and removal, with what removal does to Automatic Top-Up.
func TestCardsAttachListDefaultRemove(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, key := b.account(t, "")
	base := "/v1/accounts/" + acct + "/payment_methods"

	first := b.attach(t, acct, key, "pm_card_visa")
	second := b.attach(t, acct, key, "pm_card_visa")
	id1, id2 := str(t, first, "id"), str(t, second, "id")
	if id1 == id2 || !strings.HasPrefix(id1, "pm_") || id1 == "pm_card_visa" {
		t.Fatalf("attaching pm_card_visa twice gave ids %q and %q; want two new pm_ ids", id1, id2)
	}
	if first["default"] != true || second["default"] != false {
		t.Errorf("default = %v, %v; want the first card only", first["default"], second["default"])
	}
	if first["brand"] != "visa" || first["last4"] != "4242" || first["exp_month"] == nil || first["exp_year"] == nil {
		t.Errorf("card display data = %v", first)
	}
	if all, def := b.cardIDs(t, acct); len(all) != 2 || all[0] != id2 || all[1] != id1 || def != id1 {
		t.Fatalf("list = %v default %s; want [%s %s], default %s", all, def, id2, id1, id1)
	}

	status, body, _ := b.do(t, "POST", base, key, map[string]any{"payment_method": "pm_card_nonexistent"})
	wantError(t, status, body, http.StatusBadRequest, "invalid", "payment_method")
	status, body, _ = b.do(t, "POST", base, key, map[string]any{})
	wantError(t, status, body, http.StatusBadRequest, "invalid", "payment_method")

	got := b.must(t, http.StatusOK, "POST", base+"/"+id2+"/default", key, nil)
	if got["id"] != id2 || got["default"] != true {
		t.Errorf("make default answered %v", got)
	}
	if _, def := b.cardIDs(t, acct); def != id2 {
		t.Fatalf("default after POST .../default = %s, want %s", def, id2)
	}

	// Removing a card Automatic Top-Up does not use leaves it on.
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/credits", b.adminKey, map[string]any{"amount": "100", "idempotency_key": "c"})
	b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
	del := b.must(t, http.StatusOK, "DELETE", base+"/"+id1, key, nil)
	if del["id"] != id1 || del["deleted"] != true || del["auto_top_up_disabled"] != false {
		t.Errorf("DELETE of a card not in use answered %v; want {id, deleted: true, auto_top_up_disabled: false}", del)
	}
	// Removing the default, which Automatic Top-Up follows, moves the
	// default to the newest remaining card and keeps Automatic Top-Up on.
	id3 := str(t, b.attach(t, acct, key, "pm_card_mastercard"), "id")
	del = b.must(t, http.StatusOK, "DELETE", base+"/"+id2, key, nil)
	if del["auto_top_up_disabled"] != false {
		t.Errorf("DELETE of the default with another card left answered %v; want auto_top_up_disabled false", del)
	}
	if all, def := b.cardIDs(t, acct); len(all) != 1 || def != id3 {
		t.Errorf("after removing the default: cards %v default %s; want [%s] default", all, def, id3)
	}
	if st := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/auto_top_up", key, nil); st["enabled"] != true {
		t.Errorf("auto top-up after the default moved = %v; want enabled", st)
	}

	// Removing the card Automatic Top-Up names switches it off, and says so.
	id4 := str(t, b.attach(t, acct, key, "pm_card_visa"), "id")
	b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key,
		map[string]any{"enabled": true, "threshold": "5", "target": "20", "payment_method": id4})
	del = b.must(t, http.StatusOK, "DELETE", base+"/"+id4, key, nil)
	if del["id"] != id4 || del["deleted"] != true || del["auto_top_up_disabled"] != true {
		t.Errorf("DELETE of the named card answered %v; want auto_top_up_disabled true", del)
	}
	st := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/auto_top_up", key, nil)
	if st["enabled"] != false || st["disabled_reason"] != "payment_method_removed" {
		t.Errorf("auto top-up after its card was removed = %v; want enabled false, disabled_reason payment_method_removed", st)
	}
	if st["payment_method"] == id4 {
		t.Errorf("auto top-up still names the removed card: %v", st)
	}
	found := false
	for _, n := range objects(t, b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/notifications", key, nil)["data"]) {
		found = found || n["type"] == "auto_top_up.disabled"
	}
	if !found {
		t.Error("no auto_top_up.disabled notification after the card was removed")
	}
	// The customer can still save the switched-off settings without
	// naming a card: the removed one is no longer held against them.
	b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key, map[string]any{"enabled": false})

	status, body, _ = b.do(t, "DELETE", base+"/"+id4, key, nil)
	wantError(t, status, body, http.StatusNotFound, "not_found", "")
}

// TestCardAndTopUpRoutesOfAnotherAccountAre404 proves an account key reaches no
// other account's cards, settings or top-ups, and changes nothing there.
func TestCardAndTopUpRoutesOfAnotherAccountAre404(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	a, aKey := b.account(t, "")
	other, otherKey := b.account(t, "")
	card := str(t, b.attach(t, a, aKey, "pm_card_visa"), "id")
	tu := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+a+"/top_ups", aKey, map[string]any{"amount": "10", "idempotency_key": "t1"})
	tuID := str(t, tu, "id")
	settings := map[string]any{"enabled": true, "threshold": "5", "target": "20"}

	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/accounts/" + a + "/payment_methods", nil},
		{"POST", "/v1/accounts/" + a + "/payment_methods", map[string]any{"payment_method": "pm_card_visa"}},
		{"POST", "/v1/accounts/" + a + "/payment_methods/setup", nil},
		{"DELETE", "/v1/accounts/" + a + "/payment_methods/" + card, nil},
		{"POST", "/v1/accounts/" + a + "/payment_methods/" + card + "/default", nil},
		{"GET", "/v1/accounts/" + a + "/auto_top_up", nil},
		{"PUT", "/v1/accounts/" + a + "/auto_top_up", settings},
		{"GET", "/v1/accounts/" + a + "/auto_top_up/audit", nil},
		{"POST", "/v1/accounts/" + a + "/top_ups", map[string]any{"amount": "10", "idempotency_key": "t2"}},
		{"GET", "/v1/accounts/" + a + "/top_ups", nil},
		{"GET", "/v1/accounts/" + a + "/top_ups/" + tuID, nil},
		// The other account's own paths, naming a's card or top-up.
		{"DELETE", "/v1/accounts/" + other + "/payment_methods/" + card, nil},
		{"POST", "/v1/accounts/" + other + "/payment_methods/" + card + "/default", nil},
		{"GET", "/v1/accounts/" + other + "/top_ups/" + tuID, nil},
	}
	for _, r := range routes {
		status, body, _ := b.do(t, r.method, r.path, otherKey, r.body)
		if status != http.StatusNotFound {
			t.Errorf("%s %s with another account's key = %d %v, want 404", r.method, r.path, status, body)
			continue
		}
		wantError(t, status, body, http.StatusNotFound, "not_found", "")
	}
	// A card of a's is no card of other's either.
	status, body, _ := b.do(t, "POST", "/v1/accounts/"+other+"/top_ups", otherKey, map[string]any{"amount": "10", "idempotency_key": "t3", "payment_method": card})
	wantError(t, status, body, http.StatusBadRequest, "invalid", "payment_method")
	status, body, _ = b.do(t, "PUT", "/v1/accounts/"+other+"/auto_top_up", otherKey, map[string]any{"enabled": true, "threshold": "5", "target": "20", "payment_method": card})
	wantError(t, status, body, http.StatusBadRequest, "invalid", "payment_method")

	if all, def := b.cardIDs(t, a); len(all) != 1 || def != card {
		t.Errorf("a's cards after the other account's calls = %v (default %s), want [%s]", all, def, card)
	}
	if st := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+a+"/auto_top_up", aKey, nil); st["enabled"] != false {
		t.Errorf("a's settings changed: %v", st)
	}
	if tus := b.topUps(t, a); len(tus) != 1 {
		t.Errorf("a has %d top-ups, want 1", len(tus))
	}
	if got := b.balance(t, a); got != "10.00" {
		t.Errorf("a's balance = %s, want 10.00", got)
	}
	if n := len(b.charges(t)); n != 1 {
		t.Errorf("%d sandbox charges, want 1", n)
	}
}

// badSettings is the catalogue of refused settings: each answers 400
// invalid naming the field, and saves nothing.
var badSettings = []struct {
	name  string
	body  string
	field string
}{
	{"threshold equals target", `{"enabled": true, "threshold": "20.00", "target": "20.00"}`, "target"},
	{"threshold above target", `{"enabled": true, "threshold": "30", "target": "20"}`, "target"},
	{"gap below the minimum charge", `{"enabled": true, "threshold": "10.00", "target": "10.49"}`, "target"},
	{"target above TOPUP_MAX_TARGET", `{"enabled": true, "threshold": "5", "target": "10000.01"}`, "target"},
	{"threshold in tenths of a cent", `{"enabled": true, "threshold": "5.001", "target": "20"}`, "threshold"},
	{"target in tenths of a cent", `{"enabled": true, "threshold": "5", "target": "20.005"}`, "target"},
	{"threshold as a JSON number", `{"enabled": true, "threshold": 5, "target": "20"}`, "threshold"},
	{"target as a JSON number", `{"enabled": true, "threshold": "5", "target": 20}`, "target"},
	{"zero threshold", `{"enabled": true, "threshold": "0", "target": "20"}`, "threshold"},
	{"negative threshold", `{"enabled": true, "threshold": "-1", "target": "20"}`, "threshold"},
	{"enabled without threshold", `{"enabled": true, "target": "20"}`, "threshold"},
	{"enabled without target", `{"enabled": true, "threshold": "5"}`, "target"},
	{"missing enabled", `{"threshold": "5", "target": "20"}`, "enabled"},
	{"enabled as a string", `{"enabled": "true", "threshold": "5", "target": "20"}`, "enabled"},
	{"unknown payment method", `{"enabled": true, "threshold": "5", "target": "20", "payment_method": "pm_nope"}`, "payment_method"},
	{"monthly limit below the minimum charge", `{"enabled": true, "threshold": "5", "target": "20", "monthly_limit": "0.10"}`, "monthly_limit"},
	{"unknown field", `{"enabled": true, "threshold": "5", "target": "20", "bogus": 1}`, "bogus"},
}

// TestAutoTopUpSettings covers reading before any save, the catalogue of
// refusals (nothing saved), a valid save and the audit trail.
func TestAutoTopUpSettings(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, key := b.account(t, "")
	path := "/v1/accounts/" + acct + "/auto_top_up"

	before := b.must(t, http.StatusOK, "GET", path, key, nil)
	for _, k := range []string{"threshold", "target", "disabled_reason"} {
		if v, ok := before[k]; !ok || v != nil {
			t.Errorf("before any save %s = %v (present %t), want null", k, v, ok)
		}
	}
	if before["enabled"] != false {
		t.Errorf("before any save enabled = %v, want false", before["enabled"])
	}

	// Enabling needs a card.
	status, body, _ := b.do(t, "PUT", path, key, `{"enabled": true, "threshold": "5", "target": "20"}`)
	wantError(t, status, body, http.StatusBadRequest, "invalid", "payment_method")
	card := str(t, b.attach(t, acct, key, "pm_card_visa"), "id")

	for _, tt := range badSettings {
		status, body, _ := b.do(t, "PUT", path, key, tt.body)
		if status != http.StatusBadRequest {
			t.Errorf("%s: PUT %s = %d %v, want 400", tt.name, tt.body, status, body)
			continue
		}
		t.Run(tt.name, func(t *testing.T) { wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field) })
	}
	if after := b.must(t, http.StatusOK, "GET", path, key, nil); !sameJSON(before, after) {
		t.Errorf("refused settings changed what GET answers:\nbefore %v\nafter  %v", before, after)
	}
	if audit := objects(t, b.must(t, http.StatusOK, "GET", path+"/audit", key, nil)["data"]); len(audit) != 0 {
		t.Errorf("refused settings left %d audit rows: %v", len(audit), audit)
	}

	saved := b.must(t, http.StatusOK, "PUT", path, key, `{"enabled": true, "threshold": "5", "target": "20.5"}`)
	if saved["enabled"] != true || saved["threshold"] != "5.00" || saved["target"] != "20.50" || saved["payment_method"] != nil {
		t.Errorf("saved settings = %v", saved)
	}
	if got := b.must(t, http.StatusOK, "GET", path, key, nil); got["threshold"] != "5.00" || got["target"] != "20.50" || got["enabled"] != true {
		t.Errorf("GET after the save = %v", got)
	}
	// The operator names the card and adds a monthly limit.
	b.must(t, http.StatusOK, "PUT", path, b.adminKey, map[string]any{"enabled": true, "threshold": "6", "target": "30", "payment_method": card, "monthly_limit": "100"})
	// A refusal after a save keeps the saved settings.
	kept := b.must(t, http.StatusOK, "GET", path, key, nil)
	status, body, _ = b.do(t, "PUT", path, key, `{"enabled": true, "threshold": "30", "target": "6"}`)
	wantError(t, status, body, http.StatusBadRequest, "invalid", "target")
	// The balance is below the threshold, so the worker is charging in the
	// background and month_to_date may move once it fixes the amount; the
	// settings themselves must not.
	got := b.must(t, http.StatusOK, "GET", path, key, nil)
	delete(kept, "month_to_date")
	delete(got, "month_to_date")
	if !sameJSON(kept, got) {
		t.Errorf("a refused PUT changed the saved settings:\nbefore %v\nafter  %v", kept, got)
	}

	audit := objects(t, b.must(t, http.StatusOK, "GET", path+"/audit", key, nil)["data"])
	if len(audit) != 2 {
		t.Fatalf("audit has %d rows, want 2: %v", len(audit), audit)
	}
	newest, oldest := audit[0], audit[1]
	if newest["actor"] != "admin" || oldest["actor"] != "account:"+acct {
		t.Errorf("audit actors = %v, %v; want admin (newest), account:%s", newest["actor"], oldest["actor"], acct)
	}
	wantTime(t, "audit created_at", oldest["created_at"])
	old, _ := oldest["old"].(map[string]any)
	nw, _ := oldest["new"].(map[string]any)
	// Money is a string and unset is null, as in the settings themselves.
	wantOld := map[string]any{"enabled": false, "threshold": nil, "target": nil, "payment_method": nil, "monthly_limit": nil, "disabled_reason": nil}
	wantNew := map[string]any{"enabled": true, "threshold": "5.00", "target": "20.50", "payment_method": nil, "monthly_limit": nil, "disabled_reason": nil}
	if !sameJSON(old, wantOld) || !sameJSON(nw, wantNew) {
		t.Errorf("first audit row old %v new %v; want %v → %v", old, nw, wantOld, wantNew)
	}
	firstNew := nw
	old, _ = newest["old"].(map[string]any)
	nw, _ = newest["new"].(map[string]any)
	wantNew = map[string]any{"enabled": true, "threshold": "6.00", "target": "30.00", "payment_method": card, "monthly_limit": "100.00", "disabled_reason": nil}
	if !sameJSON(old, firstNew) || !sameJSON(nw, wantNew) {
		t.Errorf("second audit row old %v new %v; want the first row's new → %v", old, nw, wantNew)
	}
}

func sameJSON(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSavingSettingsBelowThresholdTopsUp: a save when the balance is
// already low creates a top-up (trigger settings) that brings the balance to
// the target.
func TestSavingSettingsBelowThresholdTopsUp(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, key := b.funded(t, "3")
	b.attach(t, acct, key, "pm_card_visa")
	saved := b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
	id, _ := saved["top_up_id"].(string)
	tus := b.topUps(t, acct)
	if len(tus) != 1 {
		t.Fatalf("%d top-ups after saving below the threshold, want 1", len(tus))
	}
	if id == "" || tus[0]["id"] != id {
		t.Fatalf("PUT answered top_up_id %q, the list has %v", id, tus[0]["id"])
	}
	tu := b.waitTopUp(t, acct, id, "succeeded")
	if tu["trigger"] != "settings" || tu["amount"] != "17.00" || tu["completed_at"] == nil {
		t.Errorf("top-up = %v; want trigger settings, amount 17.00, completed", tu)
	}
	if got := b.balance(t, acct); got != "20.00" {
		t.Errorf("balance = %s, want 20.00 (the target)", got)
	}
	if e := b.topUpEntries(t, acct)[id]; len(e) != 1 || e[0]["amount"] != "17.00" {
		t.Errorf("ledger entries of top-up %s = %v, want one of 17.00", id, e)
	}
	if n := b.chargesFor(t, id); n != 1 {
		t.Errorf("%d sandbox charges for top-up %s, want 1", n, id)
	}
	st := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/auto_top_up", key, nil)
	if st["month_to_date"] != "17.00" {
		t.Errorf("month_to_date = %v, want 17.00", st["month_to_date"])
	}
}

// TestManualTopUps covers a manual purchase: success, replay, conflict,
// refusals, a decline (402) and a 3-D Secure card completed on the
// action_url page.
func TestManualTopUps(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, key := b.account(t, "")
	path := "/v1/accounts/" + acct + "/top_ups"
	b.attach(t, acct, key, "pm_card_visa")

	first := b.must(t, http.StatusCreated, "POST", path, key, map[string]any{"amount": "10", "idempotency_key": "buy-1"})
	id := str(t, first, "id")
	if first["status"] != "succeeded" || first["amount"] != "10.00" || first["trigger"] != "manual" {
		t.Errorf("manual top-up = %v; want succeeded 10.00 manual", first)
	}
	if got := b.balance(t, acct); got != "10.00" {
		t.Errorf("balance = %s, want 10.00", got)
	}
	status, again, h := b.do(t, "POST", path, key, map[string]any{"amount": "10.00", "idempotency_key": "buy-1"})
	if status != http.StatusOK || h.Get("Idempotent-Replayed") != "true" || again["id"] != id || again["status"] != "succeeded" {
		t.Errorf("replay = %d %v (Idempotent-Replayed %q); want 200, replayed, top-up %s", status, again, h.Get("Idempotent-Replayed"), id)
	}
	status, body, _ := b.do(t, "POST", path, key, map[string]any{"amount": "11", "idempotency_key": "buy-1"})
	wantError(t, status, body, http.StatusConflict, "idempotency_conflict", "idempotency_key")
	if n := len(b.charges(t)); n != 1 {
		t.Errorf("%d sandbox charges after a replay and a conflict, want 1", n)
	}

	for _, tt := range []struct{ name, body, field string }{
		{"below the minimum charge", `{"amount": "0.49", "idempotency_key": "bad"}`, "amount"},
		{"tenths of a cent", `{"amount": "10.001", "idempotency_key": "bad"}`, "amount"},
		{"above TOPUP_MAX_TARGET", `{"amount": "10000.01", "idempotency_key": "bad"}`, "amount"},
		{"JSON number", `{"amount": 10, "idempotency_key": "bad"}`, "amount"},
		{"zero", `{"amount": "0", "idempotency_key": "bad"}`, "amount"},
		{"no key", `{"amount": "10"}`, "idempotency_key"},
		{"unknown card", `{"amount": "10", "idempotency_key": "bad", "payment_method": "pm_nope"}`, "payment_method"},
	} {
		status, body, _ := b.do(t, "POST", path, key, tt.body)
		t.Run(tt.name, func(t *testing.T) { wantError(t, status, body, http.StatusBadRequest, "invalid", tt.field) })
	}
	if got, n := b.balance(t, acct), len(b.charges(t)); got != "10.00" || n != 1 {
		t.Errorf("after refused top-ups: balance %s, %d charges; want 10.00 and 1", got, n)
	}

	// A declined card: 402 with the decline and the top-up, which is kept.
	declined := str(t, b.attach(t, acct, key, "pm_card_chargeDeclined"), "id")
	decline := map[string]any{"amount": "5", "idempotency_key": "buy-2", "payment_method": declined}
	status, body, _ = b.do(t, "POST", path, key, decline)
	wantError(t, status, body, http.StatusPaymentRequired, "card_declined", "")
	e, _ := body["error"].(map[string]any)
	failedID, _ := e["top_up_id"].(string)
	if e["decline_code"] != "card_declined" || failedID == "" {
		t.Fatalf("decline error = %v; want decline_code card_declined and top_up_id", e)
	}
	status, body, h = b.do(t, "POST", path, key, decline)
	wantError(t, status, body, http.StatusPaymentRequired, "card_declined", "")
	if e, _ := body["error"].(map[string]any); e["top_up_id"] != failedID || e["decline_code"] != "card_declined" || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed decline = %v (Idempotent-Replayed %q); want the same 402 for %s", body, h.Get("Idempotent-Replayed"), failedID)
	}
	if n := b.chargesFor(t, failedID); n != 1 {
		t.Errorf("the declined top-up was charged %d times, want 1", n)
	}
	var listed map[string]any
	for _, tu := range b.topUps(t, acct) {
		if tu["id"] == failedID {
			listed = tu
		}
	}
	if listed == nil || listed["status"] != "failed" || listed["failure_code"] != "card_declined" || listed["payment_method"] != declined {
		t.Errorf("the declined top-up is listed as %v; want failed, card_declined, on %s", listed, declined)
	}
	if got := b.balance(t, acct); got != "10.00" {
		t.Errorf("balance after a decline = %s, want 10.00", got)
	}

	// 3-D Secure: 201 requires_action, completed on the action_url page.
	threeDS := str(t, b.attach(t, acct, key, "pm_card_authenticationRequired"), "id")
	pending := b.must(t, http.StatusCreated, "POST", path, key, map[string]any{"amount": "7", "idempotency_key": "buy-3", "payment_method": threeDS})
	pendingID := str(t, pending, "id")
	actionURL, _ := pending["action_url"].(string)
	if pending["status"] != "requires_action" || !strings.HasPrefix(actionURL, b.srv.URL+"/pay/"+pendingID) {
		t.Fatalf("3-D Secure top-up = %v; want requires_action with an action_url on this server", pending)
	}
	if got := b.balance(t, acct); got != "10.00" {
		t.Errorf("balance before authentication = %s, want 10.00", got)
	}
	page := b.page(t, "GET", actionURL, nil)
	if !strings.Contains(page, "7.00") || !strings.Contains(page, `name="result"`) {
		t.Errorf("the action page does not offer the challenge for 7.00:\n%s", page)
	}
	page = b.page(t, "POST", actionURL, url.Values{"result": {"ok"}})
	if !strings.Contains(page, "succeeded") {
		t.Errorf("the action page after authentication does not say succeeded:\n%s", page)
	}
	if tu := b.must(t, http.StatusOK, "GET", path+"/"+pendingID, key, nil); tu["status"] != "succeeded" || tu["action_url"] != nil {
		t.Errorf("top-up after authentication = %v; want succeeded without action_url", tu)
	}
	b.page(t, "POST", actionURL, url.Values{"result": {"ok"}})
	if got := b.balance(t, acct); got != "17.00" {
		t.Errorf("balance after authentication = %s, want 17.00", got)
	}
	entries := b.topUpEntries(t, acct)
	if len(entries[pendingID]) != 1 || len(entries[id]) != 1 || len(entries) != 2 {
		t.Errorf("top_up ledger entries = %v; want one for %s and one for %s", entries, id, pendingID)
	}
	if n := b.chargesFor(t, pendingID); n != 1 {
		t.Errorf("the 3-D Secure top-up was charged %d times, want 1", n)
	}
}

// page fetches an HTML page (following redirects), failing on anything but
// 200.
func (b *billingBundle) page(t *testing.T, method, u string, form url.Values) string {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s %s = %d %s: %s", method, u, resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	return string(data)
}

// TestUsageCrossingThresholdStartsTopUp: the debit that takes the balance below
// the threshold names the top-up it created, which refills to the target.
func TestUsageCrossingThresholdStartsTopUp(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, key := b.funded(t, "10")
	b.attach(t, acct, key, "pm_card_visa")
	saved := b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
	if saved["top_up_id"] != nil {
		t.Fatalf("saving above the threshold created top-up %v", saved["top_up_id"])
	}
	above := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/usage", b.adminKey, map[string]any{"amount": "5", "idempotency_key": "u1"})
	if above["top_up_id"] != nil {
		t.Errorf("a debit leaving the balance at the threshold (5.00) created top-up %v; the rule is strictly below", above["top_up_id"])
	}
	res := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/usage", b.adminKey, map[string]any{"amount": "0.000001", "idempotency_key": "u2"})
	id, _ := res["top_up_id"].(string)
	if id == "" {
		t.Fatalf("the debit crossing the threshold answered %v, want a top_up_id", res)
	}
	tu := b.waitTopUp(t, acct, id, "succeeded")
	if tu["trigger"] != "threshold" || tu["amount"] != "15.01" {
		t.Errorf("top-up = %v; want trigger threshold, amount 15.01 (20.00 - 4.999999, rounded up to the cent)", tu)
	}
	if got := b.balance(t, acct); got != "20.009999" {
		t.Errorf("balance = %s, want 20.009999", got)
	}
	if n := len(b.topUps(t, acct)); n != 1 {
		t.Errorf("%d top-ups, want 1", n)
	}
	if n := b.chargesFor(t, id); n != 1 {
		t.Errorf("%d charges for top-up %s, want 1", n, id)
	}
}

// TestSandboxChargesNeedAdmin: the sandbox's charge log is the operator's.
func TestSandboxChargesNeedAdmin(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, key := b.account(t, "")
	b.attach(t, acct, key, "pm_card_visa")
	tu := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/top_ups", key, map[string]any{"amount": "12.5", "idempotency_key": "k"})

	status, body, _ := b.do(t, "GET", "/v1/sandbox/charges", key, nil)
	wantError(t, status, body, http.StatusForbidden, "forbidden", "")
	status, body, _ = b.do(t, "GET", "/v1/sandbox/charges", "", nil)
	wantError(t, status, body, http.StatusUnauthorized, "unauthenticated", "")

	list := b.must(t, http.StatusOK, "GET", "/v1/sandbox/charges", b.adminKey, nil)
	charges := objects(t, list["data"])
	if len(charges) != 1 || list["has_more"] != false {
		t.Fatalf("charge log = %v, want one charge", list)
	}
	c := charges[0]
	if !strings.HasPrefix(str(t, c, "id"), "pi_") || c["idempotency_key"] != "topup-"+str(t, tu, "id") || c["amount"] != "12.50" || c["status"] != "succeeded" {
		t.Errorf("charge = %v; want pi_…, key topup-%s, 12.50, succeeded", c, tu["id"])
	}
	wantTime(t, "charge created_at", c["created_at"])
}

// TestManualTopUpReplayWhileCharging: a replay that arrives while the first
// request is still waiting for the provider answers 409 request_in_progress
// and charges nothing; once the first has answered, the replay returns the
// same top-up.
func TestManualTopUpReplayWhileCharging(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{latency: 700 * time.Millisecond})
	acct, key := b.account(t, "")
	b.attach(t, acct, key, "pm_card_visa")
	body := map[string]any{"amount": "10.00", "idempotency_key": "buy-1"}
	first := make(chan map[string]any, 1)
	go func() {
		status, got, _ := b.do(t, "POST", "/v1/accounts/"+acct+"/top_ups", key, body)
		if status != http.StatusCreated {
			t.Errorf("first request: %d %v", status, got)
		}
		first <- got
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(b.charges(t)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	status, got, _ := b.do(t, "POST", "/v1/accounts/"+acct+"/top_ups", key, body)
	if status != http.StatusConflict || got["error"].(map[string]any)["code"] != "request_in_progress" {
		t.Fatalf("replay during the charge = %d %v; want 409 request_in_progress", status, got)
	}
	done := <-first
	status, got, h := b.do(t, "POST", "/v1/accounts/"+acct+"/top_ups", key, body)
	if status != http.StatusOK || got["id"] != done["id"] || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after the answer = %d %v; want 200 with top-up %v", status, got, done["id"])
	}
	if n := b.chargesFor(t, done["id"].(string)); n != 1 {
		t.Fatalf("%d charges for the top-up; want 1", n)
	}
}

// TestCardListPages: the cards list follows the rules of every list:
// limit, starting_after, has_more, and 400 for a bad limit or cursor.
func TestCardListPages(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{idleEngine: true})
	acct, key := b.account(t, "")
	var want []string
	for range 3 {
		want = append([]string{str(t, b.attach(t, acct, key, "pm_card_visa"), "id")}, want...)
	}
	base := "/v1/accounts/" + acct + "/payment_methods"
	first := b.must(t, http.StatusOK, "GET", base+"?limit=2", key, nil)
	got := objects(t, first["data"])
	if len(got) != 2 || got[0]["id"] != want[0] || got[1]["id"] != want[1] || first["has_more"] != true {
		t.Fatalf("first page = %v; want %v newest first, has_more", first, want[:2])
	}
	second := b.must(t, http.StatusOK, "GET", base+"?limit=2&starting_after="+want[1], key, nil)
	got = objects(t, second["data"])
	if len(got) != 1 || got[0]["id"] != want[2] || second["has_more"] != false {
		t.Fatalf("second page = %v; want [%s], no more", second, want[2])
	}
	status, body, _ := b.do(t, "GET", base+"?limit=101", key, nil)
	wantError(t, status, body, http.StatusBadRequest, "invalid", "limit")
	status, body, _ = b.do(t, "GET", base+"?starting_after=pm_nope", key, nil)
	wantError(t, status, body, http.StatusBadRequest, "invalid", "starting_after")
	status, body, _ = b.do(t, "GET", "/v1/accounts/"+acct+"/auto_top_up/audit?limit=0", key, nil)
	wantError(t, status, body, http.StatusBadRequest, "invalid", "limit")
}

// TestAccountShowsAutoTopUp: GET /v1/accounts/{id} carries auto_top_up,
// disabled with null amounts before any save and the saved values after.
func TestAccountShowsAutoTopUp(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{idleEngine: true})
	acct, key := b.account(t, "")
	got := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct, key, nil)
	auto, ok := got["auto_top_up"].(map[string]any)
	if !ok || auto["enabled"] != false || auto["threshold"] != nil || auto["target"] != nil {
		t.Fatalf("before any save auto_top_up = %v", got["auto_top_up"])
	}
	b.attach(t, acct, key, "pm_card_visa")
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/credits", b.adminKey, map[string]any{"amount": "50", "idempotency_key": "grant"})
	b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
	got = b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct, key, nil)
	auto, _ = got["auto_top_up"].(map[string]any)
	if auto["enabled"] != true || auto["threshold"] != "5.00" || auto["target"] != "20.00" {
		t.Fatalf("after the save auto_top_up = %v", got["auto_top_up"])
	}
}
