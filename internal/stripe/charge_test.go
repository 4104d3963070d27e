package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/payment"
)

func autoTopUp() payment.ChargeRequest {
	return payment.ChargeRequest{
		TopUpID: "tu_42", IdempotencyKey: "topup-tu_42", Customer: "cus_1",
		PaymentMethod: "pm_1", Amount: 1250, Currency: "USD", OffSession: true,
		Description: "Automatic Top-Up",
	}
}

// TestChargeOutcomes proves how each answer Stripe can give to a confirmed
// PaymentIntent becomes a top-up outcome.
func TestChargeOutcomes(t *testing.T) {
	t.Parallel()
	declinedPI := func(code, declineCode string) obj {
		return intent("pi_d", "requires_payment_method", "tu_42", obj{
			"last_payment_error": obj{"type": "card_error", "code": code, "decline_code": declineCode},
		})
	}
	tests := []struct {
		name   string
		status int
		body   any
		want   payment.Charge
	}{
		{
			name: "succeeded", status: 200,
			body: intent("pi_ok", "succeeded", "tu_42", nil),
			want: payment.Charge{ID: "pi_ok", TopUpID: "tu_42", Status: payment.Succeeded, Amount: 1250, Currency: "usd"},
		},
		{
			name: "insufficient funds", status: 402,
			body: stripeError("card_error", "card_declined", "insufficient_funds", "Your card has insufficient funds.",
				obj{"payment_intent": declinedPI("card_declined", "insufficient_funds")}),
			want: payment.Charge{ID: "pi_d", TopUpID: "tu_42", Status: payment.Declined, DeclineCode: "insufficient_funds", Amount: 1250, Currency: "usd"},
		},
		{
			name: "lost card, no PaymentIntent in the error", status: 402,
			body: stripeError("card_error", "card_declined", "lost_card", "Your card has been declined.", nil),
			want: payment.Charge{TopUpID: "tu_42", Status: payment.Declined, DeclineCode: "lost_card", Amount: 1250, Currency: "usd"},
		},
		{
			name: "generic decline is card_declined, as in the sandbox", status: 402,
			body: stripeError("card_error", "card_declined", "generic_decline", "Your card was declined.",
				obj{"payment_intent": declinedPI("card_declined", "generic_decline")}),
			want: payment.Charge{ID: "pi_d", TopUpID: "tu_42", Status: payment.Declined, DeclineCode: "card_declined", Amount: 1250, Currency: "usd"},
		},
		{
			name: "expired card has only an error code", status: 402,
			body: stripeError("card_error", "expired_card", "", "Your card has expired.", nil),
			want: payment.Charge{TopUpID: "tu_42", Status: payment.Declined, DeclineCode: "expired_card", Amount: 1250, Currency: "usd"},
		},
		{
			name: "off-session authentication_required", status: 402,
			body: stripeError("card_error", "authentication_required", "authentication_required",
				"Your card was declined. This transaction requires authentication.",
				obj{"payment_intent": declinedPI("authentication_required", "authentication_required")}),
			// The error names no card: the one this request sent failed.
			want: payment.Charge{ID: "pi_d", TopUpID: "tu_42", Status: payment.RequiresAction, DeclineCode: "authentication_required",
				ClientSecret: "pi_d_secret_abc", PaymentMethodID: "pm_1", Amount: 1250, Currency: "usd"},
		},
		{
			name: "off-session authentication_required names the card of last_payment_error", status: 402,
			body: stripeError("card_error", "authentication_required", "authentication_required",
				"Your card was declined. This transaction requires authentication.",
				obj{"payment_intent": intent("pi_d", "requires_payment_method", "tu_42", obj{
					"payment_method": nil,
					"last_payment_error": obj{
						"type": "card_error", "code": "authentication_required", "decline_code": "authentication_required",
						"payment_method": cardPM("pm_minted", "visa", "3155", "cus_1"),
					},
				})}),
			want: payment.Charge{ID: "pi_d", TopUpID: "tu_42", Status: payment.RequiresAction, DeclineCode: "authentication_required",
				ClientSecret: "pi_d_secret_abc", PaymentMethodID: "pm_minted", Amount: 1250, Currency: "usd"},
		},
		{
			name: "authentication_required without the PaymentIntent cannot be authenticated", status: 402,
			body: stripeError("card_error", "authentication_required", "authentication_required", "Authentication required.", nil),
			want: payment.Charge{TopUpID: "tu_42", Status: payment.Declined, DeclineCode: "authentication_required", Amount: 1250, Currency: "usd"},
		},
		{
			name: "on-session 3-D Secure: requires_action", status: 200,
			body: intent("pi_3ds", "requires_action", "tu_42", obj{"next_action": obj{"type": "use_stripe_sdk"}, "payment_method": "pm_1"}),
			want: payment.Charge{ID: "pi_3ds", TopUpID: "tu_42", Status: payment.RequiresAction, ClientSecret: "pi_3ds_secret_abc",
				PaymentMethodID: "pm_1", Amount: 1250, Currency: "usd"},
		},
		{
			name: "processing", status: 200,
			body: intent("pi_p", "processing", "tu_42", nil),
			want: payment.Charge{ID: "pi_p", TopUpID: "tu_42", Status: payment.Processing, Amount: 1250, Currency: "usd"},
		},
		{
			name: "requires_payment_method after a failed confirmation", status: 200,
			body: declinedPI("card_declined", "stolen_card"),
			want: payment.Charge{ID: "pi_d", TopUpID: "tu_42", Status: payment.Declined, DeclineCode: "stolen_card", Amount: 1250, Currency: "usd"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) { reply(w, tt.status, tt.body) })
			got, err := p.Charge(t.Context(), autoTopUp())
			if err != nil {
				t.Fatalf("Charge: %v", err)
			}
			if tt.want.ID != "" {
				tt.want.Created = time.Unix(1767225600, 0).UTC()
			}
			if got != tt.want {
				t.Errorf("Charge =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// TestChargeUnknownOutcome proves that every failure after which Stripe may
// have charged wraps payment.ErrUnknownOutcome, and that stripe-go does not
// retry on its own (the engine retries with the same key).
func TestChargeUnknownOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
		handler http.HandlerFunc
	}{
		{"500 api_error", 0, func(w http.ResponseWriter, r *http.Request) {
			reply(w, 500, stripeError("api_error", "", "", "An unknown error occurred", nil))
		}},
		{"502 with an HTML body", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			fmt.Fprint(w, "<html>Bad Gateway</html>")
		}},
		{"429 rate limited", 0, func(w http.ResponseWriter, r *http.Request) {
			reply(w, 429, stripeError("invalid_request_error", "rate_limit", "", "Too many requests", nil))
		}},
		{"409 same key still in flight", 0, func(w http.ResponseWriter, r *http.Request) {
			reply(w, 409, stripeError("idempotency_error", "idempotency_key_in_use", "", "There is currently another in-progress request using this Idempotent Key", nil))
		}},
		{"timeout", 200 * time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
			select { // answer only after the client gave up
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
		{"200 with a cut body", 0, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"id": "pi_1", "status": "succ`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, p := newFake(t, tt.timeout, tt.handler)
			_, err := p.Charge(t.Context(), autoTopUp())
			if !errors.Is(err, payment.ErrUnknownOutcome) {
				t.Fatalf("Charge error = %v, want one wrapping ErrUnknownOutcome", err)
			}
			if n := len(f.Requests()); n != 1 {
				t.Errorf("Stripe saw %d requests, want 1: stripe-go must not retry on its own", n)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {})
		f.Close()
		if _, err := p.Charge(t.Context(), autoTopUp()); !errors.Is(err, payment.ErrUnknownOutcome) {
			t.Fatalf("Charge error = %v, want one wrapping ErrUnknownOutcome", err)
		}
	})
	t.Run("caller's deadline", func(t *testing.T) {
		t.Parallel()
		_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := p.Charge(ctx, autoTopUp()); !errors.Is(err, payment.ErrUnknownOutcome) {
			t.Fatalf("Charge error = %v, want one wrapping ErrUnknownOutcome", err)
		}
	})
}

// TestChargeInvalidRequestIsNotRetryable proves a 400 is a plain error: the
// request was wrong and sending it again would not help.
func TestChargeInvalidRequestIsNotRetryable(t *testing.T) {
	t.Parallel()
	_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		reply(w, 400, stripeError("invalid_request_error", "resource_missing", "", "No such PaymentMethod: 'pm_1'", obj{"param": "payment_method"}))
	})
	_, err := p.Charge(t.Context(), autoTopUp())
	if err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("Charge error = %v, want a plain error", err)
	}
	if !strings.Contains(err.Error(), "No such PaymentMethod") {
		t.Errorf("error %q does not carry Stripe's message", err)
	}
}

