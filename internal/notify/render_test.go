package notify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/topup/topup/internal/ledger"
)

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
		m := render(Event{ID: "evt_1", Type: tc.typ, Data: tc.data})
		if m.subject != tc.subject || !strings.Contains(m.text, tc.body) || !strings.Contains(m.html, "grt_1") {
			t.Errorf("%s: subject %q, text %q", tc.typ, m.subject, m.text)
		}
	}
}
