package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/topup/topup/internal/payment"
)

// Dispute is the sandbox's record of a cardholder's dispute of a charge:
// the stand-in for a card network's chargeback (POST
// /v1/sandbox/charges/{charge_id}/dispute). A charge has at most one.
type Dispute struct {
	ID       string // dp_…
	ChargeID string // pi_…
	TopUpID  string
	// Amount is what the cardholder disputes: the charge's amount less
	// what was refunded before.
	Amount   int64
	Currency string
	Reason   string
	Status   payment.DisputeStatus
	// FundsWithdrawn is always set: the sandbox withdraws a dispute's
	// funds as soon as it is opened, as card networks do for chargebacks.
	FundsWithdrawn  bool
	FundsReinstated bool // won
	CreatedAt       time.Time
	ClosedAt        time.Time // zero while open
}

// Payment returns the dispute as the payment interface tells it.
func (d Dispute) Payment() payment.Dispute {
	return payment.Dispute{
		ID: d.ID, ChargeID: d.ChargeID, TopUpID: d.TopUpID, Amount: d.Amount, Currency: d.Currency,
		Status: d.Status, Reason: d.Reason, FundsWithdrawn: d.FundsWithdrawn, FundsReinstated: d.FundsReinstated,
		Created: d.CreatedAt,
	}
}

// DisputeReasons are Stripe's dispute reasons, which the sandbox takes.
var DisputeReasons = []string{
	"bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated", "debit_not_authorized",
	"duplicate", "fraudulent", "general", "incorrect_account_details", "insufficient_funds", "noncompliant",
	"product_not_received", "product_unacceptable", "subscription_canceled", "unrecognized",
}

// DefaultDisputeReason is the reason of a dispute opened without one, as
// Stripe's test card pm_card_createDispute does.
const DefaultDisputeReason = "fraudulent"

// Dispute outcomes CloseDispute takes.
const (
	OutcomeWon  = "won"
	OutcomeLost = "lost"
)

// ValidDisputeReason reports whether reason is one of DisputeReasons.
func ValidDisputeReason(reason string) bool {
	for _, r := range DisputeReasons {
		if r == reason {
			return true
		}
	}
	return false
}

// CheckDispute is the rule of a new dispute of a charge: the charge
// succeeded and something of it was not refunded. It returns the amount
// disputed: what was not refunded. Its errors wrap ErrNotDisputable.
func CheckDispute(m ChargeMoney) (int64, error) {
	c := m.Charge
	if c.Status != payment.Succeeded {
		return 0, fmt.Errorf("%w: charge %s is %s, not succeeded", ErrNotDisputable, c.ID, c.Status)
	}
	left := c.Amount - m.Refunded()
	if left <= 0 {
		return 0, fmt.Errorf("%w: charge %s was refunded in whole", ErrNotDisputable, c.ID)
	}
	return left, nil
}

// Dispute opens the dispute of a succeeded charge with reason (one of
// DisputeReasons; "" is DefaultDisputeReason) and withdraws its funds at
// once: it sends charge.dispute.created, then
// charge.dispute.funds_withdrawn, to Config.Events. A charge has one
// dispute: disputing it again returns that dispute as it stands and sends
// its events again (the same ids). An unknown charge wraps
// payment.ErrNotFound; a charge that did not succeed or was refunded in
// whole wraps ErrNotDisputable; a failed delivery of the events wraps
// payment.ErrUnknownOutcome (dispute again to send them).
func (p *Provider) Dispute(ctx context.Context, chargeID, reason string) (payment.Dispute, error) {
	op := "sandbox: dispute charge " + chargeID
	if reason == "" {
		reason = DefaultDisputeReason
	}
	if !ValidDisputeReason(reason) {
		return payment.Dispute{}, fmt.Errorf("%s: unknown reason %q", op, reason)
	}
	d := Dispute{
		ID: p.ids.New("dp"), ChargeID: chargeID, Reason: reason, Status: payment.DisputeNeedsResponse,
		FundsWithdrawn: true, CreatedAt: p.clock.Now(),
	}
	decide := func(m ChargeMoney) (Dispute, error) {
		amount, err := CheckDispute(m)
		if err != nil {
			return Dispute{}, err
		}
		d.Amount, d.Currency, d.TopUpID = amount, m.Charge.Currency, m.Charge.TopUpID
		return d, nil
	}
	got, _, err := p.store.SandboxInsertDispute(ctx, chargeID, decide)
	if err != nil {
		return payment.Dispute{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := p.emit(context.WithoutCancel(ctx), disputeEvents(got)...); err != nil {
		return payment.Dispute{}, fmt.Errorf("%s: %w", op, err)
	}
	return got.Payment(), nil
}

// CloseDispute closes the dispute id (dp_…), or the dispute of the charge
// id (pi_…), with outcome OutcomeWon, which reinstates the withdrawn funds,
// or OutcomeLost. It sends charge.dispute.funds_reinstated (won) and
// charge.dispute.closed, after the dispute's earlier events again. Closing
// a closed dispute with the same outcome returns it and sends its events
// again; with the other outcome it wraps ErrDisputeClosed. An unknown
// dispute or a charge without one wraps payment.ErrNotFound; a failed
// delivery of the events wraps payment.ErrUnknownOutcome (close again to
// send them).
func (p *Provider) CloseDispute(ctx context.Context, id, outcome string) (payment.Dispute, error) {
	op := "sandbox: close dispute " + id
	to := payment.DisputeStatus(outcome)
	if to != payment.DisputeWon && to != payment.DisputeLost {
		return payment.Dispute{}, fmt.Errorf("%s: outcome %q is neither %s nor %s", op, outcome, OutcomeWon, OutcomeLost)
	}
	var d Dispute
	var err error
	if strings.HasPrefix(id, "dp_") {
		d, err = p.store.SandboxDispute(ctx, id)
	} else {
		d, err = p.store.SandboxDisputeOfCharge(ctx, id)
	}
	if err != nil {
		return payment.Dispute{}, fmt.Errorf("%s: %w", op, err)
	}
	if d, err = p.store.SandboxCloseDispute(ctx, d.ID, to, p.clock.Now()); err != nil {
		return payment.Dispute{}, fmt.Errorf("%s: %w", op, err)
	}
	if d.Status != to {
		return payment.Dispute{}, fmt.Errorf("%s: %w: it was %s", op, ErrDisputeClosed, d.Status)
	}
	if err := p.emit(context.WithoutCancel(ctx), disputeEvents(d)...); err != nil {
		return payment.Dispute{}, fmt.Errorf("%s: %w", op, err)
	}
	return d.Payment(), nil
}
