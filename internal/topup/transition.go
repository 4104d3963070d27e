package topup

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// Event types this package produces (the outbox's type column).
const (
	EventTopUpSucceeded        = "top_up.succeeded"
	EventTopUpFailed           = "top_up.failed"
	EventTopUpActionRequired   = "top_up.action_required"
	EventAutoTopUpDisabled     = "auto_top_up.disabled"
	EventAutoTopUpLimitReached = "auto_top_up.limit_reached"
)

// TriggerState is what deciding on a new automatic top-up needs beyond the
// account and its settings, loaded by the store in the same transaction.
type TriggerState struct {
	// HasOpen says an automatic top-up is pending, processing or waiting
	// for the customer: there is never a second.
	HasOpen bool
	// MonthToDate is what automatic top-ups added or hold open this month
	// (needed only with a monthly limit).
	MonthToDate money.Amount
	// DefaultCard is the account's default payment method, "" when none
	// (needed only when the settings name no card).
	DefaultCard string
}

// Decision is what a check for an automatic top-up decided: at most one of
// a top-up to create and a month whose limit the customer is now told of.
type Decision struct {
	TopUp *TopUp
	// LimitNotified is the month to record in the settings when the
	// customer is told the monthly limit is reached ("" otherwise).
	LimitNotified string
	Events        []ledger.Event
}

// Decide says whether an automatic top-up is created for acct now: Due,
// then the monthly limit (when it leaves less than the minimum charge the
// customer is told once that month instead), then a card to charge (the
// settings' own or the default; none, no top-up). newID gives the ids of
// what it creates, in order.
func Decide(acct ledger.Account, st Settings, ts TriggerState, trig Trigger, now time.Time, newID func(string) string) Decision {
	if !st.Due(acct.Available(), ts.HasOpen, now) {
		return Decision{}
	}
	if left, ok := st.Allowance(ts.MonthToDate); ok && left < acct.Currency.MinCharge {
		month := Month(now)
		if st.LimitNotified == month {
			return Decision{}
		}
		return Decision{LimitNotified: month, Events: []ledger.Event{{ID: newID("evt"), AccountID: acct.ID, Type: EventAutoTopUpLimitReached,
			Data: map[string]any{"month": month, "limit": st.MonthlyLimit.Format(acct.Currency)}}}}
	}
	card := st.PaymentMethod
	if card == "" {
		card = ts.DefaultCard
	}
	if card == "" {
		return Decision{}
	}
	return Decision{TopUp: &TopUp{ID: newID("tu"), AccountID: acct.ID, Status: Pending, Trigger: trig, Currency: acct.Currency,
		PaymentMethod: card, NextAttemptAt: now, CrossedAt: now, CreatedAt: now}}
}

// Change is what applying an outcome to a top-up does, for the store to
// write in one transaction.
type Change struct {
	// TopUp is the top-up after the outcome.
	TopUp TopUp
	// Changed is false when the outcome changes nothing (Applies).
	Changed bool
	// Credit is the ledger credit of a success, applied with
	// ledger.Credit (it cannot be refused); nil otherwise.
	Credit *ledger.Posting
	// Settings are the account's settings after the outcome (nil: they do
	// not change), saved with an audit row by Actor when what the customer
	// sees changed.
	Settings *Settings
	Actor    string
	// Disabled says why Automatic Top-Up was switched off, if it was.
	Disabled string
	Events   []ledger.Event
	// CheckNext says that the balance after the credit must be checked
	// for the next automatic top-up (Decide): heavy usage during the
	// charge may have left it low.
	CheckNext bool
}

// Policy is the configuration an outcome is applied with.
type Policy struct {
	// Backoff is the wait after a declined automatic top-up.
	Backoff time.Duration
	// PayURL is where the customer completes a 3-D Secure challenge (the
	// console's /pay page); "" leaves action_url out of events.
	PayURL string
}

// Applies reports whether outcome o changes top-up t: an open top-up takes
// any outcome; a final one stays as it is, except that a success always
// wins (a charge that was paid is credited even if Topup had given up on
// it). A success for a top-up whose amount was never fixed is refused: no
// charge is sent before Begin fixes the amount, so it is no charge of ours,
// and nobody stored what to credit.
func Applies(t TopUp, o Outcome) (bool, error) {
	if !t.Status.Open() && (o.Status != Succeeded || t.Status == Succeeded) {
		return false, nil
	}
	if o.Status == Succeeded && t.Amount == nil {
		return false, fmt.Errorf("settle top-up %s: a success reported before its amount was fixed", t.ID)
	}
	return true, nil
}

// Transition applies outcome o to top-up t when it Applies (otherwise the
// change is empty: Changed false). st is the account's settings, nil when
// it never saved any. A RequiresAction outcome must carry its action token.
func Transition(t TopUp, o Outcome, st *Settings, now time.Time, p Policy) (Change, error) {
	if ok, err := Applies(t, o); !ok {
		return Change{TopUp: t}, err
	}
	c, err := transition(t, o, st, now, p)
	c.Changed = err == nil
	return c, err
}