// TestChargeRequest proves what is sent: one confirmed card PaymentIntent
// under the caller's idempotency key, tagged with the top-up id.
func TestChargeRequest(t *testing.T) {
	t.Parallel()
	for _, offSession := range []bool{true, false} {
		t.Run(fmt.Sprintf("off_session=%v", offSession), func(t *testing.T) {
			t.Parallel()
			f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
				reply(w, 200, intent("pi_ok", "succeeded", "tu_42", nil))
			})
			req := autoTopUp()
			req.OffSession = offSession
			if _, err := p.Charge(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			reqs := f.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			got := reqs[0]
			if got.Method != "POST" || got.Path != "/v1/payment_intents" {
				t.Errorf("request = %s %s, want POST /v1/payment_intents", got.Method, got.Path)
			}
			if got.IdempotencyKey != req.IdempotencyKey {
				t.Errorf("Idempotency-Key = %q, want %q", got.IdempotencyKey, req.IdempotencyKey)
			}
			want := map[string]string{
				"amount": "1250", "currency": "usd", "customer": "cus_1", "payment_method": "pm_1",
				"confirm": "true", "off_session": fmt.Sprint(offSession), "metadata[top_up_id]": "tu_42",
				"payment_method_types[0]": "card", "description": "Automatic Top-Up",
			}
			for k, v := range want {
				if g := got.Form.Get(k); g != v {
					t.Errorf("form %s = %q, want %q", k, g, v)
				}
			}
			if got.Form.Has("return_url") || got.Form.Has("automatic_payment_methods[enabled]") {
				t.Errorf("form %v asks for redirects; a saved card needs none", got.Form)
			}
		})
	}
	t.Run("no idempotency key, no charge", func(t *testing.T) {
		t.Parallel()
		f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {})
		req := autoTopUp()
		req.IdempotencyKey = ""
		if _, err := p.Charge(t.Context(), req); err == nil {
			t.Error("Charge without an idempotency key succeeded")
		}
		if n := len(f.Requests()); n != 0 {
			t.Errorf("Stripe saw %d requests, want 0", n)
		}
	})
}

