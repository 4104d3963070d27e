package stripe

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// fakeStripe is an httptest server that answers like Stripe with bodies the
// test chooses, and records what it was sent.
type fakeStripe struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

// recorded is one request as the fake received it.
type recorded struct {
	Method, Path   string
	IdempotencyKey string
	Form           url.Values // body for POST, query for GET
}

// newFake starts a fake Stripe answering with handler and returns it with a
// Provider pointed at it. timeout is the HTTP client's (0: 5 s).
func newFake(t *testing.T, timeout time.Duration, handler http.HandlerFunc) (*fakeStripe, *Provider) {
	t.Helper()
	f := &fakeStripe{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("fake stripe: parse form: %v", err)
		}
		form := r.PostForm
		if r.Method == http.MethodGet {
			form = r.URL.Query()
		}
		f.mu.Lock()
		f.requests = append(f.requests, recorded{
			Method: r.Method, Path: r.URL.Path,
			IdempotencyKey: r.Header.Get("Idempotency-Key"), Form: form,
		})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_fake")
		handler(w, r)
	}))
	t.Cleanup(f.Close)
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	p, err := New(Config{
		SecretKey:     "sk_test_fake",
		WebhookSecret: testWebhookSecret,
		APIBase:       f.URL,
		HTTPClient:    &http.Client{Timeout: timeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}

// Requests returns what the fake was sent so far.
func (f *fakeStripe) Requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// reply writes v as JSON with status.
func reply(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// obj is a JSON object in a test body.
type obj = map[string]any

// intent is a Stripe-shaped PaymentIntent.
func intent(id, status, topUpID string, extra obj) obj {
	pi := obj{
		"id": id, "object": "payment_intent", "amount": 1250, "currency": "usd",
		"status": status, "client_secret": id + "_secret_abc", "created": 1767225600,
		"customer": "cus_1", "metadata": obj{"top_up_id": topUpID},
		"last_payment_error": nil,
	}
	for k, v := range extra {
		pi[k] = v
	}
	return pi
}

// stripeError is a Stripe-shaped error body.
func stripeError(typ, code, declineCode, msg string, extra obj) obj {
	e := obj{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	if declineCode != "" {
		e["decline_code"] = declineCode
	}
	for k, v := range extra {
		e[k] = v
	}
	return obj{"error": e}
}

// cardPM is a Stripe-shaped card payment method.
func cardPM(id, brand, last4 string, customer any) obj {
	return obj{
		"id": id, "object": "payment_method", "type": "card", "customer": customer,
		"card": obj{"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034},
	}
}
