package topup

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
)

// The events of refunds and disputes, written by the store that applies
// the provider's word; like every top_up.* event their data is the top-up
// (EventData), here with "refund" or "dispute".
const (
	EventTopUpRefunded = "top_up.refunded"
	EventTopUpDisputed = "top_up.disputed"
)

// EventStore is what applying provider events needs of storage.
type EventStore interface {
	Settle(ctx context.Context, id string, o Outcome, backoff time.Duration) (Settled, error)
	AddCard(ctx context.Context, accountID string, c payment.Card) (Card, error)
	CardOwner(ctx context.Context, cardID string) (string, error)
	RemoveCard(ctx context.Context, accountID, cardID string) (bool, error)
	// ApplyRefund applies the provider's word on a refund, once, in any
	// order (refund.Refund.Observe); ok is false when it names no top-up
	// Topup has.
	ApplyRefund(ctx context.Context, w refund.Word) (r refund.Refund, ok bool, err error)
	// ApplyDispute applies one event of a dispute, once per kind, in any
	// order (refund.Dispute.Apply), and says what it did; ok is false
	// when its charge is no succeeded top-up Topup has.
	ApplyDispute(ctx context.Context, w refund.DisputeWord) (d refund.DisputeRecord, ok bool, err error)
}

// ApplyEvent applies one provider webhook event. Each is applied once
// (Settle keeps the event ids; a refund's and a dispute's rows keep what
// was applied of them) and in any order: a final top-up changes only to be
// credited for a charge that succeeded. Events about things Topup does not
// know are acknowledged and logged. The simulator calls it; the Stripe
// webhook handler and the sandbox's event sink call Events.Apply, which
// also reports disputes to the operator's metric.
func ApplyEvent(ctx context.Context, st EventStore, ev payment.Event, backoff time.Duration, log *slog.Logger) error {
	return Events{Store: st, Backoff: backoff, Log: log}.Apply(ctx, ev)
}

// Events applies provider events (ApplyEvent) and tells the operator of
// each dispute.
type Events struct {
	Store   EventStore
	Backoff time.Duration
	Log     *slog.Logger
	// OnDispute, if set, hears what each dispute event did (a metric):
	// called once per event applied to a top-up Topup has, with the
	// dispute as it then stands and what the event changed (nothing, for
	// a copy of one already applied).
	OnDispute func(d refund.DisputeRecord)
}

// Apply applies one provider event (see ApplyEvent).
func (e Events) Apply(ctx context.Context, ev payment.Event) error {
	switch ev.Type {
	case "payment_intent.succeeded", "payment_intent.payment_failed":
		return applyCharge(ctx, e.Store, ev, e.Backoff, e.Log)
	case "checkout.session.completed", "setup_intent.succeeded":
		return applyCardSaved(ctx, e.Store, ev, e.Log)
	case "payment_method.detached":
		return applyCardDetached(ctx, e.Store, ev)
	case "refund.created", "refund.updated", "refund.failed":
		return e.applyRefund(ctx, ev)
	case "charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated", "charge.dispute.closed":
		return e.applyDispute(ctx, ev)
	}
	return nil
}

// RefundWord is what a provider refund event says, in the refund rules'
// terms: canceled counts as failed, and a status Topup does not know as
// pending (it changes nothing).
func RefundWord(r payment.Refund) refund.Word {
	status := refund.Pending
	switch r.Status {
	case payment.RefundSucceeded:
		status = refund.Succeeded
	case payment.RefundFailed, payment.RefundCanceled:
		status = refund.Failed
	}
	return refund.Word{RefundID: r.RefundID, ProviderID: r.ID, ChargeID: r.ChargeID, AmountMinor: r.Amount, Status: status,
		FailureReason: r.FailureReason}
}

// applyRefund applies a refund.* event: Topup's own refund (matched by
// its id in the metadata) or one made at the provider directly (matched,
// or recorded, by the provider's id).
func (e Events) applyRefund(ctx context.Context, ev payment.Event) error {
	if ev.Refund == nil {
		return nil
	}
	r, ok, err := e.Store.ApplyRefund(ctx, RefundWord(*ev.Refund))
	if err != nil {
		return fmt.Errorf("apply %s %s (refund %s): %w", ev.Type, ev.ID, ev.Refund.ID, err)
	}
	if !ok {
		e.Log.Warn("refund event for a charge Topup does not know, acknowledged", refundAttrs(ev)...)
		return nil
	}
	e.Log.Info("refund event applied", "event", ev.ID, "type", ev.Type, "refund_id", r.ID, "top_up_id", r.TopUpID, "status", string(r.Status))
	return nil
}

// DisputeKinds is the dispute events a provider event stands for, in the
// order they happened: its own, after what the dispute it carries says
// already happened (funds withdrawn, then reinstated), so that a close
// heard first also withdraws and gives back what the close reports. Each
// kind is applied once however often it is heard.
func DisputeKinds(ev payment.Event) []refund.DisputeEventKind {
	var own refund.DisputeEventKind
	switch ev.Type {
	case "charge.dispute.created":
		own = refund.Opened
	case "charge.dispute.funds_withdrawn":
		own = refund.FundsWithdrawn
	case "charge.dispute.funds_reinstated":
		own = refund.FundsReinstated
	case "charge.dispute.closed":
		own = refund.Closed
	default:
		return nil
	}
	var kinds []refund.DisputeEventKind
	if own == refund.Opened {
		kinds = append(kinds, own)
	}
	if ev.Dispute.FundsWithdrawn {
		kinds = append(kinds, refund.FundsWithdrawn)
	}
	if ev.Dispute.FundsReinstated {
		kinds = append(kinds, refund.FundsReinstated)
	}
	if !slices.Contains(kinds, own) {
		kinds = append(kinds, own)
	}
	return kinds
}

