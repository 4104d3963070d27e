package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/topup/topup/internal/stripe"
)

// stripeTestWebhookSecret is the endpoint secret the tests' Stripe provider
// verifies with.
const stripeTestWebhookSecret = "whsec_test"

// setupStripeWebhooks is the API with the real Stripe webhook parser; the
// sandbox still charges, and the worker stays idle so that only the
// webhooks move the top-ups.
func setupStripeWebhooks(t *testing.T) *billingBundle {
	t.Helper()
	sp, err := stripe.New(stripe.Config{SecretKey: "sk_test_x", WebhookSecret: stripeTestWebhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	return setupBilling(t, billingOptions{webhooks: sp, idleEngine: true})
}

// stripeEvent is a Stripe-shaped event around object, of stripe-go's API
// version (the parser refuses others).
func stripeEvent(t *testing.T, id, typ string, object, previous map[string]any) []byte {
	t.Helper()
	data := map[string]any{"object": object}
	if previous != nil {
		data["previous_attributes"] = previous
	}
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": stripego.APIVersion,
		"created": time.Now().Unix(), "livemode": false, "pending_webhooks": 1, "data": data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// paymentIntent is a PaymentIntent for a top-up; declineCode makes it a
// failed one (requires_payment_method with last_payment_error).
func paymentIntent(id, topUpID string, amount int64, declineCode string) map[string]any {
	pi := map[string]any{
		"id": id, "object": "payment_intent", "amount": amount, "currency": "usd", "status": "succeeded",
		"customer": "cus_test", "client_secret": id + "_secret_x", "created": time.Now().Unix(),
		"metadata": map[string]any{"top_up_id": topUpID},
	}
	if declineCode != "" {
		pi["status"] = "requires_payment_method"
		pi["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": declineCode}
	}
	return pi
}

// postWebhook sends payload as Stripe would, signed with secret at time at.
func (b *billingBundle) postWebhook(t *testing.T, payload []byte, secret string, at time.Time) (int, map[string]any) {
	t.Helper()
	header := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
	return b.postWebhookHeader(t, payload, header)
}

func (b *billingBundle) postWebhookHeader(t *testing.T, payload []byte, header string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+"/v1/stripe/webhook", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("webhook answer is not JSON: %s", data)
	}
	return resp.StatusCode, out
}

// mustWebhook is postWebhook, correctly signed now, expecting 200.
func (b *billingBundle) mustWebhook(t *testing.T, payload []byte) {
	t.Helper()
	if status, body := b.postWebhook(t, payload, stripeTestWebhookSecret, time.Now()); status != http.StatusOK {
		t.Fatalf("webhook answered %d %v, want 200", status, body)
	}
}

// processingTopUp makes an account whose automatic top-up is being charged:
// saved below the threshold (0 < 5), its amount fixed at 20.00 and its
// first attempt begun, as the worker leaves it while the provider decides.
func (b *billingBundle) processingTopUp(t *testing.T) (acct, key, topUpID string) {
	t.Helper()
	acct, key = b.account(t, "")
	b.attach(t, acct, key, "pm_card_visa")
	saved := b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
	topUpID = str(t, saved, "top_up_id")
	tu, ok, err := b.store.Begin(t.Context(), topUpID)
	if err != nil || !ok || tu.Amount == nil || *tu.Amount != 20_000_000 {
		t.Fatalf("begin top-up %s: %+v, %t, %v", topUpID, tu, ok, err)
	}
	if got := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/top_ups/"+topUpID, key, nil); got["status"] != "processing" {
		t.Fatalf("top-up = %v, want processing", got)
	}
	return acct, key, topUpID
}

// moneyState is what a customer sees of a top-up's money: the top-up's
// status, the balance and the ledger's top_up entries.
type moneyState struct {
	status, balance string
	credits         int
}

func (b *billingBundle) moneyState(t *testing.T, acct, topUpID string) moneyState {
	t.Helper()
	tu := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/top_ups/"+topUpID, b.adminKey, nil)
	n := 0
	for _, es := range b.topUpEntries(t, acct) {
		n += len(es)
	}
	return moneyState{status: str(t, tu, "status"), balance: b.balance(t, acct), credits: n}
}

// TestStripeWebhookCreditsOnce: payment_intent.succeeded credits its top-up
// once, whether the same event comes again, another event says the same,
// or a late payment_failed follows.
func TestStripeWebhookCreditsOnce(t *testing.T) {
	t.Parallel()
	b := setupStripeWebhooks(t)
	acct, _, id := b.processingTopUp(t)
	credited := moneyState{status: "succeeded", balance: "20.00", credits: 1}

	succeeded := stripeEvent(t, "evt_succeeded_1", "payment_intent.succeeded", paymentIntent("pi_1", id, 2000, ""), nil)
	b.mustWebhook(t, succeeded)
	if got := b.moneyState(t, acct, id); got != credited {
		t.Fatalf("after payment_intent.succeeded: %+v, want %+v", got, credited)
	}
	steps := []struct {
		name    string
		payload []byte
	}{
		{"the same event again", succeeded},
		{"another event for the same PaymentIntent", stripeEvent(t, "evt_succeeded_2", "payment_intent.succeeded", paymentIntent("pi_1", id, 2000, ""), nil)},
		{"payment_failed after succeeded", stripeEvent(t, "evt_failed_late", "payment_intent.payment_failed", paymentIntent("pi_1", id, 2000, "card_declined"), nil)},
	}
	for _, s := range steps {
		b.mustWebhook(t, s.payload)
		if got := b.moneyState(t, acct, id); got != credited {
			t.Errorf("after %s: %+v, want %+v", s.name, got, credited)
		}
	}
}

// TestStripeWebhookSucceededAfterFailedIsCredited: events out of order — a
// payment_failed, then the succeeded of a charge that was paid after all —
// end with the top-up credited exactly once.
func TestStripeWebhookSucceededAfterFailedIsCredited(t *testing.T) {
	t.Parallel()
	b := setupStripeWebhooks(t)
	acct, _, id := b.processingTopUp(t)

	b.mustWebhook(t, stripeEvent(t, "evt_failed", "payment_intent.payment_failed", paymentIntent("pi_1", id, 2000, "insufficient_funds"), nil))
	tu := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/top_ups/"+id, b.adminKey, nil)
	if tu["status"] != "failed" || tu["failure_code"] != "insufficient_funds" {
		t.Fatalf("after payment_failed: %v, want failed insufficient_funds", tu)
	}
	if got := b.balance(t, acct); got != "0.00" {
		t.Fatalf("balance after payment_failed = %s, want 0.00", got)
	}

	want := moneyState{status: "succeeded", balance: "20.00", credits: 1}
	for _, evt := range []string{"evt_paid", "evt_paid", "evt_paid_again"} {
		b.mustWebhook(t, stripeEvent(t, evt, "payment_intent.succeeded", paymentIntent("pi_1", id, 2000, ""), nil))
		if got := b.moneyState(t, acct, id); got != want {
			t.Errorf("after succeeded %s: %+v, want %+v", evt, got, want)
		}
	}
}

// TestStripeWebhookRefusesBadSignatures: an unsigned, wrongly signed,
// altered or stale event answers 400 and changes nothing — not even the
// record of its event id, so the genuine event still applies.
func TestStripeWebhookRefusesBadSignatures(t *testing.T) {
	t.Parallel()
	b := setupStripeWebhooks(t)
	acct, _, id := b.processingTopUp(t)
	before := b.moneyState(t, acct, id)
	payload := stripeEvent(t, "evt_1", "payment_intent.succeeded", paymentIntent("pi_1", id, 2000, ""), nil)
	altered := bytes.Replace(payload, []byte(`"amount":2000`), []byte(`"amount":9000`), 1)
	if bytes.Equal(altered, payload) {
		t.Fatal("the altered payload is not altered")
	}
	goodHeader := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: stripeTestWebhookSecret, Timestamp: time.Now()}).Header

	tests := []struct {
		name    string
		payload []byte
		header  string
	}{
		{"no signature", payload, ""},
		{"garbage signature", payload, "t=1,v1=deadbeef"},
		{"another secret", payload, webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: "whsec_other", Timestamp: time.Now()}).Header},
		{"altered body", altered, goodHeader},
		{"stale by six minutes", payload, webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: stripeTestWebhookSecret, Timestamp: time.Now().Add(-6 * time.Minute)}).Header},
	}
	for _, tt := range tests {
		status, body := b.postWebhookHeader(t, tt.payload, tt.header)
		t.Run(tt.name, func(t *testing.T) { wantError(t, status, body, http.StatusBadRequest, "invalid", "Stripe-Signature") })
		if got := b.moneyState(t, acct, id); got != before {
			t.Errorf("%s changed %+v to %+v", tt.name, before, got)
		}
	}
	b.mustWebhook(t, payload)
	if got, want := b.moneyState(t, acct, id), (moneyState{status: "succeeded", balance: "20.00", credits: 1}); got != want {
		t.Errorf("the genuine event after the refused ones: %+v, want %+v", got, want)
	}
}

