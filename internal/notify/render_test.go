package notify

import (
	"strings"
	"testing"

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
