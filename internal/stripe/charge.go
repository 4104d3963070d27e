package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v85"

	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/payment"
)

// Decline codes Topup reads specially.
const (
	codeAuthenticationRequired = "authentication_required"
	// codeCardDeclined is what a decline without a more precise reason is
	// called, as in the sandbox (Stripe itself says generic_decline).
	codeCardDeclined = "card_declined"
	codeCanceled     = "canceled"
)

// Charge creates a PaymentIntent for the saved card and confirms it in the
// same request, under req.IdempotencyKey, with the top-up id in its
// metadata. Only the card type is allowed, so no return_url is needed and a
// 3-D Secure challenge comes back as requires_action instead of a redirect.
//
// A decline is an outcome, not an error: the Charge says Declined with the
// decline code. An off-session charge the bank wants authenticated comes
// back RequiresAction with the PaymentIntent's client secret, so the
// customer can confirm that same payment on-session with Stripe.js.
func (p *Provider) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	if req.IdempotencyKey == "" {
		return payment.Charge{}, fmt.Errorf("stripe: charge top-up %s: an idempotency key is required", req.TopUpID)
	}
	params := &stripego.PaymentIntentCreateParams{
		Amount:             stripego.Int64(req.Amount),
		Currency:           stripego.String(strings.ToLower(req.Currency)),
		Customer:           stripego.String(req.Customer),
		PaymentMethod:      stripego.String(req.PaymentMethod),
		PaymentMethodTypes: stripego.StringSlice([]string{"card"}),
		Confirm:            stripego.Bool(true),
		OffSession:         stripego.Bool(req.OffSession),
	}
	if req.Description != "" {
		params.Description = stripego.String(req.Description)
	}
	params.AddMetadata(metaTopUpID, req.TopUpID)
	params.SetIdempotencyKey(req.IdempotencyKey)

	pi, err := p.client.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		var se *stripego.Error
		if errors.As(err, &se) && se.Type == stripego.ErrorTypeCard {
			return chargeFromCardError(se, req), nil
		}
		return payment.Charge{}, classify("charge top-up "+req.TopUpID, err)
	}
	return chargeFromIntent(pi), nil
}

// chargeFromCardError reads the 402 card_error Stripe answers for a declined
// confirmation. The error is the authority on what this confirmation did;
// the PaymentIntent it usually carries gives the id and the client secret.
func chargeFromCardError(se *stripego.Error, req payment.ChargeRequest) payment.Charge {
	c := payment.Charge{
		TopUpID:     req.TopUpID,
		Status:      payment.Declined,
		DeclineCode: declineCode(se),
		Amount:      req.Amount,
		Currency:    strings.ToLower(req.Currency),
	}
	pi := se.PaymentIntent
	if pi == nil || pi.ID == "" {
		return c
	}
	c.ID = pi.ID
	if pi.Created > 0 {
		c.Created = time.Unix(pi.Created, 0).UTC()
	}
	if c.DeclineCode == codeAuthenticationRequired && pi.ClientSecret != "" {
		c.Status, c.ClientSecret = payment.RequiresAction, pi.ClientSecret
		c.PaymentMethodID = intentPaymentMethod(pi)
		if c.PaymentMethodID == "" && se.PaymentMethod != nil {
			c.PaymentMethodID = se.PaymentMethod.ID
		}
		if c.PaymentMethodID == "" {
			// The card this very request named: the one that failed.
			c.PaymentMethodID = req.PaymentMethod
		}
	}
	return c
}

// intentPaymentMethod is the card a PaymentIntent waiting for its customer
// is to be confirmed with: its own payment method while it has one
// (requires_action), else the one its last confirmation failed with
// (requires_payment_method after an off-session authentication_required).
func intentPaymentMethod(pi *stripego.PaymentIntent) string {
	if pi.PaymentMethod != nil && pi.PaymentMethod.ID != "" {
		return pi.PaymentMethod.ID
	}
	if e := pi.LastPaymentError; e != nil && e.PaymentMethod != nil {
		return e.PaymentMethod.ID
	}
	return ""
}

