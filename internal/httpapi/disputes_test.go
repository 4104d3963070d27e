package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// paidTopUp makes an account with a succeeded manual top-up of 10.00 and
// returns the account, its top-up and the sandbox charge that paid it.
func (b *billingBundle) paidTopUp(t *testing.T) (acct, topUpID, chargeID string) {
	t.Helper()
	acct, key := b.account(t, "")
	b.attach(t, acct, key, "pm_card_visa")
	tu := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/top_ups", key, map[string]any{"amount": "10", "idempotency_key": "t1"})
	if tu["status"] != "succeeded" {
		t.Fatalf("top-up = %v, want succeeded", tu)
	}
	for _, c := range objects(t, b.must(t, http.StatusOK, "GET", "/v1/sandbox/charges", b.adminKey, nil)["data"]) {
		if c["top_up_id"] == tu["id"] {
			return acct, str(t, tu, "id"), str(t, c, "id")
		}
	}
	t.Fatalf("no sandbox charge for top-up %v", tu["id"])
	return "", "", ""
}

// TestSandboxDispute: the admin disputes a top-up's charge and closes the
// dispute; each step answers the dispute and sends its events, applied by
// the code that applies Stripe's webhooks: the won dispute gives back what
// it withdrew (TestSandboxDisputeMovesTheLedger follows the ledger).
func TestSandboxDispute(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, topUpID, chargeID := b.paidTopUp(t)
	b.sandboxEvents.take()
	path := "/v1/sandbox/charges/" + chargeID + "/dispute"

	d := b.must(t, http.StatusOK, "POST", path, b.adminKey, nil)
	if !strings.HasPrefix(str(t, d, "id"), "dp_") || d["charge_id"] != chargeID || d["top_up_id"] != topUpID || d["amount"] != "10.00" ||
		d["currency"] != "usd" || d["status"] != "needs_response" || d["reason"] != "fraudulent" || d["funds_withdrawn"] != true || d["funds_reinstated"] != false {
		t.Fatalf("dispute = %v", d)
	}
	evs := b.sandboxEvents.take()
	if len(evs) != 2 || evs[0].Type != "charge.dispute.created" || evs[1].Type != "charge.dispute.funds_withdrawn" ||
		evs[1].Dispute == nil || evs[1].Dispute.TopUpID != topUpID || evs[1].Dispute.Amount != 1000 {
		t.Fatalf("events = %+v", evs)
	}
	again := b.must(t, http.StatusOK, "POST", path, b.adminKey, map[string]any{"reason": "duplicate"})
	if again["id"] != d["id"] || again["reason"] != "fraudulent" {
		t.Fatalf("second dispute = %v, want the first %v", again, d)
	}
	b.sandboxEvents.take()

	won := b.must(t, http.StatusOK, "POST", path+"/close", b.adminKey, map[string]any{"outcome": "won"})
	if won["id"] != d["id"] || won["status"] != "won" || won["funds_reinstated"] != true {
		t.Fatalf("won = %v", won)
	}
	var types []string
	for _, ev := range b.sandboxEvents.take() {
		types = append(types, ev.Type)
	}
	if strings.Join(types, ",") != "charge.dispute.created,charge.dispute.funds_withdrawn,charge.dispute.funds_reinstated,charge.dispute.closed" {
		t.Fatalf("events = %v", types)
	}
	if bal := b.balance(t, acct); bal != "10.00" {
		t.Errorf("balance = %s after a won dispute; want 10.00, the withdrawal given back", bal)
	}

	refusals := []struct {
		name, path string
		body       any
		status     int
		code       string
	}{
		{"closed the other way", path + "/close", map[string]any{"outcome": "lost"}, http.StatusConflict, "conflict"},
		{"an outcome that is neither", path + "/close", map[string]any{"outcome": "draw"}, http.StatusBadRequest, "invalid"},
		{"no outcome", path + "/close", map[string]any{}, http.StatusBadRequest, "invalid"},
		{"a reason that is not Stripe's", "/v1/sandbox/charges/" + chargeID + "/dispute", map[string]any{"reason": "because"}, http.StatusBadRequest, "invalid"},
		{"an unknown charge", "/v1/sandbox/charges/pi_unknown/dispute", nil, http.StatusNotFound, "not_found"},
		{"closing a charge without a dispute", "/v1/sandbox/charges/pi_unknown/dispute/close", map[string]any{"outcome": "won"}, http.StatusNotFound, "not_found"},
		{"an unknown field", path, map[string]any{"reason": "general", "amount": "1"}, http.StatusBadRequest, "invalid"},
	}
	for _, tt := range refusals {
		status, body, _ := b.do(t, "POST", tt.path, b.adminKey, tt.body)
		if status != tt.status || errorCode(body) != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, status, body, tt.status, tt.code)
		}
	}
}

// TestSandboxDisputeNeedsTheSandbox: with Stripe the routes do not exist.
func TestSandboxDisputeNeedsTheSandbox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, p := range []string{"/v1/sandbox/charges/pi_1/dispute", "/v1/sandbox/charges/pi_1/dispute/close"} {
		if status, body, _ := b.do(t, "POST", p, b.adminKey, map[string]any{"outcome": "won"}); status != http.StatusNotFound {
			t.Errorf("%s without the sandbox = %d %v, want 404", p, status, body)
		}
	}
}

// errorCode is the code of an error answer.
func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}
