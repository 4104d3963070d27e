package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/topup/topup/internal/web"
)

// TestConsoleRefusesHostileText: a form field or query value holding U+0000
// or invalid UTF-8 is refused with a page that says which field (400, never
// 500), and nothing is written; a path holding one is a page not found.
func TestConsoleRefusesHostileText(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "5.00")
	br, csrf := e.signedIn(a)
	base := "/console/accounts/" + a.ID
	for _, form := range []url.Values{
		{"csrf": {csrf}, "subject": {"gpu\x00"}, "kind": {"monthly"}, "limit": {"5.00"}},
		{"csrf": {csrf}, "subject": {"caf\xe9"}, "kind": {"monthly"}, "limit": {"5.00"}},
	} {
		p := br.post(base+"/budgets", form)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "subject") {
			t.Errorf("a budget with subject %q answered %d; want 400 naming subject:\n%s", form.Get("subject"), p.status, p.body)
		}
	}
	var budgets struct{ Data []any }
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/budgets", adminKey, "", 200, &budgets)
	if len(budgets.Data) != 0 {
		t.Errorf("%d budgets after refused forms; want none", len(budgets.Data))
	}
	if p := br.get(base + "/top_ups?starting_after=%00"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "starting_after") {
		t.Errorf("history?starting_after=%%00 answered %d; want 400 naming starting_after", p.status)
	}
	if p := br.post(base+"/budgets/bud%00x/delete", url.Values{"csrf": {csrf}}); p.status != http.StatusNotFound {
		t.Errorf("deleting budget bud%%00x answered %d; want 404", p.status)
	}
}

// TestConsoleKeyLengthInCharacters: the add-credit form's idempotency key
// is measured in characters, as the API's is (200 × "é" is 400 bytes).
func TestConsoleKeyLengthInCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "")
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, nil)
	br, csrf := e.signedIn(a)
	p := br.post("/console/accounts/"+a.ID+"/top_ups", url.Values{"csrf": {csrf}, "amount": {"10"}, "idempotency_key": {strings.Repeat("é", 200)}})
	if p.status != http.StatusSeeOther {
		t.Errorf("Add credit with a 200-character key answered %d; want 303:\n%s", p.status, p.body)
	}
}

// TestStaticFolderIsNotListed: /console/static/ lists nothing; its files
// are still served, with nosniff.
func TestStaticFolderIsNotListed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	br := e.browser()
	if p := br.get("/console/static/"); p.status != http.StatusNotFound || strings.Contains(p.body, `href="console.css"`) {
		t.Errorf("GET /console/static/ answered %d; want 404 without a listing:\n%s", p.status, p.body)
	}
	p := br.get("/console/static/console.css")
	if p.status != http.StatusOK || p.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET console.css answered %d, nosniff %q", p.status, p.header.Get("X-Content-Type-Options"))
	}
}

// TestConsoleHSTS: behind an https public URL the console's answers carry
// Strict-Transport-Security; over plain http they do not.
func TestConsoleHSTS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for publicURL, want := range map[string]bool{"https://billing.example.com": true, "http://127.0.0.1:8080": false} {
		c := web.New(web.Config{PublicURL: publicURL}, web.Deps{Store: e.store.Console, Ledger: e.store.Ledger, Payments: e.store.Payments, Alerts: e.store.Outbox, Clock: e.clock})
		for _, path := range []string{"/console/login", "/console/static/console.css", "/console/nowhere"} {
			rec := httptest.NewRecorder()
			c.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if got := rec.Header().Get("Strict-Transport-Security"); (got != "") != want {
				t.Errorf("%s %s: Strict-Transport-Security = %q; want set: %v", publicURL, path, got, want)
			}
		}
	}
}
