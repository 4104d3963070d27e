package web_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"testing"
)

// payScriptHarness runs static/pay.js in Node with a stand-in page and
// Stripe.js (node -e puts the arguments from process.argv[1]): for each case, Stripe.js's retrievePaymentIntent answers the
// case's PaymentIntent, the button is clicked, and what confirmCardPayment
// was called with is printed.
const payScriptHarness = `
const src = require('fs').readFileSync(process.argv[1], 'utf8');
const cases = JSON.parse(process.argv[2]);
(async () => {
  const out = [];
  for (const c of cases) {
    let click;
    const calls = [];
    const attrs = {'data-key': 'pk_test_1', 'data-secret': 'pi_1_secret_x', 'data-pm': c.pm};
    const go = {disabled: false, getAttribute: (n) => (n in attrs ? attrs[n] : null), addEventListener: (e, f) => { click = f; }};
    const msg = {textContent: ''};
    const document = {getElementById: (id) => (id === 'pay-go' ? go : msg)};
    const window = {Stripe: (key) => ({
      retrievePaymentIntent: async (secret) => (c.pi ? {paymentIntent: c.pi} : {error: {message: 'no'}}),
      confirmCardPayment: async (secret, data) => { calls.push({secret: secret, data: data === undefined ? null : data}); return {}; },
    })};
    new Function('window', 'document', 'location', 'setTimeout', src)(window, document, {reload() {}}, () => {});
    click();
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    out.push(calls);
  }
  console.log(JSON.stringify(out));
})();
`

// TestPayScriptNamesTheCard proves the 3-D Secure page's script confirms a
// PaymentIntent that an off-session authentication_required failure left
// without its card (requires_payment_method) by naming the card again, the
// one in last_payment_error or else the top-up's, and confirms one that
// still holds its card (requires_action) as it is.
func TestPayScriptNamesTheCard(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and node is missing: %v", err)
		}
		t.Skipf("node is not installed: %v", err)
	}
	type pm = map[string]any
	cases := []struct {
		name string
		PI   any    `json:"pi"`
		PM   string `json:"pm"`
		want any    // confirmCardPayment's second argument (nil: none)
	}{
		{"off-session failure: the card of last_payment_error", pm{"status": "requires_payment_method",
			"last_payment_error": pm{"code": "authentication_required", "payment_method": pm{"id": "pm_last"}}}, "pm_topup",
			pm{"payment_method": "pm_last"}},
		{"off-session failure, no card in the error: the top-up's card", pm{"status": "requires_payment_method",
			"last_payment_error": pm{"code": "authentication_required"}}, "pm_topup", pm{"payment_method": "pm_topup"}},
		{"on-session requires_action: as it is", pm{"status": "requires_action", "payment_method": "pm_topup"}, "pm_topup", nil},
		{"PaymentIntent unreadable: as it is", nil, "pm_topup", nil},
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), node, "-e", payScriptHarness, "--", "static/pay.js", string(in)).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got [][]struct {
		Secret string `json:"secret"`
		Data   any    `json:"data"`
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("node printed %s (%v)", out, err)
	}
	for i, c := range cases {
		if len(got[i]) != 1 || got[i][0].Secret != "pi_1_secret_x" || !reflect.DeepEqual(got[i][0].Data, c.want) {
			t.Errorf("%s: confirmCardPayment calls %+v, want one with the client secret and %v", c.name, got[i], c.want)
		}
	}
}
