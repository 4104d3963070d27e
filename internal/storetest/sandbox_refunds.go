package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
)

// The sandbox provider's refunds and disputes on both databases.

// succeededCharge stores a succeeded sandbox charge of 2500.
func succeededCharge(t *testing.T, f *fixture, id string) sandbox.Charge {
	t.Helper()
	c := sandboxCharge(id, "key-"+id, "tu_"+id, sandboxEpoch)
	c.Status, c.DeclineCode, c.ClientSecret = payment.Succeeded, "", ""
	if _, _, err := f.s.SandboxInsertCharge(t.Context(), c, time.Time{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func sandboxRefund(id, key, chargeID string, amount int64, at time.Time) sandbox.Refund {
	return sandbox.Refund{
		ID: id, IdempotencyKey: key, RefundID: "rf_" + id, ChargeID: chargeID, TopUpID: "tu_" + chargeID,
		Amount: amount, Currency: "usd", Reason: "duplicate", InitialStatus: payment.RefundSucceeded,
		Status: payment.RefundSucceeded, CreatedAt: at,
	}
}

func allow(sandbox.ChargeMoney) error { return nil }

func testSandboxRefundRoundTrip(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	succeededCharge(t, f, "pi_1")
	r := sandboxRefund("re_1", "k1", "pi_1", 500, sandboxEpoch)
	got, inserted, err := s.SandboxInsertRefund(ctx, r, sandboxEpoch.Add(-24*time.Hour), allow)
	if err != nil || !inserted || got != r {
		t.Fatalf("insert = %+v, %v, %v", got, inserted, err)
	}
	if read, err := s.SandboxRefund(ctx, "re_1"); err != nil || read != r {
		t.Fatalf("read = %+v, %v; want %+v", read, err, r)
	}
	if read, ok, err := s.SandboxRefundForKey(ctx, "k1", sandboxEpoch.Add(-time.Hour)); err != nil || !ok || read != r {
		t.Fatalf("by key = %+v, %v, %v", read, ok, err)
	}
	if _, ok, err := s.SandboxRefundForKey(ctx, "k1", sandboxEpoch.Add(time.Hour)); ok || err != nil {
		t.Fatalf("a forgotten key = %v, %v", ok, err)
	}
	// A charge's key and a refund's are apart: a charge key names no refund.
	if _, ok, err := s.SandboxRefundForKey(ctx, "key-pi_1", time.Time{}); ok || err != nil {
		t.Fatalf("a charge's key as a refund's = %v, %v", ok, err)
	}
	second := sandboxRefund("re_2", "k2", "pi_1", 700, sandboxEpoch.Add(time.Minute))
	if _, _, err := s.SandboxInsertRefund(ctx, second, time.Time{}, allow); err != nil {
		t.Fatal(err)
	}
	of, err := s.SandboxRefundsOfCharge(ctx, "pi_1")
	if err != nil || len(of) != 2 || of[0] != second || of[1] != r {
		t.Fatalf("refunds of pi_1 = %+v, %v; want re_2, re_1", of, err)
	}
	page, more, err := s.SandboxRefunds(ctx, 1, "")
	if err != nil || !more || len(page) != 1 || page[0].ID != "re_2" {
		t.Fatalf("first page = %+v, %v, %v", page, more, err)
	}
	if page, more, err = s.SandboxRefunds(ctx, 1, "re_2"); err != nil || more || len(page) != 1 || page[0].ID != "re_1" {
		t.Fatalf("second page = %+v, %v, %v", page, more, err)
	}
	if _, _, err := s.SandboxRefunds(ctx, 1, "re_9"); err == nil {
		t.Fatal("an unknown starting_after was taken")
	}
	if _, err := s.SandboxRefund(ctx, "re_9"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("unknown refund = %v", err)
	}
	orphan := sandboxRefund("re_3", "k3", "pi_9", 1, sandboxEpoch)
	if _, _, err := s.SandboxInsertRefund(ctx, orphan, time.Time{}, allow); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("refund of an unknown charge = %v", err)
	}
}

// testSandboxRefundRace: check sees the charge's refunds and dispute, is
// run under the charge's lock, and a refusal writes nothing, not even the
// key.
func testSandboxRefundRace(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	succeededCharge(t, f, "pi_1")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := sandboxRefund(fmt.Sprint("re_", i), fmt.Sprint("k", i), "pi_1", 1000, sandboxEpoch)
			_, _, errs[i] = s.SandboxInsertRefund(t.Context(), r, time.Time{}, func(m sandbox.ChargeMoney) error { return sandbox.CheckRefund(m, r) })
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, sandbox.ErrNotRefundable):
			if _, found, _ := s.SandboxRefundForKey(ctx, fmt.Sprint("k", i), time.Time{}); found {
				t.Errorf("refused refund %d left its key", i)
			}
		default:
			t.Fatalf("refund %d: %v", i, err)
		}
	}
	of, _ := s.SandboxRefundsOfCharge(ctx, "pi_1")
	if ok != 2 || len(of) != 2 {
		t.Fatalf("%d refunds of 1000 inserted on a charge of 2500 (%d stored), want 2", ok, len(of))
	}
	if _, _, err := s.SandboxInsertDispute(ctx, "pi_1", func(m sandbox.ChargeMoney) (sandbox.Dispute, error) {
		return sandboxDispute("dp_1", m), nil
	}); err != nil {
		t.Fatal(err)
	}
	var seen sandbox.ChargeMoney
	r := sandboxRefund("re_x", "kx", "pi_1", 1, sandboxEpoch)
	if _, _, err := s.SandboxInsertRefund(ctx, r, time.Time{}, func(m sandbox.ChargeMoney) error { seen = m; return nil }); err != nil {
		t.Fatal(err)
	}
	if seen.Charge.ID != "pi_1" || len(seen.Refunds) != 2 || seen.Dispute == nil || seen.Dispute.ID != "dp_1" || seen.Refunded() != 2000 {
		t.Fatalf("check saw %+v, want pi_1 with its 2 refunds and dp_1", seen)
	}
}