// applyDispute applies a charge.dispute.* event: each kind it stands for
// (DisputeKinds), each in its own transaction — a failure part way is
// answered with an error, the provider sends the event again, and the
// kinds already applied change nothing the second time.
func (e Events) applyDispute(ctx context.Context, ev payment.Event) error {
	if ev.Dispute == nil {
		return nil
	}
	dp := ev.Dispute
	var done refund.DisputeRecord
	for _, kind := range DisputeKinds(ev) {
		w := refund.DisputeWord{ProviderID: dp.ID, ChargeID: dp.ChargeID, AmountMinor: dp.Amount, Kind: kind, Reason: dp.Reason}
		w.Won = kind == refund.Closed && dp.Status == payment.DisputeWon
		d, ok, err := e.Store.ApplyDispute(ctx, w)
		if err != nil {
			return fmt.Errorf("apply %s %s (dispute %s, %s): %w", ev.Type, ev.ID, dp.ID, kind, err)
		}
		if !ok {
			e.Log.Warn("dispute event for a charge Topup does not know, acknowledged", refundAttrs(ev)...)
			return nil
		}
		done = merge(done, d)
	}
	if done.Opened {
		e.Log.Warn("dispute opened: Automatic Top-Up switched off, the customer told", "event", ev.ID, "dispute_id", done.ID,
			"provider_dispute", dp.ID, "account_id", done.AccountID, "top_up_id", done.TopUpID, "amount", done.Amount.String(), "reason", done.Reason)
	}
	if done.Effect.Closed {
		e.Log.Info("dispute closed", "event", ev.ID, "dispute_id", done.ID, "account_id", done.AccountID, "status", string(done.Status))
	}
	if e.OnDispute != nil {
		e.OnDispute(done)
	}
	return nil
}

// merge is the dispute after next, with what both steps of one event did.
func merge(prev, next refund.DisputeRecord) refund.DisputeRecord {
	eff := next.Effect
	eff.Opened = eff.Opened || prev.Effect.Opened
	eff.Withdraw += prev.Effect.Withdraw
	eff.Reinstate = eff.Reinstate || prev.Effect.Reinstate
	eff.Closed = eff.Closed || prev.Effect.Closed
	next.Effect, next.Opened = eff, next.Opened || prev.Opened
	return next
}

// refundAttrs are the log fields of a refund or dispute event, for the
// operator to reconcile with the provider.
func refundAttrs(ev payment.Event) []any {
	attrs := []any{"event", ev.ID, "type", ev.Type}
	switch {
	case ev.Refund != nil:
		r := ev.Refund
		attrs = append(attrs, "refund", r.ID, "refund_id", r.RefundID, "charge_id", r.ChargeID, "top_up_id", r.TopUpID,
			"amount_minor", r.Amount, "currency", r.Currency, "status", string(r.Status))
	case ev.Dispute != nil:
		d := ev.Dispute
		attrs = append(attrs, "dispute", d.ID, "charge_id", d.ChargeID, "top_up_id", d.TopUpID,
			"amount_minor", d.Amount, "currency", d.Currency, "status", string(d.Status), "funds_withdrawn", d.FundsWithdrawn)
	}
	return attrs
}

// applyCharge settles the top-up a charge event is about.
func applyCharge(ctx context.Context, st EventStore, ev payment.Event, backoff time.Duration, log *slog.Logger) error {
	if ev.Charge == nil || ev.Charge.TopUpID == "" {
		return nil
	}
	o, ok := ChargeOutcome(*ev.Charge)
	if !ok {
		return nil
	}
	o.EventID, o.EventType = ev.ID, ev.Type
	_, err := st.Settle(ctx, ev.Charge.TopUpID, o, backoff)
	if apperr.CodeOf(err) == apperr.NotFound {
		log.Warn("webhook for an unknown top-up", "event", ev.ID, "top_up_id", ev.Charge.TopUpID)
		return nil
	}
	return err
}

// applyCardSaved adds the card a completed setup saved.
func applyCardSaved(ctx context.Context, st EventStore, ev payment.Event, log *slog.Logger) error {
	if ev.Card == nil || ev.AccountID == "" {
		return nil
	}
	_, err := st.AddCard(ctx, ev.AccountID, *ev.Card)
	switch apperr.CodeOf(err) {
	case apperr.NotFound:
		return nil
	case apperr.AccountClosed, apperr.LimitExceeded, apperr.Conflict:
		// A closed account, one at its limit, or a card removed since:
		// the event is answered, and the card stays out of Topup.
		log.Warn("card from a provider event not added", "event", ev.ID, "account_id", ev.AccountID, "err", err)
		return nil
	}
	return err
}

// applyCardDetached removes a card detached at the provider.
func applyCardDetached(ctx context.Context, st EventStore, ev payment.Event) error {
	if ev.Card == nil {
		return nil
	}
	owner, err := st.CardOwner(ctx, ev.Card.ID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = st.RemoveCard(ctx, owner, ev.Card.ID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil
	}
	return err
}
