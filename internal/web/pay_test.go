package web_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/web"
)

// stripeStore holds one top-up waiting for 3-D Secure, as billing finds it
// with --payments stripe (no sandbox; no charge to look up yet).
type stripeStore struct {
	billing.Store
	t topup.TopUp
}

func (s stripeStore) TopUpByID(_ context.Context, id string) (topup.TopUp, error) {
	if id != s.t.ID {
		return topup.TopUp{}, apperr.NotFoundf("no top-up %s", id)
	}
	return s.t, nil
}

type noCards struct{ web.Payments }

func (noCards) Cards(context.Context, string) ([]topup.Card, error) { return nil, nil }

// TestPayPageWithStripe: with Stripe the 3-D Secure page hands Stripe.js
// the PaymentIntent's client secret from data attributes, its CSP lets
// Stripe.js and its challenge frame in and nothing inline, and a wrong
// token shows nothing.
func TestPayPageWithStripe(t *testing.T) {
	t.Parallel()
	usd, _ := money.LookupCurrency("usd")
	amount := money.Amount(12_000_000)
	tu := topup.TopUp{ID: "tu_1", AccountID: "acct_1", Status: topup.RequiresAction, Amount: &amount, Currency: usd,
		ClientSecret: "pi_1_secret_abc", ActionToken: "tok", PaymentMethod: "pm_1"}
	svc := billing.New(billing.Config{StripePublishableKey: "pk_test_123"}, billing.Deps{Store: stripeStore{t: tu}})
	c := web.New(web.Config{PublicURL: "https://billing.example.com"}, web.Deps{Billing: svc, Payments: noCards{}})
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "/console/pay/tu_1?token=tok", nil))
	body, policy := rec.Body.String(), rec.Header().Get("Content-Security-Policy")
	if rec.Code != 200 || !strings.Contains(body, `data-secret="pi_1_secret_abc"`) || !strings.Contains(body, `data-key="pk_test_123"`) || !strings.Contains(body, `data-pm="pm_1"`) || !strings.Contains(body, "$12.00") {
		t.Errorf("the page answered %d without the Stripe.js data:\n%s", rec.Code, body)
	}
	if !strings.Contains(policy, "script-src 'self' https://js.stripe.com;") || !strings.Contains(policy, "frame-src https://js.stripe.com") || strings.Contains(policy, "unsafe-inline") {
		t.Errorf("CSP = %q; want Stripe.js and its frames allowed, nothing inline", policy)
	}
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "/console/pay/tu_1?token=wrong", nil))
	if rec.Code != 404 || strings.Contains(rec.Body.String(), "pi_1_secret") {
		t.Errorf("a wrong token answered %d; want 404 without the secret", rec.Code)
	}
}
