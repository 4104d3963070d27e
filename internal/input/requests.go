package input

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// This file holds the body of every API request that has one, and what can
// be judged of it without the database. Each is read with Decode.

// MaxBatch is the most events one batch may carry.
const MaxBatch = 10_000

// Usage is the body of POST …/usage, and one event of a batch (where
// AccountID is required).
type Usage struct {
	AccountID      *string `json:"account_id,omitempty"`
	Amount         *string `json:"amount"`
	IdempotencyKey *string `json:"idempotency_key"`
	Description    *string `json:"description"`
	Subject        *string `json:"subject"`
}

// Posting validates u for accountID; prefix is "" for a single call and
// "events[3]." in a batch, so refusals name the field as the client sent
// it. max is TOPUP_MAX_AMOUNT.
func (u *Usage) Posting(accountID, prefix string, max money.Amount) (ledger.Posting, error) {
	amount, err := Amount(prefix+"amount", u.Amount, max)
	if err != nil {
		return ledger.Posting{}, err
	}
	debit, err := money.Neg(amount)
	if err != nil {
		return ledger.Posting{}, apperr.Invalidf(prefix+"amount", "is too large")
	}
	key, err := IdempotencyKey(prefix+"idempotency_key", u.IdempotencyKey)
	if err != nil {
		return ledger.Posting{}, err
	}
	desc, err := Text(prefix+"description", u.Description, MaxDescription)
	if err != nil {
		return ledger.Posting{}, err
	}
	subject, err := Text(prefix+"subject", u.Subject, MaxSubject)
	if err != nil {
		return ledger.Posting{}, err
	}
	return ledger.Posting{AccountID: accountID, Kind: ledger.KindUsage, Amount: debit, Description: desc, Subject: subject,
		IdempotencyKey: key, Call: ledger.ScopeUsage}, nil
}

// Batch is the body of POST /v1/usage/batch. Its events are read one by one
// (Event), so that one malformed event spoils only itself.
type Batch struct {
	Events []json.RawMessage `json:"events"`
}

// Check refuses a batch without events or with more than MaxBatch.
func (b *Batch) Check() error {
	switch {
	case b.Events == nil:
		return apperr.Invalidf("events", "is required")
	case len(b.Events) == 0:
		return apperr.Invalidf("events", "must hold at least one event")
	case len(b.Events) > MaxBatch:
		return apperr.Invalidf("events", "at most %d events per batch", MaxBatch)
	}
	return nil
}

// Event reads and validates the batch's event i; refusals name the field
// "events[i].amount".
func Event(raw json.RawMessage, i int, max money.Amount) (ledger.Posting, error) {
	path := "events[" + strconv.Itoa(i) + "]"
	var ev Usage
	if err := decodeAt(raw, &ev, path); err != nil {
		if e := apperr.As(err); e != nil && e.Field == path {
			return ledger.Posting{}, apperr.Invalidf(path, "must be a JSON object with string fields")
		}
		return ledger.Posting{}, err
	}
	if ev.AccountID == nil || *ev.AccountID == "" {
		return ledger.Posting{}, apperr.Invalidf(path+".account_id", "is required")
	}
	return ev.Posting(*ev.AccountID, path+".", max)
}

// Credit is the body of POST …/credits, with the terms of the grant it
// makes (PRODUCT.md "Credit grants and holds").
type Credit struct {
	Amount         *string `json:"amount"`
	IdempotencyKey *string `json:"idempotency_key"`
	Description    *string `json:"description"`
	Kind           *string `json:"kind"`
	Category       *string `json:"category"`
	Priority       *int    `json:"priority"`
	ExpiresAt      *string `json:"expires_at"`
}

