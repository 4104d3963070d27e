package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/topup/topup/internal/payment"
)

// Refund is the sandbox's record of one refund (a Stripe Refund), as its
// refund log keeps it.
type Refund struct {
	ID             string // re_…
	IdempotencyKey string
	RefundID       string // Topup's, from the request's metadata
	ChargeID       string // pi_…
	TopUpID        string
	Amount         int64
	Currency       string
	Reason         string
	// InitialStatus is the status the refund was created with: its
	// refund.created event says it, and a later Status different from it
	// was told by refund.updated.
	InitialStatus payment.RefundStatus
	Status        payment.RefundStatus
	FailureReason string
	CreatedAt     time.Time
}

// Payment returns the refund as the payment interface tells it.
func (r Refund) Payment() payment.Refund {
	return payment.Refund{
		ID: r.ID, RefundID: r.RefundID, ChargeID: r.ChargeID, TopUpID: r.TopUpID,
		Amount: r.Amount, Currency: r.Currency, Status: r.Status,
		FailureReason: r.FailureReason, Created: r.CreatedAt,
	}
}

// counts reports whether the refund takes from what is left to refund of
// its charge: a pending or succeeded one does, as in Stripe; a failed or
// canceled one gave its amount back.
func (r Refund) counts() bool {
	return r.Status == payment.RefundPending || r.Status == payment.RefundSucceeded
}

// ChargeMoney is what deciding a refund or a dispute of a charge needs: the
// charge, its refunds and its dispute (nil when it has none). The store
// loads it under the charge's lock and hands it to the sandbox's rule, so
// that two refunds racing on one charge cannot together take more than it.
type ChargeMoney struct {
	Charge  Charge
	Refunds []Refund
	Dispute *Dispute
}

// Refunded is what the charge's pending and succeeded refunds take.
func (m ChargeMoney) Refunded() int64 {
	var n int64
	for _, r := range m.Refunds {
		if r.counts() {
			n += r.Amount
		}
	}
	return n
}

// Refundable is what may still be refunded: the charge's amount less its
// refunds and less a dispute's withdrawn funds that were not reinstated.
func (m ChargeMoney) Refundable() int64 {
	left := m.Charge.Amount - m.Refunded()
	if d := m.Dispute; d != nil && d.FundsWithdrawn && !d.FundsReinstated {
		left -= d.Amount
	}
	return max(left, 0)
}

// Errors of refunds and disputes that Stripe answers 400 to: nothing
// happened, and the same request will not do better.
var (
	// ErrNotRefundable is wrapped when a refund asks for more than what
	// is left to refund, or refunds a charge that did not succeed or whose
	// dispute is open (Stripe's amount_too_large, charge_disputed…).
	ErrNotRefundable = errors.New("sandbox: not refundable")
	// ErrNotDisputable is wrapped when a charge that did not succeed, or
	// was refunded in whole, is disputed.
	ErrNotDisputable = errors.New("sandbox: not disputable")
	// ErrDisputeClosed is wrapped when a dispute closed with one outcome
	// is closed with the other.
	ErrDisputeClosed = errors.New("sandbox: dispute already closed")
)

// CheckRefund is the rule of a new refund r of a charge: the charge
// succeeded, is not under an open dispute, has r's currency and has r.Amount
// left to refund. Its errors wrap ErrNotRefundable.
func CheckRefund(m ChargeMoney, r Refund) error {
	c := m.Charge
	switch {
	case c.Status != payment.Succeeded:
		return fmt.Errorf("%w: charge %s is %s, not succeeded", ErrNotRefundable, c.ID, c.Status)
	case m.Dispute != nil && !m.Dispute.Status.Closed():
		return fmt.Errorf("%w: charge %s has been charged back (dispute %s); cannot issue a refund", ErrNotRefundable, c.ID, m.Dispute.ID)
	case !strings.EqualFold(r.Currency, c.Currency):
		return fmt.Errorf("%w: currency %s is not the charge's %s", ErrNotRefundable, r.Currency, c.Currency)
	case r.Amount > m.Refundable():
		return fmt.Errorf("%w: refund amount %d is greater than the unrefunded amount %d of charge %s", ErrNotRefundable, r.Amount, m.Refundable(), c.ID)
	}
	return nil
}

