package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/topup/topup/internal/web"
)

// TestClosedAccountConsole: a closed account's console still shows its
// pages, but every form that would add or spend money or change its setup
// is refused with a page that says the account is closed (409), nothing is
// charged or saved, and the operator gets no new sign-in link for it.
func TestClosedAccountConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{engine: true})
	a := e.account("ada@example.com", "3.00")
	var card struct{ ID string }
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, &card)
	br, csrf := e.signedIn(a)
	e.mustAPI("PATCH", "/v1/accounts/"+a.ID, adminKey, `{"status":"closed"}`, 200, nil)
	base := web.Prefix + "/accounts/" + a.ID

	for _, f := range []struct {
		path string
		form url.Values
	}{
		{"/auto_top_up", url.Values{"enabled": {"true"}, "threshold": {"5"}, "target": {"20"}}},
		{"/auto_top_up", url.Values{"enabled": {"false"}}},
		{"/top_ups", url.Values{"amount": {"400.00"}, "idempotency_key": {"k1"}}},
		{"/payment_methods/setup", url.Values{}},
		{"/payment_methods/" + card.ID + "/default", url.Values{}},
		{"/low_balance_alerts", url.Values{"threshold": {"10.00"}}},
		{"/budgets", url.Values{"kind": {"unlimited"}}},
		{"/webhook_endpoints", url.Values{"url": {"https://93.184.215.14/hook"}}},
	} {
		f.form.Set("csrf", csrf)
		p := br.post(base+f.path, f.form)
		if p.status != 409 || !strings.Contains(p.body, "is closed") {
			t.Errorf("POST %s on a closed account answered %d; want 409 saying the account is closed:\n%s", f.path, p.status, p.body)
		}
	}
	// Reading still works.
	if p := br.get(base); p.status != 200 {
		t.Errorf("the overview of a closed account answered %d", p.status)
	}
	var charges struct{ Data []any }
	e.mustAPI("GET", "/v1/sandbox/charges", adminKey, "", 200, &charges)
	if len(charges.Data) != 0 {
		t.Fatalf("%d charges of a closed account through the console", len(charges.Data))
	}
	var st struct{ Enabled bool }
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/auto_top_up", adminKey, "", 200, &st)
	if st.Enabled {
		t.Error("a closed account's console switched Automatic Payments on")
	}
	if got := e.api("POST", "/v1/accounts/"+a.ID+"/login_links", adminKey, "", nil); got != 409 {
		t.Errorf("a sign-in link for a closed account answered %d, want 409", got)
	}
	// Removing a card winds the account down: allowed.
	if p := br.post(base+"/payment_methods/"+card.ID+"/remove", url.Values{"csrf": {csrf}}); p.status != 303 {
		t.Errorf("removing a card of a closed account answered %d, want 303", p.status)
	}
}

// TestSetupReturnUsedOnceInConsole: the console's return page from the
// hosted card page adds its card once; opened again it says so (409) and
// adds nothing, even after the card was removed.
func TestSetupReturnUsedOnceInConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "")
	br, csrf := e.signedIn(a)
	base := web.Prefix + "/accounts/" + a.ID
	p := br.post(base+"/payment_methods/setup", url.Values{"csrf": {csrf}})
	hosted := p.header.Get("Location")
	if p.status != 303 || !strings.Contains(hosted, "/sandbox/setup/") {
		t.Fatalf("Add payment method answered %d to %q", p.status, hosted)
	}
	p = br.post(hosted, url.Values{"card": {"pm_card_visa"}})
	back := p.header.Get("Location")
	if p.status != 303 || !strings.Contains(back, "/payment_methods/return?session_id=") {
		t.Fatalf("the hosted page answered %d to %q", p.status, back)
	}
	if p := br.get(back); p.status != 303 {
		t.Fatalf("the return page answered %d:\n%s", p.status, p.body)
	}
	cards := func() []struct{ ID string } {
		var l struct{ Data []struct{ ID string } }
		e.mustAPI("GET", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, "", 200, &l)
		return l.Data
	}
	got := cards()
	if len(got) != 1 {
		t.Fatalf("%d cards after the return page, want 1", len(got))
	}
	again := br.get(back)
	if again.status != 409 || !strings.Contains(again.body, "already used") {
		t.Errorf("the return page opened again answered %d; want 409 saying it was already used:\n%s", again.status, again.body)
	}
	if n := len(cards()); n != 1 {
		t.Errorf("%d cards after the return page was opened again, want 1", n)
	}
	if p := br.post(base+"/payment_methods/"+got[0].ID+"/remove", url.Values{"csrf": {csrf}}); p.status != 303 {
		t.Fatalf("remove answered %d", p.status)
	}
	if p := br.get(back); p.status != 409 {
		t.Errorf("the return page after the card was removed answered %d, want 409", p.status)
	}
	if n := len(cards()); n != 0 {
		t.Errorf("the removed card came back through the return page: %d cards", n)
	}
}