// Terms reads the grant's terms at now: category (promotional by
// default), priority (by default 10 for promotional, 50 for paid) and
// expires_at (RFC 3339, null or a future time at most ten years ahead),
// judged by ledger.CheckGrantTerms.
func (c *Credit) Terms(now time.Time) (ledger.GrantTerms, error) {
	t := ledger.GrantTerms{Category: ledger.Promotional}
	if c.Category != nil {
		t.Category = ledger.Category(*c.Category)
	}
	t.Priority = ledger.DefaultPriority(t.Category)
	if c.Priority != nil {
		t.Priority = *c.Priority
	}
	if c.ExpiresAt != nil {
		at, err := time.Parse(time.RFC3339Nano, *c.ExpiresAt)
		if err != nil {
			return t, apperr.Invalidf("expires_at", "must be a time in RFC 3339, such as 2027-01-31T00:00:00Z")
		}
		// The database keeps microseconds.
		t.ExpiresAt = at.UTC().Truncate(time.Microsecond)
	}
	return t, ledger.CheckGrantTerms(t.Category, t.Priority, t.ExpiresAt, now)
}

// Posting validates c for accountID at now; max is TOPUP_MAX_AMOUNT.
func (c *Credit) Posting(accountID string, max money.Amount, now time.Time) (ledger.Posting, error) {
	amount, err := Amount("amount", c.Amount, max)
	if err != nil {
		return ledger.Posting{}, err
	}
	key, err := IdempotencyKey("idempotency_key", c.IdempotencyKey)
	if err != nil {
		return ledger.Posting{}, err
	}
	desc, err := Text("description", c.Description, MaxDescription)
	if err != nil {
		return ledger.Posting{}, err
	}
	kind := ledger.KindCredit
	if c.Kind != nil {
		kind = ledger.Kind(*c.Kind)
		if kind != ledger.KindCredit && kind != ledger.KindAdjustment {
			return ledger.Posting{}, apperr.Invalidf("kind", "must be credit or adjustment")
		}
	}
	terms, err := c.Terms(now)
	if err != nil {
		return ledger.Posting{}, err
	}
	return ledger.Posting{AccountID: accountID, Kind: kind, Amount: amount, Description: desc, IdempotencyKey: key,
		Call: ledger.ScopeCredit, Terms: terms}, nil
}

// Void is the body of POST …/grants/{grant_id}/void.
type Void struct {
	IdempotencyKey *string `json:"idempotency_key"`
}

// Posting validates v for the void of grantID on accountID.
func (v *Void) Posting(accountID, grantID string) (ledger.Posting, error) {
	key, err := IdempotencyKey("idempotency_key", v.IdempotencyKey)
	if err != nil {
		return ledger.Posting{}, err
	}
	return ledger.VoidPosting(accountID, grantID, key), nil
}

// TopUp is the body of POST …/top_ups.
type TopUp struct {
	Amount         *string `json:"amount"`
	IdempotencyKey *string `json:"idempotency_key"`
	PaymentMethod  *string `json:"payment_method"`
}

// Check validates t's amount (at most max, TOPUP_MAX_AMOUNT) and key; the
// card ("" for the default) is judged by the store.
func (t *TopUp) Check(max money.Amount) (amount money.Amount, key, card string, err error) {
	if amount, err = Amount("amount", t.Amount, max); err != nil {
		return 0, "", "", err
	}
	if key, err = IdempotencyKey("idempotency_key", t.IdempotencyKey); err != nil {
		return 0, "", "", err
	}
	if t.PaymentMethod != nil {
		card = *t.PaymentMethod
	}
	return amount, key, card, nil
}

// Refund is the body of POST …/top_ups/{top_up_id}/refunds.
type Refund struct {
	Amount         *string `json:"amount"`
	IdempotencyKey *string `json:"idempotency_key"`
	Reason         *string `json:"reason"`
}

// MaxReason is the most characters of a refund's reason.
const MaxReason = 255

// Check validates r: the amount, when given (absent or null is the whole
// refundable amount), above zero, at most max (TOPUP_MAX_AMOUNT) and whole
// minor units of the top-up's currency c (what the provider can refund);
// the key; a reason of at most MaxReason characters. What is left to
// refund is judged by the store (refund.Check).
func (r *Refund) Check(max money.Amount, c money.Currency) (refund.Request, error) {
	var out refund.Request
	if r.Amount != nil {
		a, err := Amount("amount", r.Amount, max)
		if err != nil {
			return out, err
		}
		if !a.IsWholeMinor(c) {
			return out, apperr.Invalidf("amount", "must be a whole number of %s minor units", c.Code)
		}
		out.Amount, out.Explicit = a, true
	}
	key, err := IdempotencyKey("idempotency_key", r.IdempotencyKey)
	if err != nil {
		return out, err
	}
	reason, err := Text("reason", r.Reason, MaxReason)
	if err != nil {
		return out, err
	}
	out.IdempotencyKey, out.Reason = key, reason
	return out, nil
}

