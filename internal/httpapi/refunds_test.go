package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/sandbox"
)

// TestRefunds: the operator refunds a succeeded top-up in part, then the
// rest, through the sandbox, once per key; the top-up shows what was
// refunded, the balance drops, and the refunds are listed newest first.
// More than is left answers 400 on amount; a top-up that did not succeed,
// or whose dispute is open, 409; another account's top-up 404; the
// customer's own key may list the refunds but not make one.
func TestRefunds(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, key, topUpID, chargeID := b.paidWithKey(t)
	path := "/v1/accounts/" + acct + "/top_ups/" + topUpID + "/refunds"

	status, body, _ := b.do(t, "POST", path, key, map[string]any{"amount": "4", "idempotency_key": "r1"})
	wantError(t, status, body, http.StatusForbidden, "forbidden", "")

	first := b.must(t, http.StatusCreated, "POST", path, b.adminKey, map[string]any{"amount": "4", "idempotency_key": "r1", "reason": "requested_by_customer"})
	if !strings.HasPrefix(str(t, first, "id"), "rf_") || first["top_up_id"] != topUpID || first["amount"] != "4.00" || first["status"] != "succeeded" ||
		first["reason"] != "requested_by_customer" || first["created_at"] == nil {
		t.Fatalf("refund = %v", first)
	}
	status, again, h := b.do(t, "POST", path, b.adminKey, map[string]any{"amount": "4.00", "idempotency_key": "r1", "reason": "requested_by_customer"})
	if status != http.StatusOK || h.Get("Idempotent-Replayed") != "true" || again["id"] != first["id"] || again["status"] != "succeeded" {
		t.Fatalf("replay = %d %v %q", status, again, h.Get("Idempotent-Replayed"))
	}
	if tu := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/top_ups/"+topUpID, key, nil); tu["amount_refunded"] != "4.00" {
		t.Errorf("top-up = %v; want amount_refunded 4.00", tu)
	}
	if got := b.balance(t, acct); got != "6.00" {
		t.Errorf("balance = %s, want 6.00", got)
	}

	other, _ := b.account(t, "")
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		code       string
		field      string
	}{
		{"the same key, another amount", path, map[string]any{"amount": "3", "idempotency_key": "r1", "reason": "requested_by_customer"}, http.StatusConflict, "idempotency_conflict", "idempotency_key"},
		{"more than is left", path, map[string]any{"amount": "6.01", "idempotency_key": "r2"}, http.StatusBadRequest, "invalid", "amount"},
		{"a fraction of a cent", path, map[string]any{"amount": "1.001", "idempotency_key": "r2"}, http.StatusBadRequest, "invalid", "amount"},
		{"zero", path, map[string]any{"amount": "0", "idempotency_key": "r2"}, http.StatusBadRequest, "invalid", "amount"},
		{"a JSON number", path, `{"amount": 1, "idempotency_key": "r2"}`, http.StatusBadRequest, "invalid", "amount"},
		{"no key", path, map[string]any{"amount": "1"}, http.StatusBadRequest, "invalid", "idempotency_key"},
		{"a reason too long", path, map[string]any{"idempotency_key": "r2", "reason": strings.Repeat("x", 256)}, http.StatusBadRequest, "invalid", "reason"},
		{"an unknown field", path, map[string]any{"idempotency_key": "r2", "currency": "usd"}, http.StatusBadRequest, "invalid", "currency"},
		{"another account's top-up", "/v1/accounts/" + other + "/top_ups/" + topUpID + "/refunds", map[string]any{"idempotency_key": "r2"}, http.StatusNotFound, "not_found", ""},
		{"an unknown top-up", "/v1/accounts/" + acct + "/top_ups/tu_nope/refunds", map[string]any{"idempotency_key": "r2"}, http.StatusNotFound, "not_found", ""},
	} {
		status, body, _ := b.do(t, "POST", tc.path, b.adminKey, tc.body)
		t.Run(tc.name, func(t *testing.T) { wantError(t, status, body, tc.status, tc.code, tc.field) })
	}

	rest := b.must(t, http.StatusCreated, "POST", path, b.adminKey, map[string]any{"idempotency_key": "r2"})
	if rest["amount"] != "6.00" || rest["status"] != "succeeded" || rest["reason"] != nil {
		t.Fatalf("the rest = %v", rest)
	}
	status, body, _ = b.do(t, "POST", path, b.adminKey, map[string]any{"idempotency_key": "r3"})
	wantError(t, status, body, http.StatusBadRequest, "invalid", "amount")
	if got := b.balance(t, acct); got != "0.00" {
		t.Errorf("balance = %s, want 0.00", got)
	}

	listed := objects(t, b.must(t, http.StatusOK, "GET", path, key, nil)["data"])
	if len(listed) != 2 || listed[0]["id"] != rest["id"] || listed[1]["id"] != first["id"] {
		t.Fatalf("refunds = %v; want %v then %v", listed, rest["id"], first["id"])
	}
	page := b.must(t, http.StatusOK, "GET", path+"?limit=1", b.adminKey, nil)
	if page["has_more"] != true || len(objects(t, page["data"])) != 1 {
		t.Errorf("first page = %v", page)
	}
	status, body, _ = b.do(t, "GET", "/v1/accounts/"+other+"/top_ups/"+topUpID+"/refunds", b.adminKey, nil)
	wantError(t, status, body, http.StatusNotFound, "not_found", "")
	var made int
	for _, c := range b.refundLog(t) {
		if c.ChargeID == chargeID {
			made++
		}
	}
	if made != 2 {
		t.Errorf("the sandbox made %d refunds, want 2", made)
	}
	if v, err := b.store.Verify(t.Context()); err != nil || len(v) != 0 {
		t.Errorf("verify: %+v %v", v, err)
	}
}

