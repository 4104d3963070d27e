package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/topup/topup/internal/payment"
)

// webhookFetchTimeout bounds the Stripe lookups ParseWebhook makes for setup
// events, whose payloads name the SetupIntent or card only by id, and for
// refund and dispute events, whose top-up id is on their PaymentIntent.
const webhookFetchTimeout = 20 * time.Second

// ParseWebhook is ParseWebhookContext with a background context bounded by
// webhookFetchTimeout.
func (p *Provider) ParseWebhook(payload []byte, sigHeader string) (payment.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), webhookFetchTimeout)
	defer cancel()
	return p.ParseWebhookContext(ctx, payload, sigHeader)
}

// ParseWebhookContext verifies a Stripe webhook against its Stripe-Signature
// header and reduces it to a payment.Event. A missing, wrong or stale
// signature (older than stripe-go's 300 s tolerance, or signed more than
// 300 s in the future, which stripe-go does not check) gives an error
// wrapping payment.ErrBadSignature.
//
// Events of any API version are taken. The endpoint should be pinned to
// stripe-go's version (stripego.APIVersion, see the README), but an event
// rendered in another one (an endpoint created with an older account
// default, or a version upgrade rolling out) must not be refused: Stripe
// would retry it for three days, then disable the endpoint. So the payload
// is not decoded into stripe-go's types, which follow one version, but read
// for the few fields Topup needs (wire.go), whose names and meaning have not
// changed across versions; an event of another version is logged once per
// version.
//
// payment_intent.* events carry the Charge, read exactly as Charge and
// GetCharge read a PaymentIntent (so payment_failed with
// authentication_required is RequiresAction, as the charge itself was).
// checkout.session.completed (setup mode) and setup_intent.succeeded carry
// the saved Card, the Customer and the AccountID from metadata; both arrive
// for one hosted setup, with the same Card.ID. payment_method.detached
// carries the Card and, when Stripe says, the Customer it left.
// refund.created, refund.updated and refund.failed carry the Refund (its
// top-up id read from its PaymentIntent when Topup did not make it);
// charge.dispute.created, funds_withdrawn, funds_reinstated and closed
// carry the Dispute, its top-up id read from its PaymentIntent (see
// disputeEvent). charge.refunded is not read: since API version 2022-11-15
// it no longer carries its refunds. Other types come back with only ID,
// Type and Created.
//
// An error that does not wrap ErrBadSignature is worth a 5xx answer: Stripe
// sends the event again later.
func (p *Provider) ParseWebhookContext(ctx context.Context, payload []byte, sigHeader string) (payment.Event, error) {
	e, err := p.verify(payload, sigHeader)
	if err != nil {
		return payment.Event{}, err
	}
	p.noteVersion(ctx, e)
	ev := payment.Event{ID: e.ID, Type: string(e.Type)}
	if e.Created > 0 {
		ev.Created = time.Unix(e.Created, 0).UTC()
	}
	if e.Data == nil {
		return ev, nil
	}
	switch e.Type {
	case stripego.EventTypePaymentIntentSucceeded, stripego.EventTypePaymentIntentPaymentFailed,
		stripego.EventTypePaymentIntentRequiresAction, stripego.EventTypePaymentIntentProcessing,
		stripego.EventTypePaymentIntentCanceled:
		return chargeEvent(ev, e.Data.Raw)
	case stripego.EventTypeRefundCreated, stripego.EventTypeRefundUpdated, stripego.EventTypeRefundFailed:
		return p.refundEvent(ctx, ev, e.Data.Raw)
	case stripego.EventTypeChargeDisputeCreated, stripego.EventTypeChargeDisputeFundsWithdrawn,
		stripego.EventTypeChargeDisputeFundsReinstated, stripego.EventTypeChargeDisputeClosed:
		return p.disputeEvent(ctx, ev, e.Data.Raw)
	case stripego.EventTypeCheckoutSessionCompleted, stripego.EventTypeSetupIntentSucceeded,
		stripego.EventTypePaymentMethodDetached:
		return p.cardEvent(ctx, ev, e)
	}
	return ev, nil
}

