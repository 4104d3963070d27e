package topuptest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup/topuptest"
)

// TestFakeKeepsKeysLikeStripe: the engine tests lean on the fake behaving as
// Stripe does with idempotency keys, so that behaviour is checked here.
func TestFakeKeepsKeysLikeStripe(t *testing.T) {
	t.Parallel()
	c := clock.NewManual(topuptest.Epoch)
	f := topuptest.NewFake(c)
	req := payment.ChargeRequest{TopUpID: "tu_1", IdempotencyKey: "topup-tu_1", Customer: "cus_1", PaymentMethod: "pm_1", Amount: 1500, Currency: "usd", OffSession: true}

	f.Script(topuptest.LoseResponse(), topuptest.Decline("card_declined"))
	if _, err := f.Charge(t.Context(), req); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("lost answer: err %v, want ErrUnknownOutcome", err)
	}
	got, err := f.Charge(t.Context(), req)
	if err != nil || got.Status != payment.Succeeded {
		t.Fatalf("replay = %+v, %v; want the first charge, succeeded, whatever the script says next", got, err)
	}
	if n := len(f.Charges()); n != 1 {
		t.Fatalf("%d charges after a replay, want 1", n)
	}
	other := req
	other.Amount = 1600
	if _, err := f.Charge(t.Context(), other); err == nil || len(f.Misuses()) != 1 {
		t.Fatalf("a key reused with another amount: err %v, misuses %v", err, f.Misuses())
	}
	if found, ok, _ := f.FindCharge(t.Context(), "cus_1", "tu_1"); !ok || found.ID != got.ID {
		t.Fatalf("FindCharge = %+v, %v; want %s", found, ok, got.ID)
	}

	f.ForgetKeys(true)
	c.Advance(24*time.Hour - time.Second)
	if _, err := f.Charge(t.Context(), req); err != nil || len(f.Charges()) != 1 {
		t.Fatalf("a key within its 24 hours made a new charge (%v)", err)
	}
	c.Advance(time.Second)
	if _, err := f.Charge(t.Context(), req); err != nil || len(f.Charges()) != 2 {
		t.Fatalf("a key past its 24 hours: %d charges (%v), want a second one", len(f.Charges()), err)
	}

	f.Script(topuptest.FailBeforeCharge(), topuptest.Refuse())
	req.IdempotencyKey, req.TopUpID = "topup-tu_2", "tu_2"
	if _, err := f.Charge(t.Context(), req); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Errorf("fail before charge: %v, want ErrUnknownOutcome", err)
	}
	if _, err := f.Charge(t.Context(), req); err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
		t.Errorf("refused: %v, want a plain error", err)
	}
	if _, ok, _ := f.FindCharge(t.Context(), "", "tu_2"); ok {
		t.Error("a request that failed before charging left a charge")
	}
}
