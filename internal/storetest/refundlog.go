package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
)

// testSandboxRefundLog: verify proves that the sandbox's refund log equals
// the ledger's refunds. A refund the ledger still holds pending is in
// flight; a provider refund the ledger has as succeeded must have
// succeeded at the sandbox, of the same amount, and one that failed there
// must have failed in the ledger; a succeeded refund of a top-up the
// sandbox charged must be in its log; a succeeded refund in the log must
// be in the ledger.
func testSandboxRefundLog(t *testing.T, f *fixture) {
	a := f.account("log@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.settled(a.ID, "25.00", "k1")
	c := sandboxCharge("ch_k1", "topup-"+tu.ID, tu.ID, sandboxEpoch) // settled's charge
	c.Status, c.DeclineCode, c.ClientSecret = payment.Succeeded, "", ""
	if _, _, err := f.s.SandboxInsertCharge(ctx(t), c, time.Time{}); err != nil {
		t.Fatal(err)
	}
	r, _, err := f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "10.00", "r1"))
	if err != nil {
		t.Fatal(err)
	}
	logged := sandboxRefund("re_1", "refund-"+r.ID, c.ID, 1000, sandboxEpoch)
	logged.RefundID, logged.TopUpID = r.ID, tu.ID
	if _, _, err := f.s.SandboxInsertRefund(ctx(t), logged, time.Time{}, allow); err != nil {
		t.Fatal(err)
	}
	f.verifyClean() // the answer is not in yet: in flight
	if _, _, err := f.s.ApplyRefund(ctx(t), refund.Word{RefundID: r.ID, ProviderID: "re_1", Status: refund.Succeeded}); err != nil {
		t.Fatal(err)
	}
	f.verifyClean()

	// The card was closed: the sandbox's refund failed, the ledger has not
	// heard yet.
	if _, err := f.s.SandboxUpdateRefund(ctx(t), "re_1", payment.RefundSucceeded, payment.RefundFailed, "expired_or_canceled_card"); err != nil {
		t.Fatal(err)
	}
	f.wantViolation("sandbox refund re_1: is failed, but refund " + r.ID + " is succeeded")
	if _, _, err := f.s.ApplyRefund(ctx(t), refund.Word{ProviderID: "re_1", Status: refund.Failed}); err != nil {
		t.Fatal(err)
	}
	f.verifyClean()

	// A refund the ledger took that the sandbox never made.
	ghost, _, err := f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "5.00", "r2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.ApplyRefund(ctx(t), refund.Word{RefundID: ghost.ID, ProviderID: "re_ghost", Status: refund.Succeeded}); err != nil {
		t.Fatal(err)
	}
	f.wantViolation("refund " + ghost.ID + " succeeded, but the sandbox that charged its top-up made no such refund")

	// And one the sandbox made that the ledger never heard of, of another
	// amount than the ledger's.
	orphan := sandboxRefund("re_orphan", "other-key", c.ID, 300, sandboxEpoch)
	orphan.RefundID, orphan.TopUpID = "", tu.ID
	if _, _, err := f.s.SandboxInsertRefund(ctx(t), orphan, time.Time{}, allow); err != nil {
		t.Fatal(err)
	}
	f.wantViolation("sandbox refund re_orphan: succeeded, but no refund of the ledger has its id")
	ghostLog := sandboxRefund("re_ghost", "ghost-key", c.ID, 499, sandboxEpoch)
	ghostLog.RefundID, ghostLog.TopUpID = ghost.ID, tu.ID
	if _, _, err := f.s.SandboxInsertRefund(ctx(t), ghostLog, time.Time{}, allow); err != nil {
		t.Fatal(err)
	}
	f.wantViolation("sandbox refund re_ghost: its amount differs from refund " + ghost.ID + "'s")
}

// wantViolation fails the test unless verify reports problem.
func (f *fixture) wantViolation(problem string) {
	f.t.Helper()
	vs, err := f.s.Verify(ctx(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, v := range vs {
		if strings.Contains(v.Problem, problem) {
			return
		}
	}
	f.t.Fatalf("verify found %+v; want %q", vs, problem)
}

// testReceiptRefunds: a receipt lists the top-up's succeeded refunds,
// oldest first, with what each gave back and when; a pending refund and
// one that failed are not on it.
func testReceiptRefunds(t *testing.T, f *fixture) {
	a := f.account("receipt-refunds@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.settled(a.ID, "25.00", "k1")
	if rec, err := f.s.Receipt(ctx(t), a.ID, tu.ID); err != nil || rec.Refunds != nil {
		t.Fatalf("receipt before refunds: %+v %v", rec.Refunds, err)
	}
	var made []refund.Refund
	for i, amount := range []string{"10.00", "2.50", "1.00", "3.00"} {
		r, _, err := f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, amount, "r"+amount))
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, r)
		status := map[int]refund.Status{0: refund.Succeeded, 1: refund.Succeeded, 2: refund.Failed}[i] // the last stays pending
		if status != "" {
			if _, _, err := f.s.ApplyRefund(ctx(t), refund.Word{RefundID: r.ID, ProviderID: "re_" + amount, Status: status}); err != nil {
				t.Fatal(err)
			}
		}
		f.advance(time.Minute)
	}
	rec, err := f.s.Receipt(ctx(t), a.ID, tu.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Refunds) != 2 || rec.Refunds[0].ID != made[0].ID || rec.Refunds[0].Amount != amt(t, "10.00") ||
		rec.Refunds[1].ID != made[1].ID || rec.Refunds[1].Amount != amt(t, "2.50") || !rec.Refunds[0].At.Before(rec.Refunds[1].At) {
		t.Fatalf("receipt refunds %+v; want %s 10.00 then %s 2.50", rec.Refunds, made[0].ID, made[1].ID)
	}
	if got, err := f.s.TopUp(ctx(t), a.ID, tu.ID); err != nil || got.AmountRefunded != amt(t, "12.50") {
		t.Errorf("amount_refunded %v (%v), want 12.50", got.AmountRefunded, err)
	}
	f.verifyClean()
}
