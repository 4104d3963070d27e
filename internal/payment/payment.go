// Package payment is the small interface between Topup and a card payment
// provider: Stripe in production, the in-process sandbox otherwise. Only ids
// and display data (brand, last4, expiry) ever reach Topup; no card data.
package payment

import (
	"context"
	"errors"
	"time"
)

// Card is a saved payment method as Topup keeps it.
type Card struct {
	// ID is the provider's payment method id (pm_…); attaching the same
	// test card twice gives two ids, as in Stripe.
	ID       string
	Brand    string
	Last4    string
	ExpMonth int
	ExpYear  int
}

// ChargeStatus is what the provider says of a charge.
type ChargeStatus string

// Charge statuses. Processing means the provider has not decided yet: the
// answer comes by webhook or by looking the charge up later.
const (
	Succeeded      ChargeStatus = "succeeded"
	Declined       ChargeStatus = "declined"
	RequiresAction ChargeStatus = "requires_action"
	Processing     ChargeStatus = "processing"
)

// ChargeRequest asks for one charge. The same IdempotencyKey always gets the
// same charge back (Stripe keeps keys 24 hours; FindCharge covers after).
type ChargeRequest struct {
	TopUpID        string // kept in the charge's metadata, for FindCharge
	IdempotencyKey string
	Customer       string
	PaymentMethod  string
	Amount         int64 // in the currency's minor units (cents)
	Currency       string
	OffSession     bool // true for Automatic Top-Up: the customer is not present
	Description    string
}

// Charge is the provider's record of one charge attempt (a PaymentIntent).
type Charge struct {
	ID       string // pi_…
	TopUpID  string
	Status   ChargeStatus
	Amount   int64
	Currency string
	// DeclineCode says why a charge was declined (card_declined,
	// insufficient_funds, lost_card, stolen_card, authentication_required…).
	DeclineCode string
	// ClientSecret lets the customer's browser complete a requires_action
	// charge on-session (Stripe.js, or the sandbox's challenge page).
	ClientSecret string
	// PaymentMethodID is, on a RequiresAction charge, the card the customer
	// confirms it with. After an off-session authentication_required failure
	// a Stripe PaymentIntent no longer holds its card (it waits for a
	// payment method; the card is only in last_payment_error), so the 3-D
	// Secure page must name it again when it confirms.
	PaymentMethodID string
	Created         time.Time
}

// ErrUnknownOutcome wraps failures after which the provider may or may not
// have charged: timeouts, connection resets, 5xx. The caller retries with
// the same idempotency key, or looks the charge up.
var ErrUnknownOutcome = errors.New("payment: outcome unknown")

// ErrNotFound is returned for ids the provider does not know.
var ErrNotFound = errors.New("payment: not found")

// ErrCardRefused wraps a payment method the provider would not attach.
var ErrCardRefused = errors.New("payment: payment method refused")