// Refund refunds a succeeded charge, as Stripe's Refunds API: at once
// (succeeded), unless the charge's test card says otherwise
// (pm_card_pendingRefund: pending until SettleRefund;
// pm_card_refundFail: succeeded, then failed at once with
// expired_or_canceled_card, as Stripe's test card 4000000000005126) or the
// Hook's Fault does (OpRefund: RefundStatus pending, or failed: pending,
// then failed at once). Each refund and each change is sent as
// refund.created, refund.updated and refund.failed events to
// Config.Events before Refund answers (the answer is the refund as it was
// created).
//
// The same IdempotencyKey returns the refund it made, as it now stands,
// for KeyTTL, and sends that refund's events again (with the same event
// ids, so applying them once is the receiver's); reusing a key with another
// charge, amount, currency or refund id wraps ErrKeyReused. More than what
// is left to refund of the charge (its amount less its pending and
// succeeded refunds and a withdrawn dispute), a charge that did not
// succeed or whose dispute is open, and another currency wrap
// ErrNotRefundable; an unknown charge wraps payment.ErrNotFound. Nothing
// is refunded then. A failure of the sandbox's storage, or of the delivery
// of the events, wraps payment.ErrUnknownOutcome: retry with the same key.
func (p *Provider) Refund(ctx context.Context, req payment.RefundRequest) (payment.Refund, error) {
	op := "sandbox: refund charge " + req.ChargeID
	if err := ctx.Err(); err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w: %w", op, payment.ErrUnknownOutcome, err)
	}
	if err := validateRefund(req); err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	forget := p.forgetBefore()
	prev, replay, err := p.store.SandboxRefundForKey(ctx, req.IdempotencyKey, forget)
	if err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w: %w", op, payment.ErrUnknownOutcome, err)
	}
	f := p.fault(Call{Op: OpRefund, Refund: req, Replay: replay, ID: req.ChargeID})
	if err := f.refused(op); err != nil {
		return payment.Refund{}, err
	}
	if !replay {
		if prev, err = p.newRefund(ctx, req, f, forget); err != nil {
			return payment.Refund{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	if err := sameRefund(prev, req); err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	// What was refunded was recorded; its events are sent even if the
	// caller stopped waiting, as Stripe's webhooks are.
	if err := p.emit(context.WithoutCancel(ctx), p.refundEvents(prev)...); err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	answer := prev.Payment()
	if !replay {
		answer = created(prev).Payment()
	}
	if err := p.finish(ctx, f, p.latency); err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	return answer, nil
}

// newRefund records a new refund (checked by CheckRefund against the
// charge under its lock) and lets a refund that is to fail at once fail.
// A key that a racing call claimed first gives that call's refund.
func (p *Provider) newRefund(ctx context.Context, req payment.RefundRequest, f Fault, forget time.Time) (Refund, error) {
	charge, err := p.store.SandboxCharge(ctx, req.ChargeID)
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return Refund{}, err
	case err != nil:
		return Refund{}, fmt.Errorf("%w: %w", payment.ErrUnknownOutcome, err)
	}
	status, failLater := p.refundOutcome(ctx, charge, f)
	r := Refund{
		ID:             p.ids.New("re"),
		IdempotencyKey: req.IdempotencyKey,
		RefundID:       req.RefundID,
		ChargeID:       req.ChargeID,
		TopUpID:        req.TopUpID,
		Amount:         req.Amount,
		Currency:       strings.ToLower(req.Currency),
		Reason:         req.Reason,
		InitialStatus:  status,
		Status:         status,
		CreatedAt:      p.clock.Now(),
	}
	if r.TopUpID == "" {
		r.TopUpID = charge.TopUpID
	}
	// From here on the refund is as good as sent: it is recorded even if
	// the caller stops waiting.
	check := func(m ChargeMoney) error { return CheckRefund(m, r) }
	got, inserted, err := p.store.SandboxInsertRefund(context.WithoutCancel(ctx), r, forget, check)
	switch {
	case errors.Is(err, ErrNotRefundable), errors.Is(err, payment.ErrNotFound):
		return Refund{}, err
	case err != nil:
		return Refund{}, fmt.Errorf("%w: %w", payment.ErrUnknownOutcome, err)
	case !inserted || failLater == "":
		return got, nil
	}
	failed, err := p.store.SandboxUpdateRefund(context.WithoutCancel(ctx), got.ID, got.Status, payment.RefundFailed, failLater)
	if err != nil {
		return Refund{}, fmt.Errorf("%w: %w", payment.ErrUnknownOutcome, err)
	}
	return failed, nil
}

// Refund outcomes of the sandbox's test cards and faults.
const (
	tokenPendingRefund = "pm_card_pendingRefund"
	tokenRefundFail    = "pm_card_refundFail"
	// failureExpiredCard is Stripe's failure_reason of its refundFail
	// test card.
	failureExpiredCard = "expired_or_canceled_card"
)

// refundOutcome is the status a new refund of charge is created with, and
// the failure reason it then fails with at once ("" when it does not): the
// fault's RefundStatus, else the charge's test card.
func (p *Provider) refundOutcome(ctx context.Context, charge Charge, f Fault) (payment.RefundStatus, string) {
	switch f.RefundStatus {
	case payment.RefundFailed:
		reason := f.FailureReason
		if reason == "" {
			reason = "declined"
		}
		return payment.RefundPending, reason
	case "":
	default:
		return f.RefundStatus, ""
	}
	card, err := p.store.SandboxCard(ctx, charge.PaymentMethod)
	if err != nil {
		return payment.RefundSucceeded, ""
	}
	switch card.Token {
	case tokenPendingRefund:
		return payment.RefundPending, ""
	case tokenRefundFail:
		return payment.RefundSucceeded, failureExpiredCard
	}
	return payment.RefundSucceeded, ""
}

// created is the refund as it was created, before any change.
func created(r Refund) Refund {
	r.Status, r.FailureReason = r.InitialStatus, ""
	return r
}

func validateRefund(req payment.RefundRequest) error {
	switch {
	case req.IdempotencyKey == "":
		return errors.New("an idempotency key is required")
	case req.ChargeID == "":
		return errors.New("a charge is required")
	case req.Amount <= 0:
		return fmt.Errorf("amount %d is not positive", req.Amount)
	case req.Currency == "":
		return errors.New("a currency is required")
	}
	return nil
}

// sameRefund checks that a request whose key made prev asks for the same
// refund (for a new refund, trivially).
func sameRefund(prev Refund, req payment.RefundRequest) error {
	if prev.ChargeID != req.ChargeID || prev.Amount != req.Amount || prev.Currency != strings.ToLower(req.Currency) ||
		prev.RefundID != req.RefundID {
		return fmt.Errorf("%w: %q was used for refund %s (%d %s of %s for %q)",
			ErrKeyReused, req.IdempotencyKey, prev.ID, prev.Amount, prev.Currency, prev.ChargeID, prev.RefundID)
	}
	return nil
}

// FindRefund returns the newest refund of chargeID whose metadata names
// refundID; ok is false when there is none. An unknown charge wraps
// payment.ErrNotFound.
func (p *Provider) FindRefund(ctx context.Context, chargeID, refundID string) (payment.Refund, bool, error) {
	if chargeID == "" || refundID == "" {
		return payment.Refund{}, false, errors.New("sandbox: find refund: a charge and a refund id are required")
	}
	op := "sandbox: find refund " + refundID + " of charge " + chargeID
	f := p.fault(Call{Op: OpFindRefund, ID: chargeID})
	if err := f.refused(op); err != nil {
		return payment.Refund{}, false, err
	}
	if _, err := p.store.SandboxCharge(ctx, chargeID); err != nil {
		return payment.Refund{}, false, fmt.Errorf("%s: %w", op, err)
	}
	rs, err := p.store.SandboxRefundsOfCharge(ctx, chargeID)
	if err != nil {
		return payment.Refund{}, false, fmt.Errorf("%s: %w: %w", op, payment.ErrUnknownOutcome, err)
	}
	var found *Refund
	for i := range rs {
		if rs[i].RefundID == refundID {
			found = &rs[i]
			break
		}
	}
	if err := p.finish(ctx, f, 0); err != nil {
		return payment.Refund{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if found == nil {
		return payment.Refund{}, false, nil
	}
	return found.Payment(), true, nil
}

// SettleRefund moves a refund as Stripe does later: a pending one to
// succeeded, failed (with failureReason) or canceled, a succeeded one to
// failed (the card was closed: the money comes back to the merchant). It
// sends refund.updated, and refund.failed for a failure (not
// refund.created again), and returns the
// refund as it then is; a refund that is not in a status it may leave that
// way is returned unchanged. An unknown id wraps payment.ErrNotFound.
func (p *Provider) SettleRefund(ctx context.Context, id string, to payment.RefundStatus, failureReason string) (payment.Refund, error) {
	op := "sandbox: settle refund " + id
	r, err := p.store.SandboxRefund(ctx, id)
	if err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	if !refundMay(r.Status, to) {
		return r.Payment(), nil
	}
	if to != payment.RefundFailed {
		failureReason = ""
	} else if failureReason == "" {
		failureReason = "unknown"
	}
	if r, err = p.store.SandboxUpdateRefund(ctx, id, r.Status, to, failureReason); err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := p.emit(context.WithoutCancel(ctx), p.refundEvents(r)[1:]...); err != nil {
		return payment.Refund{}, fmt.Errorf("%s: %w", op, err)
	}
	return r.Payment(), nil
}

// refundMay reports whether Stripe moves a refund from status from to to.
func refundMay(from, to payment.RefundStatus) bool {
	switch from {
	case payment.RefundPending:
		return to == payment.RefundSucceeded || to == payment.RefundFailed || to == payment.RefundCanceled
	case payment.RefundSucceeded:
		return to == payment.RefundFailed
	}
	return false
}

// Refunds lists the durable log of every refund the sandbox made, newest
// first: what the ledger's refunds are checked against.
func (p *Provider) Refunds(ctx context.Context, limit int, startingAfter string) ([]Refund, bool, error) {
	if limit <= 0 {
		limit = 10
	}
	rs, more, err := p.store.SandboxRefunds(ctx, limit, startingAfter)
	if err != nil {
		return nil, false, fmt.Errorf("sandbox: list refunds: %w", err)
	}
	return rs, more, nil
}
