package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v85"

	"github.com/topup/topup/internal/payment"
)

// refundEvent adds the refund a refund.* event carries, read as Refund and
// FindRefund read one. A refund made in Stripe's Dashboard carries none of
// Topup's metadata: its top-up id is then read from its PaymentIntent's
// metadata (one lookup).
func (p *Provider) refundEvent(ctx context.Context, ev payment.Event, raw json.RawMessage) (payment.Event, error) {
	var w wireRefund
	if err := json.Unmarshal(raw, &w); err != nil {
		return payment.Event{}, fmt.Errorf("stripe: webhook %s: decode Refund: %w", ev.ID, err)
	}
	r := refundFromStripe(w.stripe())
	if ev.Type == string(stripego.EventTypeRefundFailed) {
		// refund.failed is about a refund that failed, whatever an
		// object rendered a moment earlier says.
		r.Status = payment.RefundFailed
	}
	if r.TopUpID == "" || r.ChargeID == "" {
		chargeID, topUpID, err := p.chargeOwner(ctx, ev, r.ChargeID, string(w.Charge))
		if err != nil {
			return payment.Event{}, err
		}
		r.ChargeID = chargeID
		if r.TopUpID == "" {
			r.TopUpID = topUpID
		}
	}
	ev.Refund = &r
	return ev, nil
}

// disputeEvent adds the dispute a charge.dispute.* event carries. Dispute
// objects name the charge (ch_…) and, in every recent API version, its
// PaymentIntent, but not the top-up: that is read from the PaymentIntent's
// metadata (one lookup). Whether funds moved is read from the event's type
// and from the dispute's balance transactions, so that a
// charge.dispute.closed that arrives before the events it follows still
// says a won dispute's funds were withdrawn and reinstated.
func (p *Provider) disputeEvent(ctx context.Context, ev payment.Event, raw json.RawMessage) (payment.Event, error) {
	var w wireDispute
	if err := json.Unmarshal(raw, &w); err != nil {
		return payment.Event{}, fmt.Errorf("stripe: webhook %s: decode Dispute: %w", ev.ID, err)
	}
	d := payment.Dispute{
		ID: w.ID, Amount: w.Amount, Currency: strings.ToLower(w.Currency),
		Status: payment.DisputeStatus(w.Status), Reason: w.Reason,
	}
	if w.Created > 0 {
		d.Created = time.Unix(w.Created, 0).UTC()
	}
	d.FundsWithdrawn, d.FundsReinstated = w.BalanceTransactions.moved()
	switch stripego.EventType(ev.Type) {
	case stripego.EventTypeChargeDisputeFundsWithdrawn:
		d.FundsWithdrawn = true
	case stripego.EventTypeChargeDisputeFundsReinstated:
		// Only what was withdrawn is reinstated.
		d.FundsWithdrawn, d.FundsReinstated = true, true
	}
	chargeID, topUpID, err := p.chargeOwner(ctx, ev, string(w.PaymentIntent), string(w.Charge))
	if err != nil {
		return payment.Event{}, err
	}
	d.ChargeID, d.TopUpID = chargeID, topUpID
	ev.Dispute = &d
	return ev, nil
}

// chargeOwner returns the PaymentIntent (Topup's charge id) and the top-up
// id of its metadata, from the PaymentIntent when the object names it, else
// from the charge ch_… with its PaymentIntent expanded. A lookup that
// failed for want of an answer is an error, so that Stripe sends the event
// again; any other failure (an object Stripe does not know, one not made by
// Topup) is logged and leaves the top-up id empty, for Topup to resolve by
// the charge id it stores, or to ignore.
func (p *Provider) chargeOwner(ctx context.Context, ev payment.Event, intentID, chargeID string) (string, string, error) {
	var pi *stripego.PaymentIntent
	var err error
	switch {
	case intentID != "":
		pi, err = p.client.V1PaymentIntents.Retrieve(ctx, intentID, nil)
	case chargeID != "":
		params := &stripego.ChargeRetrieveParams{}
		params.AddExpand("payment_intent")
		var ch *stripego.Charge
		if ch, err = p.client.V1Charges.Retrieve(ctx, chargeID, params); err == nil {
			pi = ch.PaymentIntent
		}
	default:
		return "", "", nil
	}
	if err != nil {
		err = classify("look up the charge of "+ev.Type+" "+ev.ID, err)
		if errors.Is(err, payment.ErrUnknownOutcome) {
			return "", "", fmt.Errorf("stripe: webhook %s: %w", ev.ID, err)
		}
		p.logger.WarnContext(ctx, "stripe webhook: the charge of a refund or dispute could not be read",
			slog.String("event_id", ev.ID), slog.String("type", ev.Type), slog.Any("error", err))
		return intentID, "", nil
	}
	if pi == nil || pi.ID == "" {
		// A charge made without a PaymentIntent: not Topup's.
		return intentID, "", nil
	}
	return pi.ID, pi.Metadata[metaTopUpID], nil
}
