package stripe

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/topup/topup/internal/payment"
)

func TestNew(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New without a secret key succeeded")
	}
	if _, err := New(Config{SecretKey: "sk_test_x", APIBase: "127.0.0.1:12111"}); err == nil {
		t.Error("New accepted an API base without a scheme")
	}
	p, err := New(Config{SecretKey: "sk_test_x", APIBase: "http://127.0.0.1:12111/v1/", Publishable: "pk_test_x"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "stripe" || p.PublishableKey() != "pk_test_x" {
		t.Errorf("Name, PublishableKey = %q, %q", p.Name(), p.PublishableKey())
	}
}

// TestEnsureCustomer proves a new customer carries the account id and is
// created under an idempotency key, so a retry does not make a second one.
func TestEnsureCustomer(t *testing.T) {
	t.Parallel()
	f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, obj{"id": "cus_new", "object": "customer"})
	})
	id, err := p.EnsureCustomer(t.Context(), "", "acc_1", "ada@example.com")
	if err != nil || id != "cus_new" {
		t.Fatalf("EnsureCustomer = %q, %v", id, err)
	}
	id2, err := p.EnsureCustomer(t.Context(), "", "acc_1", "ada@example.com")
	if err != nil || id2 != "cus_new" {
		t.Fatalf("EnsureCustomer again = %q, %v", id2, err)
	}
	reqs := f.Requests()
	if r := reqs[0]; r.Path != "/v1/customers" || r.Form.Get("email") != "ada@example.com" || r.Form.Get("metadata[account_id]") != "acc_1" {
		t.Errorf("request = %s %v", r.Path, r.Form)
	}
	if reqs[0].IdempotencyKey == "" || reqs[0].IdempotencyKey != reqs[1].IdempotencyKey {
		t.Errorf("idempotency keys %q, %q: want the same non-empty key for the same account", reqs[0].IdempotencyKey, reqs[1].IdempotencyKey)
	}
}

// setupIntent is a Stripe-shaped SetupIntent for the card paymentMethod.
func setupIntent(id, status string, paymentMethod any, extra obj) obj {
	si := obj{
		"id": id, "object": "setup_intent", "status": status, "usage": "off_session",
		"customer": "cus_1", "payment_method": paymentMethod, "client_secret": id + "_secret_x",
		"last_setup_error": nil, "metadata": obj{},
	}
	for k, v := range extra {
		si[k] = v
	}
	return si
}

// saveCardStripe answers SetupIntent creations by the payment method they
// name, as Stripe would for each outcome.
func saveCardStripe(t *testing.T) http.HandlerFunc {
	answers := map[string]func(w http.ResponseWriter, customer string){
		"pm_card_visa": func(w http.ResponseWriter, customer string) {
			reply(w, 200, setupIntent("seti_ok", "succeeded", cardPM("pm_minted", "visa", "4242", customer), nil))
		},
		"pm_card_authenticationRequiredSetupForOffSession": func(w http.ResponseWriter, _ string) {
			reply(w, 200, setupIntent("seti_3ds", "requires_action", cardPM("pm_3ds", "visa", "3184", nil),
				obj{"next_action": obj{"type": "use_stripe_sdk"}}))
		},
		"pm_card_chargeDeclined": func(w http.ResponseWriter, _ string) {
			reply(w, 402, stripeError("card_error", "card_declined", "generic_decline", "Your card was declined.",
				obj{"setup_intent": setupIntent("seti_d", "requires_payment_method", nil, nil)}))
		},
		"pm_failed_in_body": func(w http.ResponseWriter, _ string) {
			reply(w, 200, setupIntent("seti_f", "requires_payment_method", nil,
				obj{"last_setup_error": obj{"type": "card_error", "code": "card_declined", "message": "Your card does not support this type of purchase."}}))
		},
		"pm_card_cvcCheckFail": func(w http.ResponseWriter, _ string) {
			reply(w, 402, stripeError("card_error", "incorrect_cvc", "", "Your card's security code is incorrect.", obj{"param": "cvc"}))
		},
		"pm_nope": func(w http.ResponseWriter, _ string) {
			reply(w, 400, stripeError("invalid_request_error", "resource_missing", "", "No such PaymentMethod: 'pm_nope'", obj{"param": "payment_method"}))
		},
		"pm_other": func(w http.ResponseWriter, _ string) {
			reply(w, 400, stripeError("invalid_request_error", "resource_missing", "", "No such customer: 'cus_x'", obj{"param": "customer"}))
		},
	}
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/setup_intents/seti_3ds/cancel":
			reply(w, 200, setupIntent("seti_3ds", "canceled", "pm_3ds", nil))
		case "/v1/setup_intents":
			if answer, ok := answers[r.PostForm.Get("payment_method")]; ok {
				answer(w, r.PostForm.Get("customer"))
				return
			}
			reply(w, 500, stripeError("api_error", "", "", "boom", nil))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	}
}

