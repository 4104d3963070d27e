package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
)

// The sandbox provider's memory (charges, idempotency keys, saved cards,
// Checkout sessions) on both databases.

// sandboxEpoch is Epoch as the databases keep it, in microseconds, so that
// what is read back equals what was written.
var sandboxEpoch = Epoch.Truncate(time.Microsecond)

func sandboxCharge(id, key, topUp string, at time.Time) sandbox.Charge {
	return sandbox.Charge{
		ID: id, IdempotencyKey: key, TopUpID: topUp, Customer: "cus_1", PaymentMethod: "pm_1",
		Amount: 2500, Currency: "usd", Status: payment.RequiresAction, DeclineCode: "authentication_required",
		ClientSecret: id + "_secret_x", OffSession: true, CreatedAt: at,
	}
}

func testSandboxChargeRoundTrip(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	c := sandboxCharge("pi_1", "k1", "tu_1", sandboxEpoch)
	got, inserted, err := s.SandboxInsertCharge(ctx, c, sandboxEpoch.Add(-24*time.Hour))
	if err != nil || !inserted || got != c {
		t.Fatalf("insert = %+v, %v, %v", got, inserted, err)
	}
	if read, err := s.SandboxCharge(ctx, "pi_1"); err != nil || read != c {
		t.Fatalf("read = %+v, %v; want %+v", read, err, c)
	}
	if read, ok, err := s.SandboxChargeForKey(ctx, "k1", sandboxEpoch.Add(-time.Hour)); err != nil || !ok || read != c {
		t.Fatalf("by key = %+v, %v, %v", read, ok, err)
	}
	if _, ok, err := s.SandboxChargeForKey(ctx, "k2", time.Time{}); ok || err != nil {
		t.Fatalf("unknown key = %v, %v", ok, err)
	}
	if _, err := s.SandboxCharge(ctx, "pi_2"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("unknown charge = %v", err)
	}
}

func testSandboxSameKeyRace(t *testing.T, f *fixture) {
	s := f.s
	const n = 8
	var wg sync.WaitGroup
	got := make([]sandbox.Charge, n)
	inserted := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			c := sandboxCharge("pi_"+string(rune('a'+i)), "k1", "tu_1", sandboxEpoch)
			got[i], inserted[i], errs[i] = s.SandboxInsertCharge(t.Context(), c, sandboxEpoch.Add(-24*time.Hour))
		})
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("insert %d: %v", i, errs[i])
		}
		if inserted[i] {
			winners++
		}
		if got[i].ID != got[0].ID {
			t.Fatalf("racers got charges %s and %s", got[0].ID, got[i].ID)
		}
	}
	all, _, err := s.SandboxCharges(t.Context(), 100, "")
	if winners != 1 || err != nil || len(all) != 1 {
		t.Fatalf("%d inserted, %d logged (%v), want 1 and 1", winners, len(all), err)
	}
}

func testSandboxForgottenKey(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	first := sandboxCharge("pi_1", "k1", "tu_1", sandboxEpoch)
	if _, _, err := s.SandboxInsertCharge(ctx, first, sandboxEpoch.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	later := sandboxEpoch.Add(25 * time.Hour)
	if _, ok, _ := s.SandboxChargeForKey(ctx, "k1", later.Add(-24*time.Hour)); ok {
		t.Fatal("a key older than the window was found")
	}
	second := sandboxCharge("pi_2", "k1", "tu_1", later)
	got, inserted, err := s.SandboxInsertCharge(ctx, second, later.Add(-24*time.Hour))
	if err != nil || !inserted || got.ID != "pi_2" {
		t.Fatalf("insert under a forgotten key = %+v, %v, %v", got, inserted, err)
	}
	if c, ok, _ := s.SandboxChargeForKey(ctx, "k1", later.Add(-24*time.Hour)); !ok || c.ID != "pi_2" {
		t.Fatalf("key now names %+v, %v; want pi_2", c, ok)
	}
	all, _, _ := s.SandboxCharges(ctx, 100, "")
	if len(all) != 2 || all[0].ID != "pi_2" {
		t.Fatalf("log = %+v, want both charges, newest first", all)
	}
}

func testSandboxUpdateCharge(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	if _, _, err := s.SandboxInsertCharge(ctx, sandboxCharge("pi_1", "k1", "tu_1", sandboxEpoch), time.Time{}); err != nil {
		t.Fatal(err)
	}
	c, err := s.SandboxUpdateCharge(ctx, "pi_1", payment.RequiresAction, payment.Succeeded, "")
	if err != nil || c.Status != payment.Succeeded || c.DeclineCode != "" {
		t.Fatalf("update = %+v, %v", c, err)
	}
	c, err = s.SandboxUpdateCharge(ctx, "pi_1", payment.RequiresAction, payment.Declined, "x")
	if err != nil || c.Status != payment.Succeeded {
		t.Fatalf("update from a status the charge left = %+v, %v; want it unchanged", c, err)
	}
	if _, err := s.SandboxUpdateCharge(ctx, "pi_9", payment.RequiresAction, payment.Succeeded, ""); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("update unknown = %v", err)
	}
}