// CreateAccount is the body of POST /v1/accounts; the email and currency
// are judged by ledger.NewAccount.
type CreateAccount struct {
	Email    *string `json:"email"`
	Currency *string `json:"currency"`
}

// UpdateAccount is the body of PATCH /v1/accounts/{id}.
type UpdateAccount struct {
	Email  *string `json:"email"`
	Status *string `json:"status"`
}

// Update validates u.
func (u *UpdateAccount) Update() (ledger.AccountUpdate, error) {
	var out ledger.AccountUpdate
	if u.Email != nil {
		if err := ledger.ValidEmail(*u.Email); err != nil {
			return out, err
		}
		out.Email = u.Email
	}
	if u.Status != nil {
		st := ledger.Status(*u.Status)
		if st != ledger.Active && st != ledger.Closed {
			return out, apperr.Invalidf("status", "must be active or closed")
		}
		out.Status = &st
	}
	return out, nil
}

// AutoTopUp is the body of PUT …/auto_top_up.
type AutoTopUp struct {
	Enabled       json.RawMessage `json:"enabled"`
	Threshold     json.RawMessage `json:"threshold"`
	Target        json.RawMessage `json:"target"`
	PaymentMethod json.RawMessage `json:"payment_method"`
	MonthlyLimit  json.RawMessage `json:"monthly_limit"`
}

// Input reads a's fields; the rules that need the account (currency,
// cards, TOPUP_MAX_TARGET) are the engine's.
func (a *AutoTopUp) Input() (topup.Input, error) {
	var in topup.Input
	if a.Enabled != nil {
		var b bool
		if err := json.Unmarshal(a.Enabled, &b); err != nil {
			return in, apperr.Invalidf("enabled", "must be true or false")
		}
		in.Enabled = &b
	}
	var err error
	if in.Threshold, _, err = OptionalAmount("threshold", a.Threshold); err != nil {
		return in, err
	}
	if in.Target, _, err = OptionalAmount("target", a.Target); err != nil {
		return in, err
	}
	if in.MonthlyLimit, in.MonthlyLimitSet, err = OptionalAmount("monthly_limit", a.MonthlyLimit); err != nil {
		return in, err
	}
	if a.PaymentMethod != nil && string(a.PaymentMethod) != "null" {
		var pm string
		if err := json.Unmarshal(a.PaymentMethod, &pm); err != nil {
			return in, apperr.Invalidf("payment_method", "must be a payment method id")
		}
		in.PaymentMethod = &pm
	}
	return in, nil
}

// OptionalAmount reads a money string that may be absent (nil, false) or
// null (nil, true).
func OptionalAmount(field string, raw json.RawMessage) (*money.Amount, bool, error) {
	if raw == nil {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return nil, true, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, true, apperr.Invalidf(field, "must be a decimal string such as \"10.00\"")
	}
	a, err := money.Parse(v)
	if err != nil {
		return nil, true, apperr.Invalidf(field, "%v", err)
	}
	return &a, true, nil
}

// Thresholds is the body of PUT …/low_balance_alerts.
type Thresholds struct {
	Thresholds *[]json.RawMessage `json:"thresholds"`
}

// Amounts reads the thresholds; an empty list removes the alerts.
func (t *Thresholds) Amounts() ([]money.Amount, error) {
	if t.Thresholds == nil {
		return nil, apperr.Invalidf("thresholds", "is required: a list of amounts such as [\"20.00\", \"5.00\"] (an empty list removes the alerts)")
	}
	amounts := make([]money.Amount, 0, len(*t.Thresholds))
	for i, raw := range *t.Thresholds {
		field := "thresholds[" + strconv.Itoa(i) + "]"
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, apperr.Invalidf(field, "must be a decimal string such as \"20.00\"")
		}
		a, err := money.Parse(v)
		if err != nil {
			return nil, apperr.Invalidf(field, "%v", err)
		}
		amounts = append(amounts, a)
	}
	return amounts, nil
}