// TestAttachPaymentMethod proves a card is saved through a confirmed
// off-session SetupIntent, with the saved card's display data.
func TestAttachPaymentMethod(t *testing.T) {
	t.Parallel()
	f, p := newFake(t, 0, saveCardStripe(t))
	card, err := p.AttachPaymentMethod(t.Context(), "cus_1", "pm_card_visa")
	want := payment.Card{ID: "pm_minted", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2034}
	if err != nil || card != want {
		t.Errorf("AttachPaymentMethod = %+v, %v; want %+v", card, err, want)
	}
	got := f.Requests()[0]
	wantForm := map[string]string{
		"customer": "cus_1", "payment_method": "pm_card_visa", "usage": "off_session", "confirm": "true",
		"payment_method_types[0]": "card", "expand[0]": "payment_method",
	}
	for k, v := range wantForm {
		if g := got.Form.Get(k); g != v {
			t.Errorf("SetupIntent form %s = %q, want %q", k, g, v)
		}
	}
}

// TestAttachPaymentMethodRefused proves that a card whose bank wants its
// holder present is refused (its SetupIntent canceled) with a pointer to the
// hosted page, that a card or id Stripe refuses is ErrCardRefused with
// Stripe's message, and that a fault of ours is not.
func TestAttachPaymentMethodRefused(t *testing.T) {
	t.Parallel()
	f, p := newFake(t, 0, saveCardStripe(t))
	tests := []struct {
		customer, pm string
		refused      bool   // wraps ErrCardRefused
		unknown      bool   // wraps ErrUnknownOutcome
		says         string // in the error
	}{
		{"cus_1", "pm_card_authenticationRequiredSetupForOffSession", true, false, "POST /v1/accounts/{id}/payment_methods/setup"},
		{"cus_1", "pm_card_chargeDeclined", true, false, "Your card was declined."},
		{"cus_1", "pm_failed_in_body", true, false, "does not support this type of purchase"},
		{"cus_1", "pm_card_cvcCheckFail", true, false, "security code is incorrect"},
		{"cus_1", "pm_nope", true, false, "No such PaymentMethod"},
		{"cus_x", "pm_other", false, false, "No such customer"},
		{"cus_1", "pm_500", false, true, "boom"},
	}
	for _, tt := range tests {
		_, err := p.AttachPaymentMethod(t.Context(), tt.customer, tt.pm)
		if err == nil || errors.Is(err, payment.ErrCardRefused) != tt.refused || errors.Is(err, payment.ErrUnknownOutcome) != tt.unknown ||
			!strings.Contains(err.Error(), tt.says) {
			t.Errorf("AttachPaymentMethod(%s) error = %v; want refused=%v unknown=%v saying %q", tt.pm, err, tt.refused, tt.unknown, tt.says)
		}
	}
	canceled := false
	for _, r := range f.Requests() {
		canceled = canceled || (r.Method == "POST" && r.Path == "/v1/setup_intents/seti_3ds/cancel")
	}
	if !canceled {
		t.Error("the SetupIntent left waiting for the customer was not canceled")
	}
}