// Provider is a card payment provider.
type Provider interface {
	// Name is "sandbox" or "stripe".
	Name() string
	// EnsureCustomer returns the provider customer for an account, creating
	// it when customerID is empty.
	EnsureCustomer(ctx context.Context, customerID, accountID, email string) (string, error)
	// AttachPaymentMethod attaches a payment method (a token such as
	// pm_card_visa, or one made on the hosted page) to the customer and
	// returns the saved card. ErrCardRefused when the provider refuses it.
	AttachPaymentMethod(ctx context.Context, customerID, paymentMethod string) (Card, error)
	// DetachPaymentMethod removes a saved card from its customer.
	DetachPaymentMethod(ctx context.Context, paymentMethodID string) error
	// SetupURL returns the hosted page where a person adds a card for later
	// off-session use (Stripe Checkout in setup mode, or the sandbox page);
	// the browser comes back to successURL with the session id appended.
	SetupURL(ctx context.Context, customerID, accountID, successURL, cancelURL string) (string, error)
	// CompleteSetup returns the card saved by a finished hosted setup
	// session of customerID; a session of another customer is refused, so a
	// session id cannot carry a card into someone else's account.
	CompleteSetup(ctx context.Context, customerID, sessionID string) (Card, error)
	// Charge creates and confirms a charge at once. An error wrapping
	// ErrUnknownOutcome means it may have happened.
	Charge(ctx context.Context, req ChargeRequest) (Charge, error)
	// GetCharge returns a charge by its id.
	GetCharge(ctx context.Context, chargeID string) (Charge, error)
	// CancelCharge cancels a charge that still waits for the customer
	// (requires_action), so that an authentication after Topup gave up can no
	// longer take the money, and returns the charge as it then is: one that
	// already succeeded stays succeeded. ErrUnknownOutcome when the provider
	// could not be asked.
	CancelCharge(ctx context.Context, chargeID string) (Charge, error)
	// FindCharge finds the charge made for a top-up by the top-up id kept in
	// its metadata; ok is false when there is none.
	FindCharge(ctx context.Context, customerID, topUpID string) (Charge, bool, error)
	// Refund refunds req.Amount of the succeeded charge req.ChargeID under
	// req.IdempotencyKey, with req.RefundID and req.TopUpID in the refund's
	// metadata, and returns the refund as the provider then holds it:
	// usually RefundSucceeded, RefundPending when the provider decides
	// later (its outcome then comes by a refund.updated or refund.failed
	// event, or from FindRefund), and a refund may still fail after it
	// succeeded (refund.failed). The same key returns the same refund
	// (Stripe keeps keys 24 hours; FindRefund covers after).
	//
	// Errors: one wrapping ErrUnknownOutcome (a timeout, a 5xx, a 409 or
	// 429, the sandbox's own storage, or the sandbox failing to deliver
	// the refund's events) means the refund may have been made: retry
	// with the same key, or look it up with FindRefund. The provider's
	// events about the refund may reach Topup before Refund answers (the
	// sandbox sends them before it answers), so call it outside any
	// transaction and match events by RefundID. Any other
	// error means nothing was refunded and retrying the same request will
	// not help: more than the charge's amount less what was refunded, a
	// charge that did not succeed or is disputed, an unknown charge, a key
	// reused with other parameters (the sandbox wraps its ErrKeyReused), a
	// bad API key.
	Refund(ctx context.Context, req RefundRequest) (Refund, error)
	// FindRefund finds the refund of charge chargeID whose metadata names
	// refundID (Topup's refund id) by listing the charge's refunds, for
	// when the idempotency key is forgotten; ok is false when there is
	// none. A failure to ask gives an error wrapping ErrUnknownOutcome
	// (ok false means nothing only when err is nil). An unknown charge
	// gives an error wrapping ErrNotFound in the sandbox and on a Stripe
	// 404; Stripe may also answer a plain error or an empty list.
	FindRefund(ctx context.Context, chargeID, refundID string) (Refund, bool, error)
}

// RefundStatus is what the provider says of a refund.
type RefundStatus string

// Refund statuses, Stripe's. Pending becomes succeeded, failed or canceled
// later; succeeded may still become failed (the card was closed), which
// gives the money back to the merchant.
const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
	RefundCanceled  RefundStatus = "canceled"
)

// RefundRequest asks for one refund of a charge. The same IdempotencyKey
// always gets the same refund back.
type RefundRequest struct {
	// RefundID is Topup's id of the refund, kept in the refund's metadata
	// (refund_id), for FindRefund and to tell Topup's own refunds from
	// those made at the provider directly.
	RefundID       string
	IdempotencyKey string
	// ChargeID is the charge refunded, as Charge.ID (pi_…).
	ChargeID string
	TopUpID  string // kept in the refund's metadata (top_up_id)
	Amount   int64  // in the currency's minor units, positive
	Currency string // the charge's
	// Reason is free text; Stripe's own reasons (duplicate, fraudulent,
	// requested_by_customer) are passed as the refund's reason, any other
	// text is kept in its metadata (reason).
	Reason string
}

// Refund is the provider's record of one refund.
type Refund struct {
	ID string // re_…
	// RefundID is Topup's refund id from the metadata; empty for a refund
	// made at the provider directly (Stripe's Dashboard).
	RefundID string
	ChargeID string // pi_…, as Charge.ID
	// TopUpID is the top-up id from the refund's metadata, else from its
	// charge's; empty when neither names one.
	TopUpID  string
	Amount   int64 // minor units
	Currency string
	Status   RefundStatus
	// FailureReason says why a refund failed (Stripe's failure_reason:
	// expired_or_canceled_card, lost_or_stolen_card, declined,
	// insufficient_funds, merchant_request, unknown…).
	FailureReason string
	Created       time.Time
}

