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
	ID   string // evt_…: applied once
	Type string // payment_intent.succeeded, payment_intent.payment_failed, checkout.session.completed, setup_intent.succeeded, payment_method.detached
	// Charge is set for payment_intent.* events; Charge.TopUpID comes from
	// the metadata.
	Charge *Charge
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
