package stripe

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/payment"
)

// refundObj is a Stripe-shaped Refund of pi_1.
func refundObj(id, status, refundID string, extra obj) obj {
	meta := obj{}
	if refundID != "" {
		meta["refund_id"], meta["top_up_id"] = refundID, "tu_1"
	}
	re := obj{
		"id": id, "object": "refund", "amount": 500, "currency": "usd", "status": status,
		"created": 1767225600, "payment_intent": "pi_1", "charge": "ch_1", "metadata": meta,
		"reason": nil, "failure_reason": nil, "balance_transaction": "txn_1",
	}
	for k, v := range extra {
		re[k] = v
	}
	return re
}

func operatorRefund() payment.RefundRequest {
	return payment.RefundRequest{
		RefundID: "rf_1", IdempotencyKey: "refund-rf_1", ChargeID: "pi_1", TopUpID: "tu_1",
		Amount: 500, Currency: "USD", Reason: "requested_by_customer",
	}
}

// TestRefundRequest proves what is sent: one Refund of the PaymentIntent
// under the caller's key, tagged with Topup's refund and top-up ids, the
// reason as Stripe's when it is one of Stripe's, else in the metadata.
func TestRefundRequest(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 600)
	tests := []struct {
		name, reason string
		want         map[string]string
		absent       []string
	}{
		{"Stripe's reason", "requested_by_customer", map[string]string{"reason": "requested_by_customer"}, []string{"metadata[reason]"}},
		{"duplicate", "duplicate", map[string]string{"reason": "duplicate"}, []string{"metadata[reason]"}},
		{"free text goes to the metadata", "goodwill gesture", map[string]string{"metadata[reason]": "goodwill gesture"}, []string{"reason"}},
		{"long text is cut to Stripe's 500 characters", long, map[string]string{"metadata[reason]": strings.Repeat("é", 500)}, []string{"reason"}},
		{"no reason", "", nil, []string{"reason", "metadata[reason]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
				reply(w, 200, refundObj("re_1", "succeeded", "rf_1", nil))
			})
			req := operatorRefund()
			req.Reason = tt.reason
			got, err := p.Refund(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			want := payment.Refund{ID: "re_1", RefundID: "rf_1", ChargeID: "pi_1", TopUpID: "tu_1", Amount: 500, Currency: "usd",
				Status: payment.RefundSucceeded, Created: time.Unix(1767225600, 0).UTC()}
			if got != want {
				t.Errorf("refund = %+v, want %+v", got, want)
			}
			reqs := f.Requests()
			if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/v1/refunds" || reqs[0].IdempotencyKey != "refund-rf_1" {
				t.Fatalf("requests = %+v, want one POST /v1/refunds under refund-rf_1", reqs)
			}
			form := reqs[0].Form
			for k, v := range map[string]string{"payment_intent": "pi_1", "amount": "500", "metadata[refund_id]": "rf_1", "metadata[top_up_id]": "tu_1"} {
				if g := form.Get(k); g != v {
					t.Errorf("form %s = %q, want %q", k, g, v)
				}
			}
			for k, v := range tt.want {
				if g := form.Get(k); g != v {
					t.Errorf("form %s = %q, want %q", k, g, v)
				}
			}
			for _, k := range append(tt.absent, "currency", "charge") {
				if form.Has(k) {
					t.Errorf("form has %s = %q", k, form.Get(k))
				}
			}
		})
	}
	t.Run("no idempotency key, no refund", func(t *testing.T) {
		t.Parallel()
		f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {})
		req := operatorRefund()
		req.IdempotencyKey = ""
		if _, err := p.Refund(t.Context(), req); err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
			t.Errorf("Refund without a key = %v, want a plain error", err)
		}
		if n := len(f.Requests()); n != 0 {
			t.Errorf("Stripe saw %d requests, want 0", n)
		}
	})
}