// TestStripeWebhookDetachedCardDisablesAutoTopUp: a card detached at Stripe
// is removed here, and Automatic Top-Up that named it switches off.
func TestStripeWebhookDetachedCardDisablesAutoTopUp(t *testing.T) {
	t.Parallel()
	b := setupStripeWebhooks(t)
	acct, key := b.funded(t, "50")
	card := str(t, b.attach(t, acct, key, "pm_card_visa"), "id")
	b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20", "payment_method": card})

	pm := func(id string) map[string]any {
		return map[string]any{"id": id, "object": "payment_method", "type": "card", "customer": nil, "created": time.Now().Unix(),
			"card": map[string]any{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}}
	}
	// A card Topup does not know changes nothing.
	b.mustWebhook(t, stripeEvent(t, "evt_other", "payment_method.detached", pm("pm_unknown"), map[string]any{"customer": "cus_test"}))
	if all, _ := b.cardIDs(t, acct); len(all) != 1 {
		t.Fatalf("a detached unknown card changed the cards: %v", all)
	}
	if st := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/auto_top_up", key, nil); st["enabled"] != true {
		t.Fatalf("a detached unknown card changed the settings: %v", st)
	}

	b.mustWebhook(t, stripeEvent(t, "evt_detached", "payment_method.detached", pm(card), map[string]any{"customer": "cus_test"}))
	if all, _ := b.cardIDs(t, acct); len(all) != 0 {
		t.Errorf("cards after payment_method.detached = %v, want none", all)
	}
	st := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/auto_top_up", key, nil)
	if st["enabled"] != false || st["disabled_reason"] != "payment_method_removed" {
		t.Errorf("settings after the card was detached = %v; want enabled false, disabled_reason payment_method_removed", st)
	}
}