// TestGetCharge proves a charge is read back as Charge reads it, and an
// unknown id is ErrNotFound.
func TestGetCharge(t *testing.T) {
	t.Parallel()
	f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/payment_intents/pi_auth":
			reply(w, 200, intent("pi_auth", "requires_payment_method", "tu_7", obj{
				"last_payment_error": obj{"type": "card_error", "code": "authentication_required", "decline_code": "authentication_required"},
			}))
		case "/v1/payment_intents/pi_gone":
			reply(w, 404, stripeError("invalid_request_error", "resource_missing", "", "No such payment_intent: 'pi_gone'", obj{"param": "intent"}))
		case "/v1/payment_intents/pi_canceled":
			reply(w, 200, intent("pi_canceled", "canceled", "tu_8", obj{"cancellation_reason": "abandoned"}))
		default:
			reply(w, 200, intent("pi_ok", "succeeded", "tu_6", nil))
		}
	})
	ctx := t.Context()
	c, err := p.GetCharge(ctx, "pi_ok")
	if err != nil || c.Status != payment.Succeeded || c.TopUpID != "tu_6" {
		t.Errorf("GetCharge(pi_ok) = %+v, %v; want succeeded for tu_6", c, err)
	}
	c, err = p.GetCharge(ctx, "pi_auth")
	if err != nil || c.Status != payment.RequiresAction || c.ClientSecret == "" {
		t.Errorf("GetCharge(pi_auth) = %+v, %v; want requires_action with a client secret", c, err)
	}
	c, err = p.GetCharge(ctx, "pi_canceled")
	if err != nil || c.Status != payment.Declined || c.DeclineCode != "canceled" {
		t.Errorf("GetCharge(pi_canceled) = %+v, %v; want declined/canceled", c, err)
	}
	if _, err := p.GetCharge(ctx, "pi_gone"); !errors.Is(err, payment.ErrNotFound) {
		t.Errorf("GetCharge(pi_gone) error = %v, want ErrNotFound", err)
	}
	if got := f.Requests()[0]; got.Method != "GET" {
		t.Errorf("GetCharge sent %s, want GET", got.Method)
	}
}

