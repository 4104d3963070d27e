package client

import (
	"encoding/json"
	"time"
)

// List is one page of any list: newest first; HasMore says a next page
// exists (ask for it with StartingAfter set to the last item's id).
type List[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
}

// Account is a customer's prepaid account.
type Account struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	Currency string `json:"currency"`
	Balance  Money  `json:"balance"`
	// Status is active or closed.
	Status    string `json:"status"`
	Spendable bool   `json:"spendable"`
	// Reason says why Spendable is false: insufficient_balance,
	// budget_exhausted or account_closed.
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// APIKey is the account's first key, set only in CreateAccount's
	// answer: it is never shown again.
	APIKey string `json:"api_key,omitempty"`
	// Credit, Held and Available are set by GetAccount: what remains of
	// the grants by category, what holds reserve, and the balance less it.
	Credit    *Credit `json:"credit,omitempty"`
	Held      Money   `json:"held,omitempty"`
	Available Money   `json:"available,omitempty"`
	// AutoTopUp is set by GetAccount.
	AutoTopUp *AutoTopUp `json:"auto_top_up,omitempty"`
}

// AccountParams creates an account: Currency defaults to usd.
type AccountParams struct {
	Email    string `json:"email"`
	Currency string `json:"currency,omitempty"`
}

// AccountUpdateParams changes an account: the fields left empty are kept.
// Status "closed" closes it (it is never charged again), "active" reopens.
type AccountUpdateParams struct {
	Email  string `json:"email,omitempty"`
	Status string `json:"status,omitempty"`
}

// Spendable says whether an account (or one subject of it) may still spend.
type Spendable struct {
	Spendable bool `json:"spendable"`
	// Reason is insufficient_balance, budget_exhausted or account_closed.
	Reason   string `json:"reason,omitempty"`
	BudgetID string `json:"budget_id,omitempty"`
}

// UsageParams records usage. IdempotencyKey is made by the client when
// empty; give your own (the id of the metered call) so that sending the
// same usage again, from anywhere, records it once.
type UsageParams struct {
	Amount         Money  `json:"amount"`
	IdempotencyKey string `json:"idempotency_key"`
	Description    string `json:"description,omitempty"`
	Subject        string `json:"subject,omitempty"`
}

