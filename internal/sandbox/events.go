package sandbox

import (
	"context"
	"fmt"
	"time"

	"github.com/topup/topup/internal/payment"
)

// EventSink receives the webhook events the sandbox sends about refunds and
// disputes (refund.created, refund.updated, refund.failed,
// charge.dispute.created, charge.dispute.funds_withdrawn,
// charge.dispute.funds_reinstated, charge.dispute.closed), shaped as the
// Stripe provider's ParseWebhook reads Stripe's, so that Topup applies
// them through the same code (topup.Events.Apply). It is called on the
// caller's goroutine, in order, before the call that caused the events
// answers, and must be safe for concurrent use.
//
// Each event's id is derived from its object and what happened to it
// (evt_<re_…>_created, evt_<dp_…>_funds_withdrawn…), so an event sent again
// keeps its id: the sandbox sends a refund's or a dispute's events again
// whenever the call is repeated (the same idempotency key, the same
// dispute), which is how an event that could not be delivered, or that a
// crash lost, is delivered after all. The receiver applies each id once.
type EventSink func(ctx context.Context, ev payment.Event) error

// emit sends events to the sink, in order; a failure wraps
// payment.ErrUnknownOutcome, for the caller to repeat its call.
func (p *Provider) emit(ctx context.Context, evs ...payment.Event) error {
	if p.events == nil {
		return nil
	}
	for _, ev := range evs {
		if err := p.events(ctx, ev); err != nil {
			return fmt.Errorf("%w: send %s %s: %w", payment.ErrUnknownOutcome, ev.Type, ev.ID, err)
		}
	}
	return nil
}

// eventID is the id of the event about object that says what happened.
func eventID(object, what string) string { return "evt_" + object + "_" + what }

// refundEvents are the events that tell r's life so far: refund.created
// with r as it was created, then, when its status changed since,
// refund.updated with r as it is, and refund.failed when it failed.
func (p *Provider) refundEvents(r Refund) []payment.Event {
	first := created(r).Payment()
	evs := []payment.Event{{ID: eventID(r.ID, "created"), Type: "refund.created", Refund: &first, Created: r.CreatedAt}}
	if r.Status == r.InitialStatus {
		return evs
	}
	now := p.clock.Now()
	updated := r.Payment()
	evs = append(evs, payment.Event{ID: eventID(r.ID, "updated_"+string(r.Status)), Type: "refund.updated", Refund: &updated, Created: now})
	if r.Status == payment.RefundFailed {
		failed := r.Payment()
		evs = append(evs, payment.Event{ID: eventID(r.ID, "failed"), Type: "refund.failed", Refund: &failed, Created: now})
	}
	return evs
}

// disputeEvents are the events that tell d's life so far, each with d as it
// stood after it: charge.dispute.created (nothing withdrawn yet), then
// funds_withdrawn, funds_reinstated (won) and closed as d has come that far.
func disputeEvents(d Dispute) []payment.Event {
	var evs []payment.Event
	add := func(what string, snap payment.Dispute, at time.Time) {
		evs = append(evs, payment.Event{ID: eventID(d.ID, what), Type: "charge.dispute." + what, Dispute: &snap, Created: at})
	}
	open := d.Payment()
	open.Status, open.FundsWithdrawn, open.FundsReinstated = payment.DisputeNeedsResponse, false, false
	add("created", open, d.CreatedAt)
	if !d.FundsWithdrawn {
		return evs
	}
	open.FundsWithdrawn = true
	add("funds_withdrawn", open, d.CreatedAt)
	if !d.Status.Closed() {
		return evs
	}
	if d.FundsReinstated {
		add("funds_reinstated", d.Payment(), d.ClosedAt)
	}
	add("closed", d.Payment(), d.ClosedAt)
	return evs
}