func transition(t TopUp, o Outcome, st *Settings, now time.Time, p Policy) (Change, error) {
	if o.ChargeID != "" {
		t.ChargeID = o.ChargeID
	}
	switch o.Status {
	case Processing:
		t.Status, t.NextAttemptAt = Processing, o.RetryAt
		return Change{TopUp: t}, nil
	case RequiresAction:
		t.Status, t.ClientSecret, t.ActionToken, t.ActionExpires = RequiresAction, o.ClientSecret, o.ActionToken, now.Add(ActionTTL)
		return Change{TopUp: t, Events: []ledger.Event{t.event(EventTopUpActionRequired, p.PayURL)}}, nil
	case Succeeded:
		if err := charged(&t, o); err != nil {
			return Change{}, err
		}
		return succeed(t, st, now, p), nil
	case Failed, Canceled:
		return fail(t, o, st, now, p), nil
	}
	return Change{}, fmt.Errorf("settle top-up %s: unknown outcome %q", t.ID, o.Status)
}

// charged makes the top-up's amount what the provider charged, when the
// outcome says and it differs: the customer paid that, so that is what is
// credited (and what the month's limit, the receipt and refunds count).
func charged(t *TopUp, o Outcome) error {
	if o.Charged <= 0 {
		return nil
	}
	paid, err := money.FromMinor(o.Charged, t.Currency)
	if err != nil {
		return fmt.Errorf("settle top-up %s: the provider charged %d: %w", t.ID, o.Charged, err)
	}
	if t.Amount == nil || *t.Amount != paid {
		t.Amount = &paid
	}
	return nil
}

func succeed(t TopUp, st *Settings, now time.Time, p Policy) Change {
	t.Status, t.CompletedAt, t.FailureCode = Succeeded, now, ""
	credit := ledger.Posting{AccountID: t.AccountID, Kind: ledger.KindTopUp, Amount: *t.Amount, Description: t.Description(),
		IdempotencyKey: t.IdempotencyKey(), TopUpID: t.ID}
	c := Change{TopUp: t, Credit: &credit, Events: []ledger.Event{t.event(EventTopUpSucceeded, p.PayURL)}, CheckNext: st != nil}
	if st != nil && t.Trigger != TriggerManual && st.FailureStreak != 0 {
		// A success ends the streak of declines and its back-off.
		next := *st
		next.FailureStreak, next.RetryAfter = 0, time.Time{}
		c.Settings = &next
	}
	return c
}

func fail(t TopUp, o Outcome, st *Settings, now time.Time, p Policy) Change {
	t.Status, t.FailureCode, t.CompletedAt = o.Status, o.FailureCode, now
	c := Change{TopUp: t, Events: []ledger.Event{t.event(EventTopUpFailed, p.PayURL)}}
	if t.Trigger == TriggerManual || st == nil {
		// A manual top-up is the customer's own try: it counts toward no
		// streak.
		return c
	}
	next, disabled := st.AfterFailure(t.FailureCode, o.NeverRetry, now, p.Backoff)
	c.Settings, c.Actor, c.Disabled = &next, "system:"+t.FailureCode, disabled
	if disabled != "" {
		c.Events = append(c.Events, DisabledEvent(t.AccountID, disabled))
	}
	return c
}

// DisabledEvent is the auto_top_up.disabled event of an account whose
// Automatic Top-Up Topup switched off for reason.
func DisabledEvent(accountID, reason string) ledger.Event {
	return ledger.Event{AccountID: accountID, Type: EventAutoTopUpDisabled, Data: map[string]any{"reason": reason}}
}

// Description is the description of the ledger entry that credits t.
func (t TopUp) Description() string {
	if t.Trigger == TriggerManual {
		return "Top-up"
	}
	return "Automatic top-up"
}

func (t TopUp) event(typ, payURL string) ledger.Event {
	return ledger.Event{AccountID: t.AccountID, Type: typ, Data: EventData(t, payURL)}
}

// EventData is the data of a top_up.* event: the top-up as the API shows
// it (the same fields, money as strings, times in ledger.TimeFormat), with
// its action_url (ActionURL) while it waits for the customer.
func EventData(t TopUp, payURL string) map[string]any {
	m := map[string]any{"id": t.ID, "account_id": t.AccountID, "status": string(t.Status), "trigger": string(t.Trigger),
		"payment_method": t.PaymentMethod, "failure_code": nilIfEmpty(t.FailureCode), "currency": t.Currency.Code,
		"amount": nil, "action_url": nil, "attempts": t.Attempts, "created_at": ledger.FormatTime(t.CreatedAt), "completed_at": nil,
		"amount_refunded": t.AmountRefunded.Format(t.Currency)}
	if t.Amount != nil {
		m["amount"] = t.Amount.Format(t.Currency)
	}
	if !t.CompletedAt.IsZero() {
		m["completed_at"] = ledger.FormatTime(t.CompletedAt)
	}
	if payURL != "" {
		m["action_url"] = nilIfEmpty(ActionURL(payURL, t))
	}
	return m
}

// ActionURL returns the page under payURL (the console's /pay, or the
// API's) where the customer completes t's 3-D Secure challenge, or "" when
// t waits for nothing. The token in it is the only credential the page
// asks for.
func ActionURL(payURL string, t TopUp) string {
	if t.Status != RequiresAction || t.ActionToken == "" {
		return ""
	}
	return strings.TrimRight(payURL, "/") + "/" + url.PathEscape(t.ID) + "?token=" + url.QueryEscape(t.ActionToken)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