// UsageResult is what usage or a credit did: the entry and the balance after.
type UsageResult struct {
	EntryID   string `json:"entry_id"`
	Balance   Money  `json:"balance"`
	Currency  string `json:"currency"`
	Spendable bool   `json:"spendable"`
	// Reason says why Spendable is false.
	Reason string `json:"reason,omitempty"`
	// TopUpID is the automatic top-up this call started, if any.
	TopUpID   string    `json:"top_up_id,omitempty"`
	GrantID   string    `json:"grant_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Replayed is true when the key had been used before and this is the
	// first call's answer (nothing new was recorded).
	Replayed bool `json:"replayed"`
}

// BatchEvent is one usage event of a batch.
type BatchEvent struct {
	AccountID      string `json:"account_id"`
	Amount         Money  `json:"amount"`
	IdempotencyKey string `json:"idempotency_key"`
	Description    string `json:"description,omitempty"`
	Subject        string `json:"subject,omitempty"`
}

// BatchEventResult is one event's outcome: its UsageResult, or Error when
// that event alone was refused (Error.Field names it: "events[3].amount").
type BatchEventResult struct {
	UsageResult
	Error *Error `json:"error,omitempty"`
}

// BatchResult has one result per event, in the order sent.
type BatchResult struct {
	Results []BatchEventResult `json:"results"`
}

// CreditParams adds credit. Kind is credit (the default) or adjustment.
type CreditParams struct {
	Amount         Money  `json:"amount"`
	IdempotencyKey string `json:"idempotency_key"`
	Description    string `json:"description,omitempty"`
	Kind           string `json:"kind,omitempty"`
	// Category is promotional (the default) or paid; Priority (nil: 10 for
	// promotional, 50 for paid) orders spending, lower first; ExpiresAt
	// (nil: never) is when the grant expires.
	Category  string     `json:"category,omitempty"`
	Priority  *int       `json:"priority,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Statement is an account's statement of one UTC month: the balance
// before it, every entry of the month oldest first, the balance after.
type Statement struct {
	AccountID      string  `json:"account_id"`
	Month          string  `json:"month"`
	Currency       string  `json:"currency"`
	OpeningBalance Money   `json:"opening_balance"`
	ClosingBalance Money   `json:"closing_balance"`
	Entries        []Entry `json:"entries"`
}

// Entry is one ledger entry; Amount is signed (usage is negative).
type Entry struct {
	ID             string    `json:"id"`
	Kind           string    `json:"kind"`
	Amount         Money     `json:"amount"`
	BalanceAfter   Money     `json:"balance_after"`
	Description    string    `json:"description"`
	Subject        string    `json:"subject,omitempty"`
	IdempotencyKey string    `json:"idempotency_key"`
	TopUpID        string    `json:"top_up_id,omitempty"`
	GrantID        string    `json:"grant_id,omitempty"`
	HoldID         string    `json:"hold_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	// Funding says which grants a negative entry took its money from, in
	// spending order; nil on positive entries.
	Funding []Funding `json:"funding,omitempty"`
}

// Funding is one line of an entry's funding: GrantID is empty for what
// overdraft covered (Category "overdraft").
type Funding struct {
	GrantID  string `json:"grant_id,omitempty"`
	Category string `json:"category"`
	Amount   Money  `json:"amount"`
}

// Grant is one amount that added credit, and what remains of it.
type Grant struct {
	ID string `json:"id"`
	// Category is paid or promotional.
	Category string `json:"category"`
	// Source is top_up, credit, adjustment, dispute_reversal or migration;
	// SourceID the top-up, the credit's entry or the dispute.
	Source    string `json:"source"`
	SourceID  string `json:"source_id,omitempty"`
	Amount    Money  `json:"amount"`
	Remaining Money  `json:"remaining"`
	// Priority: lower is spent first.
	Priority int `json:"priority"`
	// ExpiresAt is nil for a grant that never expires.
	ExpiresAt *time.Time `json:"expires_at"`
	// Status is active, used, expired or voided.
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// Replayed is true when VoidGrant's key was used before: the first
	// answer, as it was.
	Replayed bool `json:"-"`
}

// VoidParams voids a grant; an empty key gets a fresh one.
type VoidParams struct {
	IdempotencyKey string `json:"idempotency_key"`
}

// GrantListParams lists grants: Status keeps those of one status.
type GrantListParams struct {
	ListParams
	Status string
}

// Credit is what remains of an account's grants, by category.
type Credit struct {
	Paid        Money `json:"paid"`
	Promotional Money `json:"promotional"`
}

// AutoTopUp is an account's Automatic Top-Up settings; the amounts are nil
// until first saved.
type AutoTopUp struct {
	Enabled       bool    `json:"enabled"`
	Threshold     *Money  `json:"threshold"`
	Target        *Money  `json:"target"`
	PaymentMethod *string `json:"payment_method"`
	MonthlyLimit  *Money  `json:"monthly_limit"`
	// DisabledReason says why Topup switched it off (repeated_declines,
	// card_not_retryable, payment_method_removed, dispute, account_closed).
	DisabledReason *string    `json:"disabled_reason"`
	MonthToDate    Money      `json:"month_to_date"`
	UpdatedAt      *time.Time `json:"updated_at"`
	// TopUpID is the top-up that saving these settings started, if any.
	TopUpID string `json:"top_up_id,omitempty"`
}

// AutoTopUpParams replaces the settings. With Enabled false the amounts
// may be left nil (kept as they were); PaymentMethod empty means the
// account's default card; MonthlyLimit nil keeps the cap and
// RemoveMonthlyLimit removes it.
type AutoTopUpParams struct {
	Enabled            bool
	Threshold          *Money
	Target             *Money
	PaymentMethod      string
	MonthlyLimit       *Money
	RemoveMonthlyLimit bool
}

// MarshalJSON spells the request: absent amounts are left out, and a
// removed monthly limit is null.
func (p AutoTopUpParams) MarshalJSON() ([]byte, error) {
	m := map[string]any{"enabled": p.Enabled}
	if p.Threshold != nil {
		m["threshold"] = *p.Threshold
	}
	if p.Target != nil {
		m["target"] = *p.Target
	}
	if p.PaymentMethod != "" {
		m["payment_method"] = p.PaymentMethod
	}
	switch {
	case p.RemoveMonthlyLimit:
		m["monthly_limit"] = nil
	case p.MonthlyLimit != nil:
		m["monthly_limit"] = *p.MonthlyLimit
	}
	return json.Marshal(m)
}

// AuditEntry is one change of the settings: who made it, and the settings
// before and after as the server spells them.
type AuditEntry struct {
	ID        string          `json:"id"`
	Actor     string          `json:"actor"`
	Old       json.RawMessage `json:"old"`
	New       json.RawMessage `json:"new"`
	CreatedAt time.Time       `json:"created_at"`
}

// PaymentMethod is a saved card.
type PaymentMethod struct {
	ID        string    `json:"id"`
	Brand     string    `json:"brand"`
	Last4     string    `json:"last4"`
	ExpMonth  int       `json:"exp_month"`
	ExpYear   int       `json:"exp_year"`
	Default   bool      `json:"default"`
	CreatedAt time.Time `json:"created_at"`
}

// PaymentMethodDeleted answers the removal of a card; AutoTopUpDisabled
// says Automatic Top-Up was switched off because it used that card.
type PaymentMethodDeleted struct {
	ID                string `json:"id"`
	Deleted           bool   `json:"deleted"`
	AutoTopUpDisabled bool   `json:"auto_top_up_disabled"`
}

// SetupURL is the hosted page where a person adds a card.
type SetupURL struct {
	URL string `json:"url"`
}

// TopUpParams buys credit now. PaymentMethod empty charges the default
// card; IdempotencyKey is made by the client when empty.
type TopUpParams struct {
	Amount         Money  `json:"amount"`
	IdempotencyKey string `json:"idempotency_key"`
	PaymentMethod  string `json:"payment_method,omitempty"`
}

// TopUp is a charge that adds credit, automatic or manual.
type TopUp struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	// Status is pending, processing, succeeded, failed, requires_action
	// or canceled.
	Status string `json:"status"`
	// Amount is nil until fixed, just before the first charge attempt.
	Amount   *Money `json:"amount"`
	Currency string `json:"currency"`
	// Trigger is threshold, manual or settings.
	Trigger       string  `json:"trigger"`
	PaymentMethod string  `json:"payment_method"`
	FailureCode   *string `json:"failure_code"`
	// ActionURL is where the customer authenticates a requires_action
	// top-up (3-D Secure).
	ActionURL   *string    `json:"action_url"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	CompletedAt *time.Time `json:"completed_at"`
	// Replayed is true when the key had been used before and this is that
	// top-up (nothing new was charged).
	Replayed bool `json:"-"`
	// AmountRefunded is what its succeeded refunds gave back.
	AmountRefunded Money `json:"amount_refunded"`
}

// RefundParams refunds a succeeded top-up (the operator's key): Amount nil
// refunds all that is left of it. An empty IdempotencyKey is filled in.
type RefundParams struct {
	Amount         *Money `json:"amount,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
	Reason         string `json:"reason,omitempty"`
}

// Refund is money given back to the card of a top-up.
type Refund struct {
	ID      string `json:"id"`
	TopUpID string `json:"top_up_id"`
	Amount  Money  `json:"amount"`
	// Status is pending (the provider has not confirmed it yet),
	// succeeded or failed.
	Status    string    `json:"status"`
	Reason    *string   `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
	// Replayed is true when the key had been used before and this is that
	// refund (nothing new was refunded).
	Replayed bool `json:"-"`
}

// Event is what an account was told (a notification, a webhook's body).
// Data's shape depends on Type: decode it with DecodeData.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	AccountID string          `json:"account_id"`
	Data      json.RawMessage `json:"data"`
}