// TestRefundConflicts: a top-up that did not succeed cannot be refunded,
// nor one whose dispute is open (409 conflict); nothing reaches the
// provider.
func TestRefundConflicts(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{})
	acct, key := b.account(t, "")
	b.attach(t, acct, key, "pm_card_chargeDeclined")
	status, body, _ := b.do(t, "POST", "/v1/accounts/"+acct+"/top_ups", key, map[string]any{"amount": "10", "idempotency_key": "t1"})
	if status != http.StatusPaymentRequired {
		t.Fatalf("declined top-up = %d %v", status, body)
	}
	declined := str(t, body["error"].(map[string]any), "top_up_id")
	status, body, _ = b.do(t, "POST", "/v1/accounts/"+acct+"/top_ups/"+declined+"/refunds", b.adminKey, map[string]any{"idempotency_key": "r1"})
	wantError(t, status, body, http.StatusConflict, "conflict", "")

	paid, _, topUpID, chargeID := b.paidWithKey(t)
	if _, _, err := b.store.ApplyDispute(t.Context(), refund.DisputeWord{ProviderID: "dp_1", ChargeID: chargeID, AmountMinor: 1000, Kind: refund.Opened}); err != nil {
		t.Fatal(err)
	}
	status, body, _ = b.do(t, "POST", "/v1/accounts/"+paid+"/top_ups/"+topUpID+"/refunds", b.adminKey, map[string]any{"idempotency_key": "r1"})
	wantError(t, status, body, http.StatusConflict, "conflict", "")
	if n := len(b.refundLog(t)); n != 0 {
		t.Errorf("the sandbox made %d refunds, want none", n)
	}
}

// paidWithKey makes an account with a succeeded manual top-up of 10.00
// and returns the account, its key, the top-up and its sandbox charge.
func (b *billingBundle) paidWithKey(t *testing.T) (acct, key, topUpID, chargeID string) {
	t.Helper()
	acct, key = b.account(t, "")
	b.attach(t, acct, key, "pm_card_visa")
	tu := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/top_ups", key, map[string]any{"amount": "10", "idempotency_key": "t1"})
	if tu["status"] != "succeeded" {
		t.Fatalf("top-up = %v, want succeeded", tu)
	}
	topUpID = str(t, tu, "id")
	for _, c := range objects(t, b.must(t, http.StatusOK, "GET", "/v1/sandbox/charges", b.adminKey, nil)["data"]) {
		if c["top_up_id"] == topUpID {
			return acct, key, topUpID, str(t, c, "id")
		}
	}
	t.Fatalf("no sandbox charge for top-up %s", topUpID)
	return
}

// refundLog is the sandbox's refund log.
func (b *billingBundle) refundLog(t *testing.T) []sandbox.Refund {
	t.Helper()
	rs, _, err := b.store.SandboxRefunds(t.Context(), 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