// TestStripeWebhookUnknownTopUpChangesNothing: an event for a top-up this
// Topup never made (another environment's, or one since deleted) is
// acknowledged so that Stripe stops sending it, and changes nothing.
func TestStripeWebhookUnknownTopUpChangesNothing(t *testing.T) {
	t.Parallel()
	b := setupStripeWebhooks(t)
	acct, _, id := b.processingTopUp(t)
	before := b.moneyState(t, acct, id)
	for _, p := range [][]byte{
		stripeEvent(t, "evt_unknown_1", "payment_intent.succeeded", paymentIntent("pi_9", "tu_unknown", 2000, ""), nil),
		stripeEvent(t, "evt_unknown_2", "payment_intent.succeeded", paymentIntent("pi_9", "", 2000, ""), nil),
		stripeEvent(t, "evt_unknown_3", "payment_intent.payment_failed", paymentIntent("pi_9", "tu_unknown", 2000, "card_declined"), nil),
		stripeEvent(t, "evt_unknown_4", "customer.created", map[string]any{"id": "cus_x", "object": "customer"}, nil),
	} {
		b.mustWebhook(t, p)
	}
	if got := b.moneyState(t, acct, id); got != before {
		t.Errorf("events for unknown top-ups changed %+v to %+v", before, got)
	}
	if n := len(b.topUps(t, acct)); n != 1 {
		t.Errorf("%d top-ups, want 1", n)
	}
}

