package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v85"

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
	}
	return c
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
	case stripego.PaymentIntentStatusRequiresPaymentMethod:
		// After a failed confirmation the PaymentIntent waits for another
		// payment method; the failure is in last_payment_error. An
		// off-session charge that needs 3-D Secure fails this way
		// (authentication_required), and the customer can still confirm
		// this PaymentIntent on-session with its client secret.
		c.DeclineCode = declineCode(pi.LastPaymentError)
		if c.DeclineCode == codeAuthenticationRequired {
			c.Status, c.ClientSecret = payment.RequiresAction, pi.ClientSecret
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

// FindCharge looks for the PaymentIntent whose metadata names topUpID. It
// lists the customer's PaymentIntents newest first (strongly consistent, so a
// charge made a moment ago is found), and only when that list is longer than
// maxScan asks Stripe's search, which sees everything but may lag behind by
// a minute or more. The newest match wins.
func (p *Provider) FindCharge(ctx context.Context, customerID, topUpID string) (payment.Charge, bool, error) {
	if topUpID == "" {
		return payment.Charge{}, false, errors.New("stripe: find charge: empty top-up id")
	}
	op := "find charge for top-up " + topUpID
	if p.maxScan > 0 {
		params := &stripego.PaymentIntentListParams{}
		params.Limit = stripego.Int64(p.pageSize)
		if customerID != "" {
			params.Customer = stripego.String(customerID)
		}
		scanned := 0
		for pi, err := range p.client.V1PaymentIntents.List(ctx, params).All(ctx) {
			if err != nil {
				return payment.Charge{}, false, classify(op, err)
			}
			if pi.Metadata[metaTopUpID] == topUpID {
				return chargeFromIntent(pi), true, nil
			}
			scanned++
			if scanned >= p.maxScan {
				break
			}
		}
		if scanned < p.maxScan {
			return payment.Charge{}, false, nil
		}
	}

	query := fmt.Sprintf("metadata['%s']:'%s'", metaTopUpID, searchQuote(topUpID))
	if customerID != "" {
		query = fmt.Sprintf("customer:'%s' AND %s", searchQuote(customerID), query)
	}
	params := &stripego.PaymentIntentSearchParams{}
	params.Query = query
	params.Limit = stripego.Int64(10)
	for pi, err := range p.client.V1PaymentIntents.Search(ctx, params).All(ctx) {
		if err != nil {
			return payment.Charge{}, false, classify(op, err)
		}
		if pi.Metadata[metaTopUpID] == topUpID {
			return chargeFromIntent(pi), true, nil
		}
	}
	return payment.Charge{}, false, nil
}

// searchQuote escapes a value for a quoted string in Stripe's search query
// language.
func searchQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}