// TestDetachPaymentMethod proves a removal can be retried: a card already
// detached counts as detached.
func TestDetachPaymentMethod(t *testing.T) {
	t.Parallel()
	_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/payment_methods/pm_1/detach":
			reply(w, 200, cardPM("pm_1", "visa", "4242", nil))
		case "/v1/payment_methods/pm_done/detach", "/v1/payment_methods/pm_other/detach":
			reply(w, 400, stripeError("invalid_request_error", "", "", "The payment method you provided is not attached to a customer so detachment is impossible.", nil))
		case "/v1/payment_methods/pm_done":
			reply(w, 200, cardPM("pm_done", "visa", "4242", nil))
		case "/v1/payment_methods/pm_other":
			reply(w, 200, cardPM("pm_other", "visa", "4242", "cus_9"))
		default:
			reply(w, 404, stripeError("invalid_request_error", "resource_missing", "", "No such PaymentMethod", nil))
		}
	})
	ctx := t.Context()
	if err := p.DetachPaymentMethod(ctx, "pm_1"); err != nil {
		t.Errorf("Detach(pm_1) = %v", err)
	}
	if err := p.DetachPaymentMethod(ctx, "pm_done"); err != nil {
		t.Errorf("Detach of an already detached card = %v, want nil", err)
	}
	if err := p.DetachPaymentMethod(ctx, "pm_other"); err == nil {
		t.Error("Detach that Stripe refused for a still attached card succeeded")
	}
	if err := p.DetachPaymentMethod(ctx, "pm_missing"); !errors.Is(err, payment.ErrNotFound) {
		t.Errorf("Detach(pm_missing) = %v, want ErrNotFound", err)
	}
}

// TestSetup proves the hosted setup page is a setup-mode Checkout Session
// for cards, tagged with the account, that sends the browser back with the
// session id; and that only a completed session yields its card.
func TestSetup(t *testing.T) {
	t.Parallel()
	f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/checkout/sessions":
			reply(w, 200, obj{"id": "cs_1", "object": "checkout.session", "mode": "setup", "status": "open", "url": "https://checkout.stripe.com/c/pay/cs_1"})
		case "/v1/checkout/sessions/cs_done":
			reply(w, 200, obj{
				"id": "cs_done", "object": "checkout.session", "mode": "setup", "status": "complete", "customer": "cus_1",
				"setup_intent": obj{
					"id": "seti_1", "object": "setup_intent", "status": "succeeded", "customer": "cus_1",
					"payment_method": cardPM("pm_saved", "visa", "4242", "cus_1"),
				},
			})
		case "/v1/checkout/sessions/cs_open":
			reply(w, 200, obj{"id": "cs_open", "object": "checkout.session", "mode": "setup", "status": "open",
				"setup_intent": obj{"id": "seti_2", "object": "setup_intent", "status": "requires_payment_method", "payment_method": nil}})
		default:
			reply(w, 404, stripeError("invalid_request_error", "resource_missing", "", "No such checkout.session", nil))
		}
	})
	ctx := t.Context()

	u, err := p.SetupURL(ctx, "cus_1", "acc_1", "https://topup.test/console/cards?added=1", "https://topup.test/console/cards")
	if err != nil || u != "https://checkout.stripe.com/c/pay/cs_1" {
		t.Fatalf("SetupURL = %q, %v", u, err)
	}
	got := f.Requests()[0].Form
	want := map[string]string{
		"mode": "setup", "customer": "cus_1", "payment_method_types[0]": "card",
		"success_url":          "https://topup.test/console/cards?added=1&session_id={CHECKOUT_SESSION_ID}",
		"cancel_url":           "https://topup.test/console/cards",
		"metadata[account_id]": "acc_1",
		"setup_intent_data[metadata][account_id]": "acc_1",
	}
	for k, v := range want {
		if g := got.Get(k); g != v {
			t.Errorf("form %s = %q, want %q", k, g, v)
		}
	}

	card, err := p.CompleteSetup(ctx, "cus_1", "cs_done")
	if err != nil || card.ID != "pm_saved" || card.Last4 != "4242" {
		t.Errorf("CompleteSetup(cs_done) = %+v, %v; want pm_saved", card, err)
	}
	if q := f.Requests()[1].Form.Get("expand[0]"); q != "setup_intent.payment_method" {
		t.Errorf("CompleteSetup expand = %q, want setup_intent.payment_method", q)
	}
	if _, err := p.CompleteSetup(ctx, "cus_other", "cs_done"); err == nil {
		t.Error("CompleteSetup gave another customer's session card")
	}
	if _, err := p.CompleteSetup(ctx, "cus_1", "cs_open"); err == nil {
		t.Error("CompleteSetup of an open session succeeded")
	}
	if _, err := p.CompleteSetup(ctx, "cus_1", "cs_missing"); !errors.Is(err, payment.ErrNotFound) {
		t.Errorf("CompleteSetup(cs_missing) = %v, want ErrNotFound", err)
	}
}