// TestRefundOutcomes proves how each answer to a refund request is read:
// statuses, refusals (nothing refunded: plain errors) and unknown outcomes
// (retry with the same key).
func TestRefundOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    any
		want    payment.RefundStatus
		unknown bool // the error wraps ErrUnknownOutcome
		failed  bool // any error
	}{
		{name: "succeeded", status: 200, body: refundObj("re_1", "succeeded", "rf_1", nil), want: payment.RefundSucceeded},
		{name: "pending", status: 200, body: refundObj("re_1", "pending", "rf_1", obj{"pending_reason": "processing"}), want: payment.RefundPending},
		{name: "requires_action reads as pending", status: 200, body: refundObj("re_1", "requires_action", "rf_1", nil), want: payment.RefundPending},
		{name: "a status newer than this code reads as pending", status: 200, body: refundObj("re_1", "someday", "rf_1", nil), want: payment.RefundPending},
		{name: "more than is left", status: 400, failed: true,
			body: stripeError("invalid_request_error", "amount_too_large", "", "Refund amount ($5.00) is greater than unrefunded amount on charge ($0.00)", obj{"param": "amount"})},
		{name: "charge disputed", status: 400, failed: true,
			body: stripeError("invalid_request_error", "charge_disputed", "", "Charge ch_1 has been charged back; cannot issue a refund.", nil)},
		{name: "key reused", status: 400, failed: true,
			body: stripeError("idempotency_error", "", "", "Keys for idempotent requests can only be used with the same parameters they were first used with.", nil)},
		{name: "unknown PaymentIntent", status: 400, failed: true,
			body: stripeError("invalid_request_error", "resource_missing", "", "No such payment_intent: 'pi_1'", obj{"param": "payment_intent"})},
		{name: "500", status: 500, failed: true, unknown: true, body: stripeError("api_error", "", "", "An unknown error occurred", nil)},
		{name: "429", status: 429, failed: true, unknown: true, body: stripeError("invalid_request_error", "rate_limit", "", "Too many requests", nil)},
		{name: "409 key in flight", status: 409, failed: true, unknown: true, body: stripeError("idempotency_error", "idempotency_key_in_use", "", "in progress", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) { reply(w, tt.status, tt.body) })
			r, err := p.Refund(t.Context(), operatorRefund())
			switch {
			case tt.failed && err == nil:
				t.Fatalf("Refund = %+v, want an error", r)
			case !tt.failed && err != nil:
				t.Fatalf("Refund error = %v", err)
			case errors.Is(err, payment.ErrUnknownOutcome) != tt.unknown:
				t.Fatalf("Refund error = %v, unknown outcome = %v, want %v", err, !tt.unknown, tt.unknown)
			case !tt.failed && (r.Status != tt.want || r.ID != "re_1"):
				t.Errorf("refund = %+v, want re_1 %s", r, tt.want)
			}
			if n := len(f.Requests()); n != 1 {
				t.Errorf("Stripe saw %d requests, want 1: stripe-go must not retry on its own", n)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		_, p := newFake(t, 200*time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		if _, err := p.Refund(t.Context(), operatorRefund()); !errors.Is(err, payment.ErrUnknownOutcome) {
			t.Errorf("Refund error = %v, want ErrUnknownOutcome", err)
		}
	})
	t.Run("a failed refund says why", func(t *testing.T) {
		t.Parallel()
		_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, refundObj("re_1", "failed", "rf_1", obj{"failure_reason": "expired_or_canceled_card"}))
		})
		r, err := p.Refund(t.Context(), operatorRefund())
		if err != nil || r.Status != payment.RefundFailed || r.FailureReason != "expired_or_canceled_card" {
			t.Errorf("Refund = %+v, %v; want failed expired_or_canceled_card", r, err)
		}
	})
}

// TestFindRefund proves a refund is found by Topup's refund id in its
// metadata among its PaymentIntent's refunds, across pages, and that a
// missing one is ok=false while a failed listing is an error.
func TestFindRefund(t *testing.T) {
	t.Parallel()
	pages := map[string]obj{
		"": {"object": "list", "has_more": true, "url": "/v1/refunds", "data": []any{
			refundObj("re_4", "succeeded", "", nil), // made in the Dashboard
			refundObj("re_3", "succeeded", "rf_3", nil),
		}},
		"re_3": {"object": "list", "has_more": false, "url": "/v1/refunds", "data": []any{
			refundObj("re_2", "pending", "rf_2", nil),
		}},
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" || r.URL.Path != "/v1/refunds" {
			t.Errorf("FindRefund asked %s %s, want the list of refunds", r.Method, r.URL.Path)
		}
		reply(w, 200, pages[r.URL.Query().Get("starting_after")])
	}
	t.Run("found on the second page", func(t *testing.T) {
		t.Parallel()
		f, p := newFake(t, 0, handler)
		p.pageSize = 2
		r, ok, err := p.FindRefund(t.Context(), "pi_1", "rf_2")
		if err != nil || !ok || r.ID != "re_2" || r.RefundID != "rf_2" || r.Status != payment.RefundPending || r.ChargeID != "pi_1" {
			t.Fatalf("FindRefund = %+v, %v, %v; want re_2 pending", r, ok, err)
		}
		reqs := f.Requests()
		if len(reqs) != 2 || reqs[0].Form.Get("payment_intent") != "pi_1" || reqs[0].Form.Get("limit") != "2" || reqs[1].Form.Get("starting_after") != "re_3" {
			t.Errorf("requests = %+v, want two pages of pi_1's refunds", reqs)
		}
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		_, p := newFake(t, 0, handler)
		if r, ok, err := p.FindRefund(t.Context(), "pi_1", "rf_9"); ok || err != nil {
			t.Errorf("FindRefund = %+v, %v, %v; want not found", r, ok, err)
		}
	})
	for _, failedPage := range []int{1, 2} {
		t.Run(fmt.Sprintf("listing fails on page %d", failedPage), func(t *testing.T) {
			t.Parallel()
			_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
				if failedPage == 1 || r.URL.Query().Get("starting_after") != "" {
					reply(w, 503, stripeError("api_error", "", "", "unavailable", nil))
					return
				}
				handler(w, r)
			})
			p.pageSize = 2
			if _, ok, err := p.FindRefund(t.Context(), "pi_1", "rf_2"); ok || !errors.Is(err, payment.ErrUnknownOutcome) {
				t.Errorf("FindRefund = %v, %v; want an ErrUnknownOutcome error", ok, err)
			}
		})
	}
	t.Run("an unknown PaymentIntent", func(t *testing.T) {
		t.Parallel()
		_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
			reply(w, 404, stripeError("invalid_request_error", "resource_missing", "", "No such payment_intent: 'pi_x'", obj{"param": "payment_intent"}))
		})
		if _, ok, err := p.FindRefund(t.Context(), "pi_x", "rf_1"); ok || !errors.Is(err, payment.ErrNotFound) {
			t.Errorf("FindRefund = %v, %v; want an ErrNotFound error", ok, err)
		}
	})
}
