// Package topup holds Automatic Top-Up's types and rules: settings and their
// validation, when a top-up is due, what amount it charges, and what each
// provider outcome does. It imports no database and no HTTP; the engine
// (engine.go) drives a Store and a payment.Provider with these rules.
package topup

import (
	"encoding/json"
	"time"

	"github.com/topup/topup/internal/payment"

	"github.com/topup/topup/internal/money"
)

// Status is where a top-up stands.
type Status string

// Top-up statuses. Pending, processing and requires_action are open.
const (
	Pending        Status = "pending"
	Processing     Status = "processing"
	Succeeded      Status = "succeeded"
	Failed         Status = "failed"
	RequiresAction Status = "requires_action"
	Canceled       Status = "canceled"
)

// Open reports whether the top-up may still change.
func (s Status) Open() bool { return s == Pending || s == Processing || s == RequiresAction }

// Trigger says what created a top-up.
type Trigger string

// Triggers of the public contract.
const (
	TriggerThreshold Trigger = "threshold"
	TriggerManual    Trigger = "manual"
	TriggerSettings  Trigger = "settings"
)

// Failure codes Topup sets itself (decline codes come from the provider).
const (
	NotNeeded             = "not_needed"
	AuthenticationExpired = "authentication_expired"
	// ProcessingError: the provider refused the charge request itself.
	ProcessingError = "processing_error"
	// AccountClosed cancels a top-up not yet attempted when its account is
	// closed; it is also the disabled_reason of Automatic Top-Up then.
	AccountClosed = "account_closed"
)

// Reasons Automatic Top-Up was switched off.
const (
	RepeatedDeclines     = "repeated_declines"
	CardNotRetryable     = "card_not_retryable"
	PaymentMethodRemoved = "payment_method_removed"
	// Disputed: a cardholder disputed one of the account's top-ups.
	Disputed = "dispute"
)

// AfterClose returns the settings of an account being closed: Automatic
// Top-Up switched off with disabled_reason account_closed. changed is false
// when it was already off (the reason it was switched off then is kept).
func (s Settings) AfterClose(now time.Time) (next Settings, changed bool) {
	return s.SwitchOff(AccountClosed, now)
}

// SwitchOff returns the settings with Automatic Top-Up switched off for
// reason (account_closed, dispute). changed is false when it was already
// off (the reason it was switched off then is kept).
func (s Settings) SwitchOff(reason string, now time.Time) (next Settings, changed bool) {
	if !s.Enabled {
		return s, false
	}
	s.Enabled, s.DisabledReason, s.UpdatedAt = false, reason, now
	return s, true
}

// AfterCardRemoved returns the settings once card is removed from the
// account, cardsLeft saying whether any card remains. Settings never keep
// naming a card that is gone, enabled or not (a later save leaving
// payment_method out would otherwise be refused for a card the customer no
// longer has). Automatic Top-Up switches off (payment_method_removed) when
// it named that card, or used the default and no card is left; otherwise it
// follows the new default. changed says whether anything is to be written,
// disabled whether it was switched off.
func (s Settings) AfterCardRemoved(card string, cardsLeft bool, now time.Time) (next Settings, changed, disabled bool) {
	named := s.PaymentMethod == card
	if named {
		s.PaymentMethod, s.UpdatedAt = "", now
	}
	if !s.Enabled || (!named && cardsLeft) {
		return s, named, false
	}
	s.Enabled, s.DisabledReason, s.UpdatedAt = false, PaymentMethodRemoved, now
	return s, true, true
}

// MaxFailuresInRow is how many failed automatic top-ups in a row switch
// Automatic Top-Up off.
const MaxFailuresInRow = 3

// ActionTTL is how long a requires_action top-up waits for the customer.
const ActionTTL = 24 * time.Hour

// KeyTTL is how long the provider remembers an idempotency key (Stripe: 24
// hours); after it, a charge is looked up before it is sent again.
const KeyTTL = 24 * time.Hour

// TopUp is one charge of the customer's card that credits the ledger.
type TopUp struct {
	ID             string
	AccountID      string
	Status         Status
	Trigger        Trigger
	Amount         *money.Amount // nil until fixed, just before the first attempt
	Currency       money.Currency
	PaymentMethod  string
	FailureCode    string
	ChargeID       string
	ClientSecret   string
	ActionToken    string
	Attempts       int
	FirstAttemptAt time.Time // zero before the first attempt
	NextAttemptAt  time.Time
	ActionExpires  time.Time
	CrossedAt      time.Time // when the balance crossed the threshold (or the request came)
	CreatedAt      time.Time
	CompletedAt    time.Time
	// AmountRefunded is what its succeeded refunds gave back (a refund
	// that failed after it succeeded no longer counts).
	AmountRefunded money.Amount
}

// IdempotencyKey is the provider key of every attempt of t: derived from its
// id, so a retried request can never charge twice.
func (t TopUp) IdempotencyKey() string { return "topup-" + t.ID }