// cardEvent adds the card, customer and account a setup event or
// payment_method.detached carries.
func (p *Provider) cardEvent(ctx context.Context, ev payment.Event, e stripego.Event) (payment.Event, error) {
	switch e.Type {
	case stripego.EventTypeCheckoutSessionCompleted:
		var s wireSession
		if err := json.Unmarshal(e.Data.Raw, &s); err != nil {
			return payment.Event{}, fmt.Errorf("stripe: webhook %s: decode Checkout Session: %w", e.ID, err)
		}
		if s.Mode != string(stripego.CheckoutSessionModeSetup) {
			return ev, nil
		}
		ev.AccountID, ev.Customer = s.Metadata[metaAccountID], string(s.Customer)
		return p.withSetupCard(ctx, ev, &stripego.SetupIntent{ID: string(s.SetupIntent)})
	case stripego.EventTypeSetupIntentSucceeded:
		var si wireSetupIntent
		if err := json.Unmarshal(e.Data.Raw, &si); err != nil {
			return payment.Event{}, fmt.Errorf("stripe: webhook %s: decode SetupIntent: %w", e.ID, err)
		}
		ev.AccountID, ev.Customer = si.Metadata[metaAccountID], string(si.Customer)
		return p.withSetupCard(ctx, ev, si.stripe())
	}
	var pm wirePaymentMethod
	if err := json.Unmarshal(e.Data.Raw, &pm); err != nil {
		return payment.Event{}, fmt.Errorf("stripe: webhook %s: decode payment method: %w", e.ID, err)
	}
	card, ok := cardFromPaymentMethod(pm.stripe())
	if !ok {
		card = payment.Card{ID: pm.ID}
	}
	ev.Card = &card
	if prev, ok := e.Data.PreviousAttributes["customer"].(string); ok {
		ev.Customer = prev
	}
	return ev, nil
}

// verify checks the signature of a webhook and reads its envelope, whatever
// its API version.
func (p *Provider) verify(payload []byte, sigHeader string) (stripego.Event, error) {
	if p.webhookSecret == "" {
		return stripego.Event{}, fmt.Errorf("stripe: webhook: %w: no webhook secret configured (STRIPE_WEBHOOK_SECRET)", payment.ErrBadSignature)
	}
	if err := notFromFuture(sigHeader, time.Now(), webhook.DefaultTolerance); err != nil {
		return stripego.Event{}, err
	}
	e, err := webhook.ConstructEventWithOptions(payload, sigHeader, p.webhookSecret, webhook.ConstructEventOptions{
		Tolerance:                webhook.DefaultTolerance,
		IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		if errors.Is(err, webhook.ErrNotSigned) || errors.Is(err, webhook.ErrInvalidHeader) ||
			errors.Is(err, webhook.ErrNoValidSignature) || errors.Is(err, webhook.ErrTooOld) {
			return stripego.Event{}, fmt.Errorf("stripe: webhook: %w: %w", payment.ErrBadSignature, err)
		}
		return stripego.Event{}, fmt.Errorf("stripe: webhook: %w", err)
	}
	return e, nil
}

// noteVersion logs, once per version, an event rendered in an API version
// other than stripe-go's: it is read all the same, but the endpoint should
// be pinned to the version this code is tested with.
func (p *Provider) noteVersion(ctx context.Context, e stripego.Event) {
	if e.APIVersion == stripego.APIVersion {
		return
	}
	if _, seen := p.versionsSeen.LoadOrStore(e.APIVersion, true); !seen {
		p.logger.WarnContext(ctx, "stripe webhook: event of another API version; pin the endpoint to this one",
			slog.String("event_id", e.ID), slog.String("api_version", e.APIVersion), slog.String("pinned", stripego.APIVersion))
	}
}

// chargeEvent adds the charge a payment_intent.* event carries.
func chargeEvent(ev payment.Event, raw json.RawMessage) (payment.Event, error) {
	var pi wireIntent
	if err := json.Unmarshal(raw, &pi); err != nil {
		return payment.Event{}, fmt.Errorf("stripe: webhook %s: decode PaymentIntent: %w", ev.ID, err)
	}
	c := chargeFromIntent(pi.stripe())
	ev.Charge, ev.Customer = &c, string(pi.Customer)
	return ev, nil
}

// notFromFuture refuses a Stripe-Signature header with any timestamp (t=)
// more than tolerance after now. stripe-go refuses only the stale ones, but
// an event signed ahead of time — with a leaked secret, or by a clock far
// off — must not stay replayable until its timestamp is 300 s old.
func notFromFuture(header string, now time.Time, tolerance time.Duration) error {
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k != "t" {
			continue
		}
		unix, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("stripe: webhook: %w: unreadable timestamp %q", payment.ErrBadSignature, v)
		}
		if ahead := time.Unix(unix, 0).Sub(now); ahead > tolerance {
			return fmt.Errorf("stripe: webhook: %w: signed %s in the future", payment.ErrBadSignature, ahead.Round(time.Second))
		}
	}
	return nil
}

// withSetupCard adds the card a SetupIntent saved to a setup event. A lookup
// that failed for want of an answer is an error, so that Stripe sends the
// event again; a setup that saved no usable card is logged and the event
// returned without a Card, since sending it again would not change that.
func (p *Provider) withSetupCard(ctx context.Context, ev payment.Event, si *stripego.SetupIntent) (payment.Event, error) {
	card, err := p.setupCard(ctx, si)
	if err != nil {
		if errors.Is(err, payment.ErrUnknownOutcome) {
			return payment.Event{}, fmt.Errorf("stripe: webhook %s: %w", ev.ID, err)
		}
		p.logger.WarnContext(ctx, "stripe webhook: setup saved no usable card",
			slog.String("event_id", ev.ID), slog.String("type", ev.Type), slog.Any("error", err))
		return ev, nil
	}
	ev.Card = &card
	return ev, nil
}