func testSandboxRefundSameKeyRace(t *testing.T, f *fixture) {
	s := f.s
	succeededCharge(t, f, "pi_1")
	const n = 8
	got := make([]sandbox.Refund, n)
	inserted := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := sandboxRefund(fmt.Sprint("re_", i), "k1", "pi_1", 100, sandboxEpoch)
			got[i], inserted[i], errs[i] = s.SandboxInsertRefund(t.Context(), r, sandboxEpoch.Add(-time.Hour), allow)
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
			t.Fatalf("racers got refunds %s and %s", got[0].ID, got[i].ID)
		}
	}
	if of, _ := s.SandboxRefundsOfCharge(t.Context(), "pi_1"); winners != 1 || len(of) != 1 {
		t.Fatalf("%d inserted, %d stored, want 1 and 1", winners, len(of))
	}
}

func testSandboxUpdateRefund(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	succeededCharge(t, f, "pi_1")
	r := sandboxRefund("re_1", "k1", "pi_1", 500, sandboxEpoch)
	r.InitialStatus, r.Status = payment.RefundPending, payment.RefundPending
	if _, _, err := s.SandboxInsertRefund(ctx, r, time.Time{}, allow); err != nil {
		t.Fatal(err)
	}
	got, err := s.SandboxUpdateRefund(ctx, "re_1", payment.RefundPending, payment.RefundFailed, "declined")
	if err != nil || got.Status != payment.RefundFailed || got.FailureReason != "declined" || got.InitialStatus != payment.RefundPending {
		t.Fatalf("update = %+v, %v", got, err)
	}
	if got, err = s.SandboxUpdateRefund(ctx, "re_1", payment.RefundPending, payment.RefundSucceeded, ""); err != nil || got.Status != payment.RefundFailed {
		t.Fatalf("update from a status the refund left = %+v, %v; want it unchanged", got, err)
	}
	if _, err := s.SandboxUpdateRefund(ctx, "re_9", payment.RefundPending, payment.RefundFailed, ""); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("update unknown = %v", err)
	}
}