// Settings are an account's Automatic Top-Up settings.
type Settings struct {
	Enabled        bool
	Threshold      *money.Amount
	Target         *money.Amount
	PaymentMethod  string // empty: the account's default card
	MonthlyLimit   *money.Amount
	DisabledReason string
	FailureStreak  int
	RetryAfter     time.Time
	LimitNotified  string // "2026-11": the month the customer was told of the limit
	UpdatedAt      time.Time
}

// Month is the calendar month (UTC) of t, as "2006-01".
func Month(t time.Time) string { return t.UTC().Format("2006-01") }

// MonthStart returns 00:00 UTC on the first of t's month.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Due decides, in the transaction that lowered the available credit (the
// balance less what holds reserve: ledger.Account.Available), whether a new
// automatic top-up must be created: enabled, available strictly below the
// threshold, none open, and past the back-off of the last failure.
func (s Settings) Due(available money.Amount, hasOpen bool, now time.Time) bool {
	return s.Enabled && s.Threshold != nil && available < *s.Threshold && !hasOpen && !now.Before(s.RetryAfter)
}

// Allowance returns what monthly_limit still allows this month given what
// automatic top-ups succeeded or are open (monthToDate); ok is false when
// there is no limit.
func (s Settings) Allowance(monthToDate money.Amount) (money.Amount, bool) {
	if s.MonthlyLimit == nil {
		return 0, false
	}
	left := *s.MonthlyLimit - monthToDate
	if left < 0 {
		left = 0
	}
	return left, true
}

// ChargeAmount fixes the amount of an automatic top-up just before its first
// attempt: target - available (the balance less what holds reserve),
// rounded up to the minor unit, at least the minimum charge, never beyond
// the monthly allowance. cancel is true when available is no longer below
// the threshold, or the allowance is below the minimum charge.
func (s Settings) ChargeAmount(available, monthToDate money.Amount, c money.Currency) (amount money.Amount, cancel bool) {
	if s.Threshold == nil || s.Target == nil || available >= *s.Threshold {
		return 0, true
	}
	need, err := money.Sub(*s.Target, available)
	if err != nil {
		return 0, true
	}
	need, err = need.RoundUpMinor(c)
	if err != nil {
		return 0, true
	}
	need = max(need, c.MinCharge)
	if left, ok := s.Allowance(monthToDate); ok {
		if left < c.MinCharge {
			return 0, true
		}
		if need > left {
			// Whole minor units only: round the allowance down.
			unit := money.Amount(pow10(6 - c.Minor))
			need = left / unit * unit
		}
	}
	return need, false
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// AfterFailure returns the settings after an automatic top-up failed with
// code: the streak grows, the next attempt waits for backoff, and Automatic
// Top-Up switches off after MaxFailuresInRow or at once for a card that must
// never be retried. disabled names the reason when it switched off.
func (s Settings) AfterFailure(code string, neverRetry bool, now time.Time, backoff time.Duration) (next Settings, disabled string) {
	s.RetryAfter = now.Add(backoff)
	if code == ProcessingError {
		// The provider refused the request, not the card (a card gone at
		// the provider, or the operator's key): wait, but do not count a
		// decline, so a misconfiguration cannot switch off every account.
		return s, ""
	}
	s.FailureStreak++
	switch {
	case neverRetry:
		disabled = CardNotRetryable
	case s.FailureStreak >= MaxFailuresInRow:
		disabled = RepeatedDeclines
	}
	if disabled != "" && s.Enabled {
		s.Enabled = false
		s.DisabledReason = disabled
	} else {
		disabled = ""
	}
	return s, disabled
}

// Outcome is what became of one attempt, to be applied by Settle.
type Outcome struct {
	// Status is Succeeded, Failed, RequiresAction, Canceled, or Processing
	// (unknown: try again at RetryAt with the same key).
	Status       Status
	ChargeID     string
	FailureCode  string
	NeverRetry   bool
	ClientSecret string
	ActionToken  string
	RetryAt      time.Time
	// EventID, when set, is the provider webhook that told us; it is applied
	// once.
	EventID   string
	EventType string
	// PayURL is where the customer completes a challenge (the engine's
	// Config.PayURL), for the action_url in the event of a RequiresAction
	// outcome; "" leaves it null.
	PayURL string
	// Charged, for a success, is what the provider charged in the
	// currency's minor units (zero: not known, the top-up's amount). It
	// differs from the top-up's amount only when a charge made under the
	// top-up's key was found that Topup's records do not know of — a
	// database restored from before it — and then the credit is what was
	// charged.
	Charged int64
}

// Settled is what Settle did, for metrics and logs.
type Settled struct {
	TopUp    TopUp
	Changed  bool
	Credited bool
	Next     *TopUp // a new automatic top-up created because the balance is still low
	Disabled string // why Automatic Top-Up was switched off, if it was
}

// Card is a saved payment method of an account.
type Card struct {
	payment.Card
	AccountID string
	Default   bool
	CreatedAt time.Time
}

// AuditEntry is one change of settings.
type AuditEntry struct {
	ID        string
	Actor     string
	Old, New  json.RawMessage
	CreatedAt time.Time
}

// Notification is one event an account was told of.
type Notification struct {
	ID        string
	AccountID string
	Type      string
	Data      json.RawMessage
	CreatedAt time.Time
}