// DisputeStatus is what the provider says of a dispute: Stripe's statuses.
type DisputeStatus string

// Dispute statuses. The warning_* ones are inquiries, which withdraw no
// funds; won, lost, warning_closed and prevented are final.
const (
	DisputeWarningNeedsResponse DisputeStatus = "warning_needs_response"
	DisputeWarningUnderReview   DisputeStatus = "warning_under_review"
	DisputeWarningClosed        DisputeStatus = "warning_closed"
	DisputeNeedsResponse        DisputeStatus = "needs_response"
	DisputeUnderReview          DisputeStatus = "under_review"
	DisputeWon                  DisputeStatus = "won"
	DisputeLost                 DisputeStatus = "lost"
	DisputePrevented            DisputeStatus = "prevented"
)

// Closed reports whether the dispute is decided: won, lost, an inquiry
// closed, or prevented.
func (s DisputeStatus) Closed() bool {
	switch s {
	case DisputeWon, DisputeLost, DisputeWarningClosed, DisputePrevented:
		return true
	}
	return false
}

// Dispute is the provider's record of a cardholder's dispute of a charge
// (a chargeback, or an inquiry before one).
type Dispute struct {
	ID       string // dp_…
	ChargeID string // pi_…, as Charge.ID
	// TopUpID is the top-up id from the charge's metadata; empty when the
	// provider could not tell (then Topup finds the top-up by ChargeID).
	TopUpID  string
	Amount   int64 // minor units: what the cardholder disputes
	Currency string
	Status   DisputeStatus
	Reason   string // Stripe's reason: fraudulent, duplicate, general…
	// FundsWithdrawn says Amount was taken from the merchant
	// (charge.dispute.funds_withdrawn, or a withdrawal among the dispute's
	// balance transactions); an inquiry withdraws nothing.
	FundsWithdrawn bool
	// FundsReinstated says the withdrawn funds came back: a won dispute
	// (charge.dispute.funds_reinstated).
	FundsReinstated bool
	Created         time.Time
}

// NeverRetry lists decline codes after which a card must not be charged
// again automatically (Stripe's "do not try again" codes).
var NeverRetry = map[string]bool{
	"lost_card":                         true,
	"stolen_card":                       true,
	"pickup_card":                       true,
	"restricted_card":                   true,
	"fraudulent":                        true,
	"merchant_blacklist":                true,
	"security_violation":                true,
	"invalid_account":                   true,
	"new_account_information_available": true,
	"revocation_of_all_authorizations":  true,
	"revocation_of_authorization":       true,
	"stop_payment_order":                true,
}

// Event is a provider webhook event, reduced to what Topup acts on.
type Event struct {
	ID string // evt_…: applied once
	// Type is one of payment_intent.succeeded, payment_intent.payment_failed,
	// checkout.session.completed, setup_intent.succeeded,
	// payment_method.detached, refund.created, refund.updated,
	// refund.failed, charge.dispute.created,
	// charge.dispute.funds_withdrawn, charge.dispute.funds_reinstated,
	// charge.dispute.closed (others are read with only ID, Type and
	// Created). charge.refunded is not read: since Stripe's API version
	// 2022-11-15 it no longer carries its refunds.
	Type string
	// Charge is set for payment_intent.* events; Charge.TopUpID comes from
	// the metadata.
	Charge *Charge
	// Refund is set for refund.* events: the refund as it stands after
	// the event (refund.failed: Status RefundFailed).
	Refund *Refund
	// Dispute is set for charge.dispute.* events: the dispute as it stands
	// after the event (funds_withdrawn: FundsWithdrawn set; closed: Status
	// won, lost or warning_closed).
	Dispute *Dispute
	// Card and Customer are set for setup events and payment_method.detached
	// (Card.ID only, for detached).
	Card     *Card
	Customer string
	// AccountID is the account named in a setup session's metadata.
	AccountID string
	Created   time.Time
}

// ErrBadSignature is returned for a webhook whose signature is missing,
// wrong or too old; it changes nothing.
var ErrBadSignature = errors.New("payment: bad webhook signature")
