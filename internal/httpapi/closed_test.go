package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/topup/topup/internal/ledger"
)

// TestClosedAccountIsNeverCharged: closing switches Automatic Top-Up off
// (account_closed, audited, told), cancels the top-up not yet attempted,
// and from then on every write that adds or spends money or changes the
// setup answers 409 account_closed, by the account's key or the admin's,
// and writes nothing; what winds the account down still works, and reads
// work with its key. Reopened, Automatic Top-Up stays off until saved.
func TestClosedAccountIsNeverCharged(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{idleEngine: true})
	acct, key := b.account(t, "")
	base := "/v1/accounts/" + acct
	card := str(t, b.attach(t, acct, key, "pm_card_visa"), "id")
	spare := str(t, b.attach(t, acct, key, "pm_card_mastercard"), "id")
	budget := str(t, b.must(t, http.StatusCreated, "POST", base+"/budgets", key, map[string]any{"kind": "unlimited"}), "id")
	b.must(t, http.StatusCreated, "POST", base+"/credits", b.adminKey, map[string]any{"amount": "3.00", "idempotency_key": "c1"})
	// Saved below the threshold: a settings top-up waits, never attempted
	// (the engine is idle).
	saved := b.must(t, http.StatusOK, "PUT", base+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
	pending := str(t, saved, "top_up_id")

	b.must(t, http.StatusOK, "PATCH", base, b.adminKey, map[string]any{"status": "closed"})

	st := b.must(t, http.StatusOK, "GET", base+"/auto_top_up", key, nil)
	if st["enabled"] != false || st["disabled_reason"] != "account_closed" {
		t.Errorf("auto top-up after close = %v; want off with account_closed", st)
	}
	tu := b.must(t, http.StatusOK, "GET", base+"/top_ups/"+pending, key, nil)
	if tu["status"] != "canceled" || tu["failure_code"] != "account_closed" {
		t.Errorf("pending top-up after close = %v; want canceled with account_closed", tu)
	}
	told := 0
	for _, n := range objects(t, b.must(t, http.StatusOK, "GET", base+"/notifications", key, nil)["data"]) {
		if d, _ := n["data"].(map[string]any); n["type"] == "auto_top_up.disabled" && d["reason"] == "account_closed" {
			told++
		}
	}
	if told != 1 {
		t.Errorf("%d auto_top_up.disabled {reason: account_closed} notifications, want 1", told)
	}
	audit := objects(t, b.must(t, http.StatusOK, "GET", base+"/auto_top_up/audit", key, nil)["data"])
	if len(audit) == 0 || audit[0]["actor"] != "system:account_closed" {
		t.Errorf("newest audit entry = %v; want one by system:account_closed", audit)
	}
	// The engine, started now, charges nothing.
	if _, err := b.engine.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(b.charges(t)); n != 0 {
		t.Fatalf("%d sandbox charges for a closed account", n)
	}

	for _, key := range []string{key, b.adminKey} {
		for _, c := range []struct{ method, path, body string }{
			{"PUT", base + "/auto_top_up", `{"enabled": true, "threshold": "5", "target": "20"}`},
			{"PUT", base + "/auto_top_up", `{"enabled": false}`},
			{"POST", base + "/top_ups", `{"amount": "10.00", "idempotency_key": "t1"}`},
			{"POST", base + "/payment_methods", `{"payment_method": "pm_card_visa"}`},
			{"POST", base + "/payment_methods/setup", ``},
			{"POST", base + "/payment_methods/" + spare + "/default", ``},
			{"POST", base + "/budgets", `{"kind": "monthly", "subject": "gpu", "limit": "10.00"}`},
			{"PUT", base + "/budgets/" + budget, `{"limit": "10.00"}`},
			{"PUT", base + "/low_balance_alerts", `{"thresholds": ["10.00"]}`},
			{"POST", base + "/webhook_endpoints", `{"url": "https://93.184.215.14/hook"}`},
		} {
			status, out, _ := b.do(t, c.method, c.path, key, c.body)
			wantError(t, status, out, http.StatusConflict, "account_closed", "")
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", base + "/usage", `{"amount": "1", "idempotency_key": "u1"}`},
		{"POST", base + "/credits", `{"amount": "1", "idempotency_key": "c2"}`},
	} {
		status, out, _ := b.do(t, c.method, c.path, b.adminKey, c.body)
		wantError(t, status, out, http.StatusConflict, "account_closed", "")
	}
	if all, def := b.cardIDs(t, acct); len(all) != 2 || def != card {
		t.Errorf("cards after refusals: %v default %s; want the two cards, %s default", all, def, card)
	}
	if n := len(b.topUps(t, acct)); n != 1 {
		t.Errorf("%d top-ups after refusals, want the canceled one only", n)
	}
	if n := len(b.charges(t)); n != 0 {
		t.Fatalf("%d sandbox charges for a closed account", n)
	}

	// Not spendable, and why, wherever the operator asks.
	if got := b.must(t, http.StatusOK, "GET", base, key, nil); got["spendable"] != false || got["reason"] != "account_closed" {
		t.Errorf("GET account of a closed account = %v; want spendable false, reason account_closed", got)
	}
	if got := b.must(t, http.StatusOK, "GET", base+"/spendable", key, nil); got["spendable"] != false || got["reason"] != "account_closed" {
		t.Errorf("GET spendable of a closed account = %v; want false, account_closed", got)
	}

	// Winding down still works.
	b.must(t, http.StatusOK, "DELETE", base+"/payment_methods/"+spare, key, nil)
	b.must(t, http.StatusOK, "DELETE", base+"/budgets/"+budget, key, nil)

	// Reopened: writes work again, and Automatic Top-Up stays off until saved.
	b.must(t, http.StatusOK, "PATCH", base, b.adminKey, map[string]any{"status": "active"})
	if st := b.must(t, http.StatusOK, "GET", base+"/auto_top_up", key, nil); st["enabled"] != false {
		t.Errorf("auto top-up after reopening = %v; want still off", st)
	}
	if got := b.must(t, http.StatusOK, "GET", base, key, nil); got["spendable"] != true || got["reason"] != nil {
		t.Errorf("GET account after reopening = %v; want spendable", got)
	}
	b.must(t, http.StatusOK, "PUT", base+"/auto_top_up", key, map[string]any{"enabled": false, "threshold": "5", "target": "20"})
}

// TestClosingRacesSettingsSave: a save and a close racing never leave a
// closed account with Automatic Top-Up on, or a top-up that gets charged.
func TestClosingRacesSettingsSave(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{idleEngine: true})
	for i := range 8 {
		acct, key := b.account(t, "")
		base := "/v1/accounts/" + acct
		b.attach(t, acct, key, "pm_card_visa")
		b.must(t, http.StatusCreated, "POST", base+"/credits", b.adminKey, map[string]any{"amount": "3.00", "idempotency_key": "c"})
		var wg sync.WaitGroup
		wg.Go(func() {
			status, _, _, err := b.call("PUT", base+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
			if err != nil || (status != http.StatusOK && status != http.StatusConflict) {
				t.Errorf("race %d: save answered %d %v", i, status, err)
			}
		})
		wg.Go(func() {
			if status, _, _, err := b.call("PATCH", base, b.adminKey, map[string]any{"status": "closed"}); err != nil || status != http.StatusOK {
				t.Errorf("race %d: close answered %d %v", i, status, err)
			}
		})
		wg.Wait()
		if st := b.must(t, http.StatusOK, "GET", base+"/auto_top_up", key, nil); st["enabled"] != false {
			t.Errorf("race %d: closed account with auto top-up %v", i, st)
		}
	}
	if _, err := b.engine.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(b.charges(t)); n != 0 {
		t.Fatalf("%d charges of closed accounts", n)
	}
}

// TestPerAccountLimits: at the limit, one more answers 409 limit_exceeded
// and nothing is written; two requests racing at one below the limit do
// not both pass.
func TestPerAccountLimits(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{idleEngine: true})
	acct, key := b.account(t, "")
	base := "/v1/accounts/" + acct
	for range ledger.MaxPaymentMethods - 1 {
		b.attach(t, acct, key, "pm_card_visa")
	}
	// Two at 19: one passes, one is refused.
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			status, _, _, err := b.call("POST", base+"/payment_methods", key, map[string]any{"payment_method": "pm_card_visa"})
			if err != nil {
				t.Error(err)
			}
			statuses <- status
		})
	}
	wg.Wait()
	close(statuses)
	got := map[int]int{}
	for s := range statuses {
		got[s]++
	}
	if got[http.StatusCreated] != 1 || got[http.StatusConflict] != 1 {
		t.Errorf("two attaches at %d cards answered %v; want one 201 and one 409", ledger.MaxPaymentMethods-1, got)
	}
	status, out, _ := b.do(t, "POST", base+"/payment_methods", key, map[string]any{"payment_method": "pm_card_visa"})
	wantError(t, status, out, http.StatusConflict, "limit_exceeded", "")
	if cards, err := b.store.Cards(t.Context(), acct); err != nil || len(cards) != ledger.MaxPaymentMethods {
		t.Errorf("%d cards saved (%v), want %d", len(cards), err, ledger.MaxPaymentMethods)
	}

	for i := range ledger.MaxBudgets {
		b.must(t, http.StatusCreated, "POST", base+"/budgets", key, map[string]any{"kind": "unlimited", "subject": fmt.Sprintf("s%d", i)})
	}
	status, out, _ = b.do(t, "POST", base+"/budgets", key, map[string]any{"kind": "unlimited", "subject": "one-more"})
	wantError(t, status, out, http.StatusConflict, "limit_exceeded", "")
	budgets, _, err := b.store.Budgets(t.Context(), acct, ledger.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, bu := range budgets {
		if bu.Subject == "one-more" {
			t.Error("the refused budget was saved")
		}
	}

	for i := range ledger.MaxWebhookEndpoints {
		b.must(t, http.StatusCreated, "POST", base+"/webhook_endpoints", key, map[string]any{"url": fmt.Sprintf("https://93.184.215.14/h%d", i)})
	}
	status, out, _ = b.do(t, "POST", base+"/webhook_endpoints", key, map[string]any{"url": "https://93.184.215.14/one-more"})
	wantError(t, status, out, http.StatusConflict, "limit_exceeded", "")
	eps, _, err := b.store.Endpoints(t.Context(), acct, ledger.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != ledger.MaxWebhookEndpoints {
		t.Errorf("%d endpoints, want %d", len(eps), ledger.MaxWebhookEndpoints)
	}
}

// noRedirect is a client of b's server that shows redirects instead of
// following them.
func (b *billingBundle) noRedirect() *http.Client {
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// TestSetupReturnIsUsedOnce: the hosted page's return URL records its card
// once; replaying it adds nothing (409), and once the card is removed no
// replay brings it back.
func TestSetupReturnIsUsedOnce(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{idleEngine: true})
	acct, key := b.account(t, "")
	base := "/v1/accounts/" + acct
	page := str(t, b.must(t, http.StatusOK, "POST", base+"/payment_methods/setup", key, nil), "url")
	resp, err := b.noRedirect().PostForm(page, url.Values{"card": {"pm_card_visa"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(back, "/payment_methods/setup/return?session_id=") {
		t.Fatalf("the sandbox page answered %d to %q", resp.StatusCode, back)
	}
	u, err := url.Parse(back)
	if err != nil {
		t.Fatal(err)
	}
	ret := u.RequestURI()
	first := b.must(t, http.StatusOK, "GET", ret, "", nil)
	id := str(t, first, "id")

	status, out, _ := b.do(t, "GET", ret, "", nil)
	wantError(t, status, out, http.StatusConflict, "conflict", "session_id")
	if all, _ := b.cardIDs(t, acct); len(all) != 1 || all[0] != id {
		t.Fatalf("cards after a replayed return URL: %v; want [%s]", all, id)
	}

	b.must(t, http.StatusOK, "DELETE", base+"/payment_methods/"+id, key, nil)
	status, out, _ = b.do(t, "GET", ret, "", nil)
	wantError(t, status, out, http.StatusConflict, "conflict", "session_id")
	if all, _ := b.cardIDs(t, acct); len(all) != 0 {
		t.Fatalf("the removed card came back by replaying the return URL: %v", all)
	}
}