// DecodeData decodes the event's data into v (a TopUp for top_up.*, a
// struct of your own for the others).
func (e *Event) DecodeData(v any) error { return json.Unmarshal(e.Data, v) }

// LowBalanceAlerts are the balances below which the customer is told.
type LowBalanceAlerts struct {
	Thresholds []Money `json:"thresholds"`
}

// BudgetParams creates or changes a budget: Kind is unlimited, one_time
// or monthly; Subject empty covers all the account's usage.
type BudgetParams struct {
	Subject string `json:"subject,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Limit   *Money `json:"limit,omitempty"`
}

// Budget is a spending limit of an account or of one subject.
type Budget struct {
	ID          string     `json:"id"`
	AccountID   string     `json:"account_id"`
	Subject     *string    `json:"subject"`
	Kind        string     `json:"kind"`
	Limit       *Money     `json:"limit"`
	Spent       Money      `json:"spent"`
	Remaining   *Money     `json:"remaining"`
	Exhausted   bool       `json:"exhausted"`
	PeriodStart time.Time  `json:"period_start"`
	PeriodEnd   *time.Time `json:"period_end"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Deleted answers a DELETE.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// WebhookEndpoint is where an account's events are POSTed. Secret is set
// when it is created or rotated, and never shown again.
type WebhookEndpoint struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Secret       string    `json:"secret,omitempty"`
	SecretPrefix string    `json:"secret_prefix"`
	CreatedAt    time.Time `json:"created_at"`
}

