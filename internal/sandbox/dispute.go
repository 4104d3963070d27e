package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
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
// payment.ErrNotFound (apperr not_found); a charge that did not succeed or
// was refunded in whole wraps ErrNotDisputable (apperr conflict); another
// reason is apperr invalid on "reason"; a failed delivery of the events
// wraps payment.ErrUnknownOutcome (dispute again to send them).
func (p *Provider) Dispute(ctx context.Context, chargeID, reason string) (payment.Dispute, error) {
	op := "sandbox: dispute charge " + chargeID
	if reason == "" {
		reason = DefaultDisputeReason
	}
	if !ValidDisputeReason(reason) {
		return payment.Dispute{}, apiError(fmt.Errorf("%s: %w: unknown reason %q (Stripe's reasons: %s)", op, errBadInput, reason,
			strings.Join(DisputeReasons, ", ")), "reason")
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
		return payment.Dispute{}, apiError(fmt.Errorf("%s: %w", op, err), "")
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
// again; with the other outcome it wraps ErrDisputeClosed (apperr
// conflict). An unknown dispute or a charge without one wraps
// payment.ErrNotFound (apperr not_found); another outcome is apperr
// invalid on "outcome"; a failed delivery of the events wraps
// payment.ErrUnknownOutcome (close again to send them).
func (p *Provider) CloseDispute(ctx context.Context, id, outcome string) (payment.Dispute, error) {
	op := "sandbox: close dispute " + id
	to := payment.DisputeStatus(outcome)
	if to != payment.DisputeWon && to != payment.DisputeLost {
		return payment.Dispute{}, apiError(fmt.Errorf("%s: %w: outcome %q is neither %s nor %s", op, errBadInput, outcome, OutcomeWon, OutcomeLost), "outcome")
	}
	var d Dispute
	var err error
	if strings.HasPrefix(id, "dp_") {
		d, err = p.store.SandboxDispute(ctx, id)
	} else {
		d, err = p.store.SandboxDisputeOfCharge(ctx, id)
	}
	if err != nil {
		return payment.Dispute{}, apiError(fmt.Errorf("%s: %w", op, err), "")
	}
	if d, err = p.store.SandboxCloseDispute(ctx, d.ID, to, p.clock.Now()); err != nil {
		return payment.Dispute{}, fmt.Errorf("%s: %w", op, err)
	}
	if d.Status != to {
		return payment.Dispute{}, apiError(fmt.Errorf("%s: %w: it was %s", op, ErrDisputeClosed, d.Status), "")
	}
	if err := p.emit(context.WithoutCancel(ctx), disputeEvents(d)...); err != nil {
		return payment.Dispute{}, fmt.Errorf("%s: %w", op, err)
	}
	return d.Payment(), nil
}

// errBadInput marks a reason or an outcome the sandbox does not take.
var errBadInput = errors.New("invalid")

// edgeError is an error of Dispute or CloseDispute that also carries the
// *apperr.Error the API answers with, so that errors.Is still finds the
// sandbox's sentinel and apperr.As the code.
type edgeError struct {
	api *apperr.Error
	err error
}

func (e edgeError) Error() string   { return e.err.Error() }
func (e edgeError) Unwrap() []error { return []error{e.api, e.err} }

// apiError gives err the code the API answers with: not_found for an
// unknown charge or dispute, conflict for a charge that cannot be disputed
// or a dispute closed the other way, invalid (naming field) for bad input.
// Other errors (storage) are returned as they are: internal.
func apiError(err error, field string) error {
	e := &apperr.Error{Message: err.Error()}
	switch {
	case errors.Is(err, payment.ErrNotFound):
		e.Code = apperr.NotFound
	case errors.Is(err, ErrNotDisputable), errors.Is(err, ErrDisputeClosed):
		e.Code = apperr.Conflict
	case errors.Is(err, errBadInput):
		e.Code, e.Field = apperr.Invalid, field
	default:
		return err
	}
	return edgeError{api: e, err: err}
}
