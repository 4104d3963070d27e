package stripe

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	stripego "github.com/stripe/stripe-go/v85"

	"github.com/topup/topup/internal/payment"
)

// Metadata keys Topup writes on refunds, beside metaTopUpID.
const (
	metaRefundID = "refund_id"
	// metaReason keeps a refund reason that is not one of Stripe's.
	metaReason = "reason"
	// maxMetadataValue is the longest metadata value Stripe takes, in
	// characters.
	maxMetadataValue = 500
)

// stripeRefundReasons are the reasons Stripe's Refunds API takes as
// reason; any other text goes to the metadata.
var stripeRefundReasons = map[string]bool{
	string(stripego.RefundReasonDuplicate):           true,
	string(stripego.RefundReasonFraudulent):          true,
	string(stripego.RefundReasonRequestedByCustomer): true,
}

// Refund creates a Stripe Refund of the PaymentIntent req.ChargeID for
// req.Amount, under req.IdempotencyKey, with Topup's refund and top-up ids
// in its metadata. The refund's currency is the PaymentIntent's (Stripe
// takes no currency for a refund of a payment); req.Currency is not sent.
//
// Stripe refuses, with a 400 that is a plain error here, an amount above
// what is left to refund (amount_too_large, charge_already_refunded), a
// disputed charge (charge_disputed), a PaymentIntent that did not succeed,
// an unknown one (resource_missing) and a key reused with other
// parameters (idempotency_error); nothing was refunded then. No answer, a
// 5xx, a 409 or a 429 wrap payment.ErrUnknownOutcome.
func (p *Provider) Refund(ctx context.Context, req payment.RefundRequest) (payment.Refund, error) {
	op := "refund charge " + req.ChargeID
	switch {
	case req.IdempotencyKey == "":
		return payment.Refund{}, fmt.Errorf("stripe: %s: an idempotency key is required", op)
	case req.ChargeID == "":
		return payment.Refund{}, fmt.Errorf("stripe: refund %s: a charge is required", req.RefundID)
	case req.Amount <= 0:
		return payment.Refund{}, fmt.Errorf("stripe: %s: amount %d is not positive", op, req.Amount)
	}
	params := &stripego.RefundCreateParams{
		PaymentIntent: stripego.String(req.ChargeID),
		Amount:        stripego.Int64(req.Amount),
	}
	if stripeRefundReasons[req.Reason] {
		params.Reason = stripego.String(req.Reason)
	} else if req.Reason != "" {
		params.AddMetadata(metaReason, truncate(req.Reason, maxMetadataValue))
	}
	if req.RefundID != "" {
		params.AddMetadata(metaRefundID, req.RefundID)
	}
	if req.TopUpID != "" {
		params.AddMetadata(metaTopUpID, req.TopUpID)
	}
	params.SetIdempotencyKey(req.IdempotencyKey)
	re, err := p.client.V1Refunds.Create(ctx, params)
	if err != nil {
		return payment.Refund{}, classify(op, err)
	}
	return refundFromStripe(re), nil
}

// truncate cuts s to at most n characters.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// refundFromStripe reduces a Stripe Refund to a payment.Refund. The same
// reading serves Refund, FindRefund and the refund.* webhooks. A refund of
// a charge made without a PaymentIntent (not Topup's) has no ChargeID.
func refundFromStripe(re *stripego.Refund) payment.Refund {
	r := payment.Refund{
		ID:            re.ID,
		RefundID:      re.Metadata[metaRefundID],
		TopUpID:       re.Metadata[metaTopUpID],
		Amount:        re.Amount,
		Currency:      string(re.Currency),
		Status:        refundStatus(re.Status),
		FailureReason: string(re.FailureReason),
	}
	if re.PaymentIntent != nil {
		r.ChargeID = re.PaymentIntent.ID
	}
	if re.Created > 0 {
		r.Created = time.Unix(re.Created, 0).UTC()
	}
	return r
}

// refundStatus maps Stripe's refund statuses; requires_action (refunds to
// some non-card methods) and any status newer than this code are pending:
// not decided yet.
func refundStatus(s stripego.RefundStatus) payment.RefundStatus {
	switch s {
	case stripego.RefundStatusSucceeded:
		return payment.RefundSucceeded
	case stripego.RefundStatusFailed:
		return payment.RefundFailed
	case stripego.RefundStatusCanceled:
		return payment.RefundCanceled
	}
	return payment.RefundPending
}

// FindRefund lists the refunds of the PaymentIntent chargeID, page after
// page, newest first, and returns the one whose metadata names refundID.
// Listing is strongly consistent, so a refund made a moment ago is found.
func (p *Provider) FindRefund(ctx context.Context, chargeID, refundID string) (payment.Refund, bool, error) {
	if chargeID == "" || refundID == "" {
		return payment.Refund{}, false, errors.New("stripe: find refund: a charge and a refund id are required")
	}
	params := &stripego.RefundListParams{PaymentIntent: stripego.String(chargeID)}
	params.Limit = stripego.Int64(p.pageSize)
	for re, err := range p.client.V1Refunds.List(ctx, params).All(ctx) {
		if err != nil {
			return payment.Refund{}, false, classify("find refund "+refundID+" of charge "+chargeID, err)
		}
		if re.Metadata[metaRefundID] == refundID {
			return refundFromStripe(re), true, nil
		}
	}
	return payment.Refund{}, false, nil
}