func sandboxDispute(id string, m sandbox.ChargeMoney) sandbox.Dispute {
	return sandbox.Dispute{
		ID: id, ChargeID: m.Charge.ID, TopUpID: m.Charge.TopUpID, Amount: m.Charge.Amount - m.Refunded(), Currency: m.Charge.Currency,
		Reason: "fraudulent", Status: payment.DisputeNeedsResponse, FundsWithdrawn: true, CreatedAt: sandboxEpoch,
	}
}

func testSandboxDisputes(t *testing.T, f *fixture) {
	s := f.s
	ctx := t.Context()
	succeededCharge(t, f, "pi_1")
	d, inserted, err := s.SandboxInsertDispute(ctx, "pi_1", func(m sandbox.ChargeMoney) (sandbox.Dispute, error) {
		if m.Charge.ID != "pi_1" || m.Dispute != nil {
			t.Errorf("decide saw %+v", m)
		}
		return sandboxDispute("dp_1", m), nil
	})
	want := sandbox.Dispute{ID: "dp_1", ChargeID: "pi_1", TopUpID: "tu_pi_1", Amount: 2500, Currency: "usd", Reason: "fraudulent",
		Status: payment.DisputeNeedsResponse, FundsWithdrawn: true, CreatedAt: sandboxEpoch}
	if err != nil || !inserted || d != want {
		t.Fatalf("insert = %+v, %v, %v; want %+v", d, inserted, err, want)
	}
	again, inserted, err := s.SandboxInsertDispute(ctx, "pi_1", func(sandbox.ChargeMoney) (sandbox.Dispute, error) {
		t.Error("decide called for a charge that has a dispute")
		return sandbox.Dispute{}, errors.New("no")
	})
	if err != nil || inserted || again != want {
		t.Fatalf("second insert = %+v, %v, %v; want the first", again, inserted, err)
	}
	for _, read := range []func() (sandbox.Dispute, error){
		func() (sandbox.Dispute, error) { return s.SandboxDispute(ctx, "dp_1") },
		func() (sandbox.Dispute, error) { return s.SandboxDisputeOfCharge(ctx, "pi_1") },
	} {
		if got, err := read(); err != nil || got != want {
			t.Fatalf("read = %+v, %v", got, err)
		}
	}
	closedAt := sandboxEpoch.Add(time.Hour)
	won, err := s.SandboxCloseDispute(ctx, "dp_1", payment.DisputeWon, closedAt)
	if err != nil || won.Status != payment.DisputeWon || !won.FundsReinstated || !won.ClosedAt.Equal(closedAt) {
		t.Fatalf("close = %+v, %v", won, err)
	}
	if got, err := s.SandboxCloseDispute(ctx, "dp_1", payment.DisputeLost, closedAt.Add(time.Hour)); err != nil || got != won {
		t.Fatalf("closing a closed dispute = %+v, %v; want it unchanged", got, err)
	}
	succeededCharge(t, f, "pi_2")
	refused := errors.New("refused")
	if _, _, err := s.SandboxInsertDispute(ctx, "pi_2", func(sandbox.ChargeMoney) (sandbox.Dispute, error) { return sandbox.Dispute{}, refused }); !errors.Is(err, refused) {
		t.Fatalf("decide's refusal = %v", err)
	}
	for _, err := range []error{
		func() error { _, err := s.SandboxDisputeOfCharge(ctx, "pi_2"); return err }(),
		func() error { _, err := s.SandboxDispute(ctx, "dp_9"); return err }(),
		func() error { _, _, err := s.SandboxInsertDispute(ctx, "pi_9", nil); return err }(),
	} {
		if !errors.Is(err, payment.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	}
}

func testSandboxDisputeRace(t *testing.T, f *fixture) {
	s := f.s
	succeededCharge(t, f, "pi_1")
	const n = 6
	got := make([]sandbox.Dispute, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], _, errs[i] = s.SandboxInsertDispute(t.Context(), "pi_1", func(m sandbox.ChargeMoney) (sandbox.Dispute, error) {
				return sandboxDispute(fmt.Sprint("dp_", i), m), nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i].ID != got[0].ID {
			t.Fatalf("racer %d got %+v, %v; racer 0 got %s", i, got[i], errs[i], got[0].ID)
		}
	}
}
