package web_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAddCredit: the overview's Add credit is a manual top-up through the
// API's own path: a success says so, a double submit charges once, a
// decline shows its reason, a 3-D Secure card shows the link to complete,
// and a bad amount is refused beside the field.
func TestAddCredit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tests := []struct {
		name, card, amount string
		status             int
		want               string
	}{
		{"succeeds", "pm_card_visa", "10", 303, "Added $10.00 to your credit."},
		{"declined", "pm_card_chargeDeclinedInsufficientFunds", "10.00", 303, "The card has insufficient funds. (insufficient_funds)"},
		{"needs 3-D Secure", "pm_card_authenticationRequired", "12.50", 303, "/console/pay/"},
		{"below the minimum charge", "pm_card_visa", "0.10", 400, "Must be at least the minimum charge, 0.50."},
		{"not an amount", "pm_card_visa", "ten", 400, "Must be an amount such as 10.00."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.account(strings.ReplaceAll(tt.name, " ", "")+"@example.com", "")
			e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"`+tt.card+`"}`, 201, nil)
			br, csrf := e.signedIn(a)
			base := "/console/accounts/" + a.ID
			form := url.Values{"csrf": {csrf}, "amount": {tt.amount}, "idempotency_key": {"form-1"}}
			p := br.post(base+"/top_ups", form)
			if p.status != tt.status {
				t.Fatalf("Add credit answered %d; want %d:\n%s", p.status, tt.status, p.body)
			}
			if p.status == 303 {
				again := br.post(base+"/top_ups", form) // a double click
				if again.header.Get("Location") != p.header.Get("Location") {
					t.Errorf("the same form twice went to %q then %q; want the same top-up", p.header.Get("Location"), again.header.Get("Location"))
				}
				p = br.get(p.header.Get("Location"))
			}
			if !strings.Contains(p.body, tt.want) {
				t.Errorf("the page does not say %q:\n%s", tt.want, p.body)
			}
			var tus struct{ Data []any }
			e.mustAPI("GET", "/v1/accounts/"+a.ID+"/top_ups", adminKey, "", 200, &tus)
			if want := map[bool]int{true: 1, false: 0}[tt.status == 303]; len(tus.Data) != want {
				t.Errorf("the account has %d top-ups; want %d", len(tus.Data), want)
			}
			if tt.name == "succeeds" {
				// The chart and the preview see the top-up in the day's totals.
				days, err := e.store.DailyTotals(context.Background(), a.ID, time.Now().UTC().AddDate(0, 0, -1))
				if err != nil || len(days) != 1 || days[0].TopUps != 1 || days[0].TopUpCredits != 10_000_000 || days[0].Credits != 10_000_000 {
					t.Errorf("daily totals = %+v (%v); want one day with one top-up of 10.00", days, err)
				}
			}
			if tt.status == 400 && !strings.Contains(p.body, `aria-invalid="true"`) {
				t.Errorf("the refused amount field is not marked invalid")
			}
		})
	}
}

// TestPreviewEndpoint: the dialog's preview refuses what a save would
// refuse, naming the field, and otherwise says what the values would have
// done.
func TestPreviewEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "40.00")
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, nil)
	e.usage(a, "30.00", "u1", "big job")
	br, _ := e.signedIn(a)
	base := "/console/accounts/" + a.ID + "/auto_top_up/preview?"
	type preview struct {
		Valid   bool     `json:"valid"`
		Field   string   `json:"field"`
		Error   string   `json:"error"`
		Lines   []string `json:"lines"`
		Charges int      `json:"charges"`
		Total   string   `json:"total"`
	}
	get := func(q url.Values) preview {
		t.Helper()
		p := br.get(base + q.Encode())
		var out preview
		if p.status != 200 || json.Unmarshal([]byte(p.body), &out) != nil {
			t.Fatalf("preview answered %d %s", p.status, p.body)
		}
		return out
	}
	if p := get(url.Values{"threshold": {"20"}, "target": {"10"}}); p.Valid || p.Field != "target" || !strings.Contains(p.Error, "would be refused") {
		t.Errorf("target below threshold: %+v; want refused on target", p)
	}
	if p := get(url.Values{"threshold": {"abc"}, "target": {"10"}}); p.Valid || p.Field != "threshold" {
		t.Errorf("a threshold that is no amount: %+v; want refused on threshold", p)
	}
	if p := get(url.Values{"threshold": {"5"}, "target": {"5.20"}}); p.Valid || p.Field != "target" || !strings.Contains(p.Error, "minimum charge") {
		t.Errorf("a gap below the minimum charge: %+v; want refused on target", p)
	}
	// 40.00 less 30.00 today: 10.00 is below 15.00, so saving charges now;
	// the replay of today (credit, then usage running down) would have
	// charged once, the 10.00 between threshold and target.
	p := get(url.Values{"threshold": {"15"}, "target": {"25"}})
	joined := strings.Join(p.Lines, "\n")
	if !p.Valid || p.Charges != 1 || p.Total != "10.00" || !strings.Contains(joined, "already below $15.00: saving starts a charge of about $15.00 right away") {
		t.Errorf("preview = %+v; want 1 charge of 10.00 and a warning that saving charges at once", p)
	}
	if p := get(url.Values{"threshold": {"5"}, "target": {"25"}}); !p.Valid || p.Charges != 0 || !strings.Contains(strings.Join(p.Lines, "\n"), "will go below $5.00 around") {
		t.Errorf("preview = %+v; want no charge and when the balance next goes below 5.00", p)
	}
}

// TestRemovingTheCardSwitchesOff: removing the card Automatic Payments
// charge switches them off, and the page says why in words.
func TestRemovingTheCardSwitchesOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "40.00")
	var card struct{ ID string }
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, &card)
	br, csrf := e.signedIn(a)
	base := "/console/accounts/" + a.ID
	if p := br.post(base+"/auto_top_up", url.Values{"csrf": {csrf}, "enabled": {"true"}, "threshold": {"5"}, "target": {"20"}}); p.status != 303 {
		t.Fatalf("save answered %d:\n%s", p.status, p.body)
	}
	p := br.post(base+"/payment_methods/"+card.ID+"/remove", url.Values{"csrf": {csrf}})
	if p.status != 303 {
		t.Fatalf("remove answered %d", p.status)
	}
	page := br.get(p.header.Get("Location"))
	for _, want := range []string{"so they were switched off", "Automatic Payments are off.", "because the card they charged was removed"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the page after removing the card does not say %q", want)
		}
	}
}

// TestActionURLOpensTheConsole: a top-up's action_url is the console's
// 3-D Secure page, which needs no session (its token is the credential);
// the API's older /pay/ address sends the browser there.
func TestActionURLOpensTheConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "")
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_authenticationRequired"}`, 201, nil)
	var tu struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		ActionURL string `json:"action_url"`
	}
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/top_ups", a.Key, `{"amount":"10.00","idempotency_key":"k"}`, 201, &tu)
	if tu.Status != "requires_action" || !strings.HasPrefix(tu.ActionURL, e.url+"/console/pay/"+tu.ID+"?token=") {
		t.Fatalf("top-up = %+v; want requires_action with the console's page as action_url", tu)
	}
	stranger := e.browser() // no session: the link alone opens the page
	if p := stranger.get(tu.ActionURL); p.status != 200 || !strings.Contains(p.body, "Complete authentication") || !strings.Contains(p.body, "$10.00") {
		t.Fatalf("action_url answered %d:\n%s", p.status, p.body)
	}
	old := strings.Replace(tu.ActionURL, "/console/pay/", "/pay/", 1)
	if p := stranger.get(old); p.status != 303 || p.header.Get("Location") != tu.ActionURL {
		t.Errorf("the API's /pay/ answered %d to %q; want 303 to %s", p.status, p.header.Get("Location"), tu.ActionURL)
	}
	token := mustURL(t, tu.ActionURL).Query().Get("token")
	if p := stranger.post("/console/pay/"+tu.ID, url.Values{"token": {token}, "result": {"ok"}}); p.status != 303 {
		t.Fatalf("answering the challenge answered %d", p.status)
	}
	if p := stranger.get(tu.ActionURL); !strings.Contains(p.body, "Payment confirmed: $10.00 was added to your credit.") {
		t.Errorf("after authenticating the page says:\n%s", p.body)
	}
	if p := stranger.post("/console/pay/"+tu.ID, url.Values{"token": {"wrong"}, "result": {"ok"}}); p.status != 404 {
		t.Errorf("a wrong token answered %d; want 404", p.status)
	}
}
