// Package refund holds the rules of what happens to a top-up after its
// charge succeeded (PRODUCT.md "Refunds, disputes, receipts and
// statements"): how much may still be refunded, what the provider's word on
// a refund does, and what each event of a dispute does, whatever order the
// events come in. It imports no database and no HTTP: the store loads a
// top-up's refunds and disputes, calls these rules, and writes what they
// return; what an entry takes from which grant is ledger.Wallet.Claw.
// Worker (worker.go) sends refunds to the payment provider, exactly once,
// through a Store interface and payment.Provider.
package refund

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// Status is where a refund is: pending until the provider confirms it,
// then succeeded, or failed (also a refund the provider canceled).
type Status string

// Refund statuses of the public contract.
const (
	Pending   Status = "pending"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
)

// Refund is money given back to the card of a succeeded top-up: asked for
// through the API (ID is Topup's, and the provider key derives from it) or
// made at the provider directly (Stripe's Dashboard), then found by its
// provider id.
type Refund struct {
	ID         string
	AccountID  string
	TopUpID    string
	Amount     money.Amount
	Status     Status
	Reason     string
	ProviderID string // re_…: empty until the provider answered
	// Taken is what the refund entry took from the balance: the amount less
	// what had expired or been voided of the top-up's grant.
	Taken     money.Amount
	CreatedAt time.Time
	// CompletedAt is when the provider's answer was applied.
	CompletedAt time.Time
}

// IdempotencyKey is the provider key of every request for r: derived from
// its id, so that a retried request can never refund twice.
func (r Refund) IdempotencyKey() string { return "refund-" + r.ID }

// Tally is what refunds and disputes have done to one top-up so far.
type Tally struct {
	// Amount is the top-up's amount.
	Amount money.Amount
	// Refunded is the amount of its refunds that succeeded or may still
	// succeed (pending).
	Refunded money.Amount
	// Disputed is what disputes withdrew and did not give back.
	Disputed money.Amount
	// OpenDispute is true while a dispute of its charge is open.
	OpenDispute bool
}

// Refundable is what may still be refunded or disputed of the top-up.
func (t Tally) Refundable() money.Amount { return max(0, t.Amount-t.Refunded-t.Disputed) }

// Check decides the amount of a refund asked for through the API: the whole
// refundable amount when none is given (explicit false), else amount, more
// than zero and at most what is refundable (400 on amount); while a dispute
// of the top-up is open no refund is accepted (409 conflict), since the
// card network, not the merchant, now decides where that money goes.
func Check(t Tally, amount money.Amount, explicit bool) (money.Amount, error) {
	if t.OpenDispute {
		return 0, apperr.New(apperr.Conflict, "a dispute of this top-up is open: it cannot be refunded until the dispute closes")
	}
	left := t.Refundable()
	if !explicit {
		amount = left
	}
	switch {
	case left == 0:
		return 0, apperr.Invalidf("amount", "nothing is left to refund: the top-up was refunded or disputed in full")
	case amount <= 0:
		return 0, apperr.Invalidf("amount", "must be more than zero")
	case amount > left:
		return 0, apperr.Invalidf("amount", "is more than the %s that may still be refunded", left.String())
	}
	return amount, nil
}

// Effect is what the provider's word on a refund does to the ledger.
type Effect struct {
	// Status is the refund's status afterwards.
	Status Status
	// Claw is true when the refund's entry is to be written now (the
	// refund succeeded): ledger.Wallet.Claw of its amount.
	Claw bool
	// Reverse is true when a refund that succeeded has failed after all:
	// what its entry took comes back (a refund_reversal entry).
	Reverse bool
	// Notify is true when the customer is told (top_up.refunded).
	Notify bool
}

// Observe is what the provider saying status (pending, succeeded, failed)
// of r does, whatever order its words come in: a pending refund succeeds
// (its entry is written, once) or fails (nothing moved); one that succeeded
// and then fails gives the money back; a word that would take a refund
// back to an earlier state (pending after succeeded, succeeded after
// failed: a late copy of an older event) changes nothing, so that a
// refund's entry and its reversal are each written at most once.
func (r Refund) Observe(status Status) Effect {
	switch {
	case r.Status == Pending && status == Succeeded:
		return Effect{Status: Succeeded, Claw: true, Notify: true}
	case r.Status == Pending && status == Failed:
		return Effect{Status: Failed}
	case r.Status == Succeeded && status == Failed:
		return Effect{Status: Failed, Reverse: true}
	}
	return Effect{Status: r.Status}
}

// Word is what the provider said of a refund: Topup's own (RefundID, from
// its metadata), or one made at the provider directly (RefundID empty:
// found by ProviderID, else recorded for the top-up whose charge is
// ChargeID).
type Word struct {
	RefundID, ProviderID string
	ChargeID             string
	// AmountMinor is the refund's amount in the currency's minor units
	// (needed only for a refund made at the provider).
	AmountMinor   int64
	Status        Status
	FailureReason string
	Reason        string
}

// Due is a pending refund as the worker asks the provider about it: with
// the charge it refunds and that charge's currency.
type Due struct {
	Refund
	ChargeID string
	Currency money.Currency
	// Attempts counts the claims of the refund so far.
	Attempts int
}

// Request asks for a refund through the API.
type Request struct {
	AccountID, TopUpID string
	// Amount is what the caller asked for; Explicit is false when it
	// gave none (the whole refundable amount).
	Amount         money.Amount
	Explicit       bool
	IdempotencyKey string
	Reason         string
	// Lease is how long the caller owns the new refund's first attempt:
	// the worker claims it only once the lease ran out (a crash).
	Lease time.Duration
}

// Hash is the request's meaning: the same idempotency key with another
// hash is a conflict.
func (r Request) Hash() string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%t|%s", r.TopUpID, r.Amount, r.Explicit, r.Reason)))
	return hex.EncodeToString(sum[:16])
}