// TestStripeWebhookSuccessBeforeAmountIsRefused: a success naming a top-up
// that was never charged (its amount is not fixed yet) credits nothing and
// is refused with a 5xx, so that it stays visible; the service keeps
// working.
func TestStripeWebhookSuccessBeforeAmountIsRefused(t *testing.T) {
	t.Parallel()
	b := setupStripeWebhooks(t)
	acct, key := b.account(t, "")
	b.attach(t, acct, key, "pm_card_visa")
	saved := b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", key, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
	id := str(t, saved, "top_up_id")
	before := b.moneyState(t, acct, id)
	status, body := b.postWebhook(t, stripeEvent(t, "evt_early", "payment_intent.succeeded", paymentIntent("pi_1", id, 2000, ""), nil), stripeTestWebhookSecret, time.Now())
	if status < 500 {
		t.Errorf("success for an uncharged top-up answered %d %v, want a 5xx", status, body)
	}
	if got := b.moneyState(t, acct, id); got != before || got.status != "pending" {
		t.Errorf("success for an uncharged top-up changed %+v to %+v", before, got)
	}
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/credits", b.adminKey, map[string]any{"amount": "1", "idempotency_key": "after"})
}

// TestStripeRefundAndDisputeEventsAcknowledged: Stripe's refund and
// dispute events, signed, are read (the dispute's top-up from its
// PaymentIntent) and answered 200, so that Stripe does not retry them;
// about a charge that is no succeeded top-up of Topup's (pi_1 is not the
// processing top-up's charge) they move nothing. TestStripeMoneyEventsAppliedOnce
// applies them to top-ups that were paid.
func TestStripeRefundAndDisputeEventsAcknowledged(t *testing.T) {
	t.Parallel()
	var lookups atomic.Int32
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lookups.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/payment_intents/pi_1" {
			t.Errorf("unexpected Stripe call %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(paymentIntent("pi_1", "tu_1", 2000, ""))
	}))
	t.Cleanup(fake.Close)
	sp, err := stripe.New(stripe.Config{SecretKey: "sk_test_x", WebhookSecret: stripeTestWebhookSecret, APIBase: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	b := setupBilling(t, billingOptions{webhooks: sp, idleEngine: true})
	acct, _, id := b.processingTopUp(t)
	before := b.moneyState(t, acct, id)
	refund := func(status string, meta map[string]any) map[string]any {
		return map[string]any{"id": "re_1", "object": "refund", "amount": 500, "currency": "usd", "status": status,
			"payment_intent": "pi_1", "charge": "ch_1", "created": time.Now().Unix(), "metadata": meta}
	}
	dispute := func(status string) map[string]any {
		return map[string]any{"id": "dp_1", "object": "dispute", "amount": 2000, "currency": "usd", "status": status,
			"reason": "fraudulent", "charge": "ch_1", "payment_intent": "pi_1", "created": time.Now().Unix(), "balance_transactions": []any{}}
	}
	ours := map[string]any{"refund_id": "rf_1", "top_up_id": id}
	for i, ev := range []struct {
		typ    string
		object map[string]any
	}{
		{"refund.created", refund("succeeded", ours)},
		{"refund.updated", refund("failed", ours)},
		{"refund.failed", refund("failed", ours)},
		{"refund.created", refund("succeeded", map[string]any{})}, // made in the Dashboard
		{"charge.dispute.created", dispute("needs_response")},
		{"charge.dispute.funds_withdrawn", dispute("needs_response")},
		{"charge.dispute.funds_reinstated", dispute("won")},
		{"charge.dispute.closed", dispute("won")},
	} {
		payload := stripeEvent(t, fmt.Sprintf("evt_money_%d", i), ev.typ, ev.object, nil)
		status, body := b.postWebhook(t, payload, stripeTestWebhookSecret, time.Now())
		if status != http.StatusOK || body["received"] != true {
			t.Errorf("%s answered %d %v, want 200 received", ev.typ, status, body)
		}
	}
	if n := lookups.Load(); n != 5 {
		t.Errorf("%d PaymentIntent lookups, want 5: the Dashboard's refund and the 4 dispute events", n)
	}
	if after := b.moneyState(t, acct, id); after != before {
		t.Errorf("after refund and dispute events: %+v, want %+v unchanged", after, before)
	}
}