func testSandboxChargesForTopUp(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	for i, c := range []sandbox.Charge{
		sandboxCharge("pi_1", "k1", "tu_1", sandboxEpoch),
		sandboxCharge("pi_2", "k2", "tu_1", sandboxEpoch.Add(time.Hour)),
		sandboxCharge("pi_3", "k3", "tu_2", sandboxEpoch.Add(2*time.Hour)),
	} {
		if i == 1 {
			c.Customer = "cus_2"
		}
		if _, _, err := s.SandboxInsertCharge(ctx, c, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.SandboxChargesForTopUp(ctx, "", "tu_1")
	if err != nil || len(all) != 2 || all[0].ID != "pi_2" || all[1].ID != "pi_1" {
		t.Fatalf("any customer = %+v, %v", all, err)
	}
	mine, err := s.SandboxChargesForTopUp(ctx, "cus_1", "tu_1")
	if err != nil || len(mine) != 1 || mine[0].ID != "pi_1" {
		t.Fatalf("cus_1 = %+v, %v", mine, err)
	}
}

func testSandboxCards(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	c := sandbox.SavedCard{ID: "pm_1", Token: "pm_card_visa", Customer: "cus_1", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2029, CreatedAt: sandboxEpoch}
	if err := s.SandboxInsertCard(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SandboxCard(ctx, "pm_1"); err != nil || got != c {
		t.Fatalf("card = %+v, %v", got, err)
	}
	for range 2 {
		if err := s.SandboxDetachCard(ctx, "pm_1"); err != nil {
			t.Fatalf("detach: %v", err)
		}
	}
	if got, _ := s.SandboxCard(ctx, "pm_1"); got.Customer != "" {
		t.Fatalf("detached card still on %q", got.Customer)
	}
	if err := s.SandboxDetachCard(ctx, "pm_2"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("detach unknown = %v", err)
	}
	if _, err := s.SandboxCard(ctx, "pm_2"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("unknown card = %v", err)
	}
}

func testSandboxSessions(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	ss := sandbox.Session{ID: "cs_1", Customer: "cus_1", AccountID: "acct_1", SuccessURL: "https://a/ok", CancelURL: "https://a/no", CreatedAt: sandboxEpoch}
	if err := s.SandboxInsertSession(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SandboxSession(ctx, "cs_1"); err != nil || got != ss {
		t.Fatalf("session = %+v, %v", got, err)
	}
	if card, err := s.SandboxCompleteSession(ctx, "cs_1", "pm_1"); err != nil || card != "pm_1" {
		t.Fatalf("complete = %q, %v", card, err)
	}
	if card, err := s.SandboxCompleteSession(ctx, "cs_1", "pm_2"); err != nil || card != "pm_1" {
		t.Fatalf("second complete = %q, %v; want the first card", card, err)
	}
	if _, err := s.SandboxCompleteSession(ctx, "cs_9", "pm_1"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("complete unknown = %v", err)
	}
	if _, err := s.SandboxSession(ctx, "cs_9"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("unknown session = %v", err)
	}
}