// Budget is the body of POST and PUT …/budgets; the subject, kind and
// limit are judged by alert.BudgetInput.
type Budget struct {
	Subject *string         `json:"subject"`
	Kind    *string         `json:"kind"`
	Limit   json.RawMessage `json:"limit"`
}

// LimitAmount reads the limit (null or absent: nil).
func (b *Budget) LimitAmount() (*money.Amount, error) {
	limit, _, err := OptionalAmount("limit", b.Limit)
	return limit, err
}

// Endpoint is the body of POST …/webhook_endpoints; the URL is judged by
// notify.CheckURL.
type Endpoint struct {
	URL *string `json:"url"`
}

// AttachCard is the body of POST …/payment_methods.
type AttachCard struct {
	PaymentMethod *string `json:"payment_method"`
}

// Check requires the payment method.
func (a *AttachCard) Check() (string, error) {
	if a.PaymentMethod == nil || *a.PaymentMethod == "" {
		return "", apperr.Invalidf("payment_method", "is required, e.g. pm_card_visa")
	}
	return *a.PaymentMethod, nil
}

// Hold is the body of POST …/holds.
type Hold struct {
	Amount         *string `json:"amount"`
	IdempotencyKey *string `json:"idempotency_key"`
	Subject        *string `json:"subject"`
	Description    *string `json:"description"`
	// ExpiresIn is the hold's lifetime in seconds (ledger.HoldLifetime).
	ExpiresIn *int64 `json:"expires_in"`
}

// Request validates h for accountID; max is TOPUP_MAX_AMOUNT.
func (h *Hold) Request(accountID string, max money.Amount) (ledger.HoldRequest, error) {
	amount, err := Amount("amount", h.Amount, max)
	if err != nil {
		return ledger.HoldRequest{}, err
	}
	key, err := IdempotencyKey("idempotency_key", h.IdempotencyKey)
	if err != nil {
		return ledger.HoldRequest{}, err
	}
	subject, err := Text("subject", h.Subject, MaxSubject)
	if err != nil {
		return ledger.HoldRequest{}, err
	}
	desc, err := Text("description", h.Description, MaxDescription)
	if err != nil {
		return ledger.HoldRequest{}, err
	}
	life, err := ledger.HoldLifetime(h.ExpiresIn)
	if err != nil {
		return ledger.HoldRequest{}, err
	}
	return ledger.HoldRequest{AccountID: accountID, Amount: amount, IdempotencyKey: key, Subject: subject, Description: desc, Lifetime: life}, nil
}

// Capture is the body of POST …/holds/{hold_id}/capture.
type Capture struct {
	Amount         *string `json:"amount"`
	IdempotencyKey *string `json:"idempotency_key"`
	Description    *string `json:"description"`
}

// Posting validates c as the capture of hold: usage of amount (the whole
// hold when it is left out; zero or more than the hold is refused, by
// ledger.Hold.Capture, where the hold is locked) with the hold's subject,
// so that budgets count it as they count usage. max is TOPUP_MAX_AMOUNT.
func (c *Capture) Posting(hold ledger.Hold, max money.Amount) (ledger.Posting, error) {
	amount := hold.Amount
	if c.Amount != nil {
		var err error
		if amount, err = Amount("amount", c.Amount, max); err != nil {
			return ledger.Posting{}, err
		}
	}
	key, err := IdempotencyKey("idempotency_key", c.IdempotencyKey)
	if err != nil {
		return ledger.Posting{}, err
	}
	desc, err := Text("description", c.Description, MaxDescription)
	if err != nil {
		return ledger.Posting{}, err
	}
	return ledger.Posting{AccountID: hold.AccountID, Kind: ledger.KindUsage, Amount: -amount, Description: desc, Subject: hold.Subject,
		IdempotencyKey: key, Call: ledger.ScopeCapture, HoldID: hold.ID}, nil
}