// TestFindCharge proves the charge for a top-up is found by its metadata
// among the customer's PaymentIntents created since the top-up, across
// pages, without Stripe's search; and that a missing one is ok=false rather
// than an error.
func TestFindCharge(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gen := ids.New(clock.NewManual(created))
	tu3, tuNever := gen.New(ids.TopUp), gen.New(ids.TopUp)
	pages := map[string]obj{ // starting_after → page
		"": {"object": "list", "has_more": true, "url": "/v1/payment_intents", "data": []any{
			intent("pi_5", "succeeded", "tu_5", nil),
			intent("pi_4", "succeeded", "tu_4", nil),
		}},
		"pi_4": {"object": "list", "has_more": true, "url": "/v1/payment_intents", "data": []any{
			intent("pi_3", "requires_payment_method", tu3, obj{"last_payment_error": obj{"type": "card_error", "code": "card_declined", "decline_code": "lost_card"}}),
			intent("pi_2", "succeeded", "tu_2", nil),
		}},
		"pi_2": {"object": "list", "has_more": false, "url": "/v1/payment_intents", "data": []any{
			intent("pi_1", "succeeded", "tu_1", nil),
		}},
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/payment_intents" {
			t.Errorf("FindCharge asked %s %s, want only the list of PaymentIntents", r.Method, r.URL.Path)
		}
		reply(w, 200, pages[r.URL.Query().Get("starting_after")])
	}
	ctx := t.Context()
	wantSince := fmt.Sprint(created.Add(-findChargeSlack).Unix())

	t.Run("found on the second page", func(t *testing.T) {
		t.Parallel()
		f, p := newFake(t, 0, handler)
		p.pageSize = 2
		c, ok, err := p.FindCharge(ctx, "cus_1", tu3)
		if err != nil || !ok || c.ID != "pi_3" || c.Status != payment.Declined || c.DeclineCode != "lost_card" {
			t.Fatalf("FindCharge = %+v, %v, %v; want pi_3 declined lost_card", c, ok, err)
		}
		reqs := f.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want the two pages up to the match", len(reqs))
		}
		for _, r := range reqs {
			if r.Method != "GET" || r.Form.Get("customer") != "cus_1" || r.Form.Get("limit") != "2" || r.Form.Get("created[gte]") != wantSince {
				t.Errorf("request %s %v, want a page of cus_1's PaymentIntents created since %s", r.Method, r.Form, wantSince)
			}
		}
		if got := reqs[1].Form.Get("starting_after"); got != "pi_4" {
			t.Errorf("second page starting_after = %q, want pi_4", got)
		}
	})
	t.Run("none, after every page", func(t *testing.T) {
		t.Parallel()
		f, p := newFake(t, 0, handler)
		p.pageSize = 2
		c, ok, err := p.FindCharge(ctx, "cus_1", tuNever)
		if err != nil || ok {
			t.Fatalf("FindCharge = %+v, %v, %v; want not found", c, ok, err)
		}
		if n := len(f.Requests()); n != 3 {
			t.Errorf("%d requests, want all 3 pages read", n)
		}
	})
	t.Run("an id without a time lists all the customer's PaymentIntents", func(t *testing.T) {
		t.Parallel()
		f, p := newFake(t, 0, handler)
		if _, ok, err := p.FindCharge(ctx, "cus_1", "tu_1"); err != nil || !ok {
			t.Fatalf("FindCharge(tu_1) = %v, %v; want found", ok, err)
		}
		if r := f.Requests()[0]; r.Form.Has("created[gte]") || r.Form.Get("limit") != "100" {
			t.Errorf("request %v, want no created filter, 100 at a time", r.Form)
		}
	})
}

// TestFindChargeFailure proves a lookup that failed, on the first page or a
// later one, is an error, never not-found: not-found lets the engine charge
// again.
func TestFindChargeFailure(t *testing.T) {
	t.Parallel()
	topUpID := ids.New(clock.System).New(ids.TopUp)
	for _, failedPage := range []int{1, 2} {
		t.Run(fmt.Sprintf("page %d", failedPage), func(t *testing.T) {
			t.Parallel()
			_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
				if failedPage == 1 || r.URL.Query().Get("starting_after") != "" {
					reply(w, 503, stripeError("api_error", "", "", "unavailable", nil))
					return
				}
				reply(w, 200, obj{"object": "list", "has_more": true, "url": "/v1/payment_intents", "data": []any{
					intent("pi_9", "succeeded", "tu_9", nil),
				}})
			})
			if _, ok, err := p.FindCharge(t.Context(), "cus_1", topUpID); ok || !errors.Is(err, payment.ErrUnknownOutcome) {
				t.Errorf("FindCharge = %v, %v; want an ErrUnknownOutcome error", ok, err)
			}
		})
	}
}