// chargeFromIntent reduces a PaymentIntent to a payment.Charge. The same
// reading serves Charge, GetCharge, FindCharge and webhooks, so a charge
// never looks different depending on how Topup learned of it.
func chargeFromIntent(pi *stripego.PaymentIntent) payment.Charge {
	c := payment.Charge{
		ID:       pi.ID,
		TopUpID:  pi.Metadata[metaTopUpID],
		Amount:   pi.Amount,
		Currency: string(pi.Currency),
	}
	if pi.Created > 0 {
		c.Created = time.Unix(pi.Created, 0).UTC()
	}
	switch pi.Status {
	case stripego.PaymentIntentStatusSucceeded:
		c.Status = payment.Succeeded
	case stripego.PaymentIntentStatusRequiresAction:
		c.Status, c.ClientSecret = payment.RequiresAction, pi.ClientSecret
		c.PaymentMethodID = intentPaymentMethod(pi)
	case stripego.PaymentIntentStatusRequiresPaymentMethod:
		// After a failed confirmation the PaymentIntent waits for another
		// payment method; the failure is in last_payment_error. An
		// off-session charge that needs 3-D Secure fails this way
		// (authentication_required), and the customer can still confirm
		// this PaymentIntent on-session with its client secret, naming
		// the card again: the PaymentIntent holds it only in
		// last_payment_error now.
		c.DeclineCode = declineCode(pi.LastPaymentError)
		if c.DeclineCode == codeAuthenticationRequired {
			c.Status, c.ClientSecret = payment.RequiresAction, pi.ClientSecret
			c.PaymentMethodID = intentPaymentMethod(pi)
		} else {
			c.Status = payment.Declined
		}
	case stripego.PaymentIntentStatusCanceled:
		c.Status, c.DeclineCode = payment.Declined, codeCanceled
	default:
		// processing, requires_confirmation, requires_capture, or a status
		// newer than this code: not decided, so look again later rather
		// than call it failed.
		c.Status = payment.Processing
	}
	return c
}

// declineCode names why Stripe refused a payment: the issuer's decline_code
// when there is one, else the error code (authentication_required,
// expired_card, incorrect_cvc…). Stripe's generic_decline is called
// card_declined, as in the sandbox.
func declineCode(se *stripego.Error) string {
	if se == nil {
		return codeCardDeclined
	}
	code := string(se.DeclineCode)
	if code == "" {
		code = string(se.Code)
	}
	if code == "" || code == string(stripego.DeclineCodeGenericDecline) {
		return codeCardDeclined
	}
	return code
}

// GetCharge returns the PaymentIntent chargeID as a Charge; an id Stripe
// does not know gives an error wrapping payment.ErrNotFound.
func (p *Provider) GetCharge(ctx context.Context, chargeID string) (payment.Charge, error) {
	pi, err := p.client.V1PaymentIntents.Retrieve(ctx, chargeID, nil)
	if err != nil {
		return payment.Charge{}, classify("retrieve charge "+chargeID, err)
	}
	return chargeFromIntent(pi), nil
}

// CancelCharge cancels a PaymentIntent that still waits for the customer
// (cancellation_reason abandoned). Stripe refuses to cancel one that already
// succeeded; then the PaymentIntent is returned as it stands.
func (p *Provider) CancelCharge(ctx context.Context, chargeID string) (payment.Charge, error) {
	params := &stripego.PaymentIntentCancelParams{CancellationReason: stripego.String(string(stripego.PaymentIntentCancellationReasonAbandoned))}
	pi, err := p.client.V1PaymentIntents.Cancel(ctx, chargeID, params)
	if err == nil {
		return chargeFromIntent(pi), nil
	}
	var se *stripego.Error
	if errors.As(err, &se) && se.HTTPStatusCode == http.StatusBadRequest {
		// Not cancelable (succeeded, or already canceled): say how it stands.
		return p.GetCharge(ctx, chargeID)
	}
	return payment.Charge{}, classify("cancel charge "+chargeID, err)
}

// findChargeSlack is how long before a top-up's creation FindCharge starts
// listing. A charge is always made after its top-up is created, but the
// top-up's time is our clock and a PaymentIntent's created is Stripe's: the
// slack covers any plausible skew between the two, so that no charge is
// missed (which would charge the customer twice).
const findChargeSlack = time.Hour

// FindCharge looks for the PaymentIntent whose metadata names topUpID among
// the customer's PaymentIntents created since the top-up (created[gte], read
// from the ULID in the top-up id, less findChargeSlack), page after page,
// newest first; the newest match wins. Listing is strongly consistent, so a
// charge made a moment ago is found, and it works in every region, unlike
// Stripe's search API. An id that carries no time (not minted by Topup) is
// looked for among all the customer's PaymentIntents.
func (p *Provider) FindCharge(ctx context.Context, customerID, topUpID string) (payment.Charge, bool, error) {
	if topUpID == "" {
		return payment.Charge{}, false, errors.New("stripe: find charge: empty top-up id")
	}
	params := &stripego.PaymentIntentListParams{}
	params.Limit = stripego.Int64(p.pageSize)
	if customerID != "" {
		params.Customer = stripego.String(customerID)
	}
	if created, ok := ids.Time(topUpID); ok {
		params.CreatedRange = &stripego.RangeQueryParams{GreaterThanOrEqual: created.Add(-findChargeSlack).Unix()}
	}
	for pi, err := range p.client.V1PaymentIntents.List(ctx, params).All(ctx) {
		if err != nil {
			return payment.Charge{}, false, classify("find charge for top-up "+topUpID, err)
		}
		if pi.Metadata[metaTopUpID] == topUpID {
			return chargeFromIntent(pi), true, nil
		}
	}
	return payment.Charge{}, false, nil
}
