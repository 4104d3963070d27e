package topup

import (
	"context"
	"log/slog"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/payment"
)

// EventStore is what applying provider events needs of storage.
type EventStore interface {
	Settle(ctx context.Context, id string, o Outcome, backoff time.Duration) (Settled, error)
	AddCard(ctx context.Context, accountID string, c payment.Card) (Card, error)
	CardOwner(ctx context.Context, cardID string) (string, error)
	RemoveCard(ctx context.Context, accountID, cardID string) (bool, error)
}

// ApplyEvent applies one provider webhook event. Each is applied once
// (Settle keeps the event ids) and in any order: a final top-up changes only
// to be credited for a charge that succeeded. Events about things Topup does
// not know are ignored. The Stripe webhook handler and the simulator both
// call it.
func ApplyEvent(ctx context.Context, st EventStore, ev payment.Event, backoff time.Duration, log *slog.Logger) error {
	switch ev.Type {
	case "payment_intent.succeeded", "payment_intent.payment_failed":
		return applyCharge(ctx, st, ev, backoff, log)
	case "checkout.session.completed", "setup_intent.succeeded":
		return applyCardSaved(ctx, st, ev, log)
	case "payment_method.detached":
		return applyCardDetached(ctx, st, ev)
	case "refund.created", "refund.updated", "refund.failed",
		"charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated", "charge.dispute.closed":
		noteMoneyEvent(ev, log)
	}
	return nil
}

// noteMoneyEvent logs a provider refund or dispute event, which is
// acknowledged and not applied yet (issue 12 brings the ledger side): the
// log keeps what the provider said, for the operator to reconcile.
func noteMoneyEvent(ev payment.Event, log *slog.Logger) {
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
	log.Warn("provider refund or dispute event received, not applied to the ledger yet", attrs...)
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
