package topup_test

import (
	"slices"
	"testing"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// TestDisputeKinds: one provider event stands for its own kind after what
// the dispute it carries says already happened, in the order it happened,
// so that a close heard first also withdraws and gives back.
func TestDisputeKinds(t *testing.T) {
	t.Parallel()
	const (
		opened, drawn, back, closed = refund.Opened, refund.FundsWithdrawn, refund.FundsReinstated, refund.Closed
	)
	for _, tc := range []struct {
		typ             string
		withdrawn, back bool
		want            []refund.DisputeEventKind
	}{
		{"charge.dispute.created", false, false, []refund.DisputeEventKind{opened}},
		{"charge.dispute.created", true, false, []refund.DisputeEventKind{opened, drawn}},
		{"charge.dispute.funds_withdrawn", true, false, []refund.DisputeEventKind{drawn}},
		{"charge.dispute.funds_reinstated", true, true, []refund.DisputeEventKind{drawn, back}},
		{"charge.dispute.closed", false, false, []refund.DisputeEventKind{closed}},
		{"charge.dispute.closed", true, false, []refund.DisputeEventKind{drawn, closed}},
		{"charge.dispute.closed", true, true, []refund.DisputeEventKind{drawn, back, closed}},
		{"charge.dispute.updated", true, true, nil},
	} {
		ev := payment.Event{Type: tc.typ, Dispute: &payment.Dispute{FundsWithdrawn: tc.withdrawn, FundsReinstated: tc.back}}
		if got := topup.DisputeKinds(ev); !slices.Equal(got, tc.want) {
			t.Errorf("%s (withdrawn %t, reinstated %t) = %v, want %v", tc.typ, tc.withdrawn, tc.back, got, tc.want)
		}
	}
}

// TestRefundWord: the provider's refund statuses in the refund rules'
// terms; a canceled refund failed, and one Topup cannot read changes
// nothing (pending).
func TestRefundWord(t *testing.T) {
	t.Parallel()
	for status, want := range map[payment.RefundStatus]refund.Status{
		payment.RefundPending: refund.Pending, payment.RefundSucceeded: refund.Succeeded, payment.RefundFailed: refund.Failed,
		payment.RefundCanceled: refund.Failed, "requires_action": refund.Pending,
	} {
		w := topup.RefundWord(payment.Refund{ID: "re_1", RefundID: "rf_1", ChargeID: "pi_1", Amount: 500, Status: status, FailureReason: "declined"})
		if w.Status != want || w.RefundID != "rf_1" || w.ProviderID != "re_1" || w.ChargeID != "pi_1" || w.AmountMinor != 500 || w.FailureReason != "declined" {
			t.Errorf("%s: %+v, want status %s", status, w, want)
		}
	}
}