// Delivery is one attempt to deliver an event to an endpoint.
type Delivery struct {
	ID            string     `json:"id"`
	EventID       string     `json:"event_id"`
	Type          string     `json:"type"`
	StatusCode    *int       `json:"status_code"`
	Error         *string    `json:"error"`
	AttemptedAt   time.Time  `json:"attempted_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

// ResendQueued answers a resend: the event will be delivered again.
type ResendQueued struct {
	EventID    string `json:"event_id"`
	EndpointID string `json:"endpoint_id"`
	Status     string `json:"status"`
}

// APIKey is an account's key as listed: never the key itself.
type APIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Key        string     `json:"key,omitempty"` // only when created
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// LoginLink is a one-time console sign-in link.
type LoginLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Dispute is a cardholder's dispute of one of the account's top-ups, as
// Topup recorded it from the provider's events.
type Dispute struct {
	ID       string `json:"id"`
	TopUpID  string `json:"top_up_id"`
	Amount   Money  `json:"amount"`
	Currency string `json:"currency"`
	// Status is open until the card network decides, then won or lost.
	Status string `json:"status"`
	Reason string `json:"reason"`
	// AmountWithdrawn left the balance as a dispute entry when the funds
	// were withdrawn; Reinstated is true once a won dispute gave it back.
	AmountWithdrawn Money      `json:"amount_withdrawn"`
	Reinstated      bool       `json:"reinstated"`
	CreatedAt       time.Time  `json:"created_at"`
	ClosedAt        *time.Time `json:"closed_at"`
}

// SandboxDispute is the sandbox's dispute of a charge.
type SandboxDispute struct {
	ID       string `json:"id"`
	ChargeID string `json:"charge_id"`
	TopUpID  string `json:"top_up_id"`
	Amount   Money  `json:"amount"`
	Currency string `json:"currency"`
	// Status is needs_response while open, then won or lost.
	Status          string    `json:"status"`
	Reason          string    `json:"reason"`
	FundsWithdrawn  bool      `json:"funds_withdrawn"`
	FundsReinstated bool      `json:"funds_reinstated"`
	CreatedAt       time.Time `json:"created_at"`
}

// SandboxCharge is one charge the sandbox provider was asked for.
type SandboxCharge struct {
	ID             string    `json:"id"`
	IdempotencyKey string    `json:"idempotency_key"`
	TopUpID        string    `json:"top_up_id"`
	Amount         Money     `json:"amount"`
	Currency       string    `json:"currency"`
	Status         string    `json:"status"`
	CreatedAt      time.Time `json:"created_at"`
}

// Hold is credit reserved for work whose cost is known only at its end.
type Hold struct {
	ID       string `json:"id"`
	Amount   Money  `json:"amount"`
	Captured Money  `json:"captured"`
	Currency string `json:"currency"`
	// Status is active, captured, released or expired (as of the answer:
	// an active hold past ExpiresAt is expired).
	Status      string `json:"status"`
	Subject     string `json:"subject"`
	Description string `json:"description"`
	// TopUpID is the automatic top-up the hold's creation started, if any.
	TopUpID   *string   `json:"top_up_id"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
	// Replayed is true when the key had made this hold before.
	Replayed bool `json:"-"`
}

// HoldParams asks for a hold; ExpiresIn (seconds, 1–86,400) is 900 when
// zero.
type HoldParams struct {
	Amount         Money  `json:"amount"`
	IdempotencyKey string `json:"idempotency_key"`
	Subject        string `json:"subject,omitempty"`
	Description    string `json:"description,omitempty"`
	ExpiresIn      int64  `json:"expires_in,omitempty"`
}

// CaptureParams captures a hold: Amount empty captures all of it.
type CaptureParams struct {
	Amount         Money  `json:"amount,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
	Description    string `json:"description,omitempty"`
}

// CaptureResult is a capture's usage result and the hold it left.
type CaptureResult struct {
	UsageResult
	Hold Hold `json:"hold"`
}

// HoldListParams lists holds: Status keeps those of one status.
type HoldListParams struct {
	ListParams
	Status string
}
