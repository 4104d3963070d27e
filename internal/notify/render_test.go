package notify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/topup"
)

// TestMailLinks: a succeeded top-up's mail links to its receipt in the
// console; a top-up waiting for 3-D Secure to its confirmation page; with
// no console, a success has no link.
func TestMailLinks(t *testing.T) {
	t.Parallel()
	succeeded := Event{ID: "evt_1", Type: topup.EventTopUpSucceeded, AccountID: "acct_1", Data: []byte(`{"id":"tu_1","amount":"12.34","currency":"usd"}`)}
	m := render(succeeded, "https://billing.example.com/console/")
	want := "https://billing.example.com/console/accounts/acct_1/top_ups/tu_1/receipt"
	if !strings.Contains(m.text, "View your receipt: "+want) || !strings.Contains(m.html, `<a href="`+want+`">View your receipt</a>`) {
		t.Errorf("the success mail does not link to its receipt:\n%s\n%s", m.text, m.html)
	}
	if m := render(succeeded, ""); strings.Contains(m.text, "receipt") || strings.Contains(m.html, "<a ") {
		t.Errorf("without a console the success mail links somewhere:\n%s", m.html)
	}
	action := Event{ID: "evt_2", Type: topup.EventTopUpActionRequired, AccountID: "acct_1", Data: []byte(`{"id":"tu_2","action_url":"https://billing.example.com/console/pay/x"}`)}
	if m := render(action, "https://billing.example.com/console"); !strings.Contains(m.html, `<a href="https://billing.example.com/console/pay/x">Confirm the top-up</a>`) {
		t.Errorf("the 3-D Secure mail lost its link:\n%s", m.html)
	}
}

// TestCreditExpiryMail: the customer's mail of a grant's expiry events
// says how much and when, from the event's data.
func TestCreditExpiryMail(t *testing.T) {
	t.Parallel()
	at := "2026-03-11T05:06:07.000000Z"
	g := ledger.GrantView{ID: "grt_1", Amount: "5.00", Remaining: "4.50", ExpiresAt: &at, Status: "active"}
	expiring, _ := json.Marshal(g)
	g.Remaining, g.Status = "0.00", "expired"
	expired, _ := json.Marshal(ledger.ExpiredView{GrantView: g, AmountExpired: "4.50"})
	for _, tc := range []struct {
		typ     string
		data    []byte
		subject string
		body    string
	}{
		{ledger.EventCreditExpiring, expiring, "Credit of 4.50 expires soon", "4.50 of your credit (grant grt_1) expires at " + at},
		{ledger.EventCreditExpired, expired, "Credit of 4.50 expired", "4.50 of credit (grant grt_1) expired at " + at},
	} {
		m := render(Event{ID: "evt_1", Type: tc.typ, Data: tc.data}, "")
		if m.subject != tc.subject || !strings.Contains(m.text, tc.body) || !strings.Contains(m.html, "grt_1") {
			t.Errorf("%s: subject %q, text %q", tc.typ, m.subject, m.text)
		}
	}
}

// TestAfterChargeMail: a refund's mail says how much went back to the card
// and that it left the balance; a dispute's says which top-up, why, and
// that Automatic Top-Up is off. Both link to the receipt, which lists
// them.
func TestAfterChargeMail(t *testing.T) {
	t.Parallel()
	topUp := `"id":"tu_1","amount":"10.00","currency":"usd","status":"succeeded"`
	for _, tc := range []struct {
		typ, data, subject string
		says               []string
	}{
		{topup.EventTopUpRefunded, `{` + topUp + `,"refund":{"id":"rf_1","amount":"3.00","status":"succeeded","reason":""}}`,
			"Refund of 3.00 USD sent to your card", []string{"We refunded 3.00 USD of your top-up of 10.00 USD (top-up tu_1)", "left your credit balance"}},
		{topup.EventTopUpDisputed, `{` + topUp + `,"dispute":{"id":"dp_1","amount":"10.00","status":"open","reason":"product_not_received"}}`,
			"A top-up was disputed", []string{"payment of 10.00 USD for top-up tu_1 is disputed (product not received)", "Automatic Top-Up is switched off"}},
	} {
		m := render(Event{ID: "evt_1", Type: tc.typ, AccountID: "acct_1", Data: []byte(tc.data)}, "https://billing.example.com/console")
		if m.subject != tc.subject {
			t.Errorf("%s: subject %q, want %q", tc.typ, m.subject, tc.subject)
		}
		for _, want := range append(tc.says, "View your receipt: https://billing.example.com/console/accounts/acct_1/top_ups/tu_1/receipt") {
			if !strings.Contains(m.text, want) {
				t.Errorf("%s: the mail does not say %q:\n%s", tc.typ, want, m.text)
			}
		}
	}
}
