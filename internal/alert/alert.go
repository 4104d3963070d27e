// Package alert holds the rules that watch an account's spending: low
// balance alerts (tell the customer when the balance falls below an amount
// they chose) and budgets (a spending limit for the whole account or for one
// subject, announced at 50, 80 and 100 %). It imports no database and no
// HTTP: the store loads an account's alerts and budgets inside the
// transaction that changes its balance, lets a Watch observe every change in
// order, and writes back what changed with the events it produced.
//
// Neither rule stores an "armed" flag: a threshold is armed exactly when the
// balance before a change is at or above it, and a budget level was
// announced exactly when the spend before a change had reached it. So every
// crossing is found from the balance (or spend) before and after a change,
// credits and top-ups re-arm by moving the balance, and a replay, which
// changes nothing, announces nothing.
package alert

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// Event types this package produces (the outbox's type column).
const (
	BalanceLow             = "balance.low"
	BudgetThresholdReached = "budget.threshold_reached"
	BudgetExhausted        = "budget.exhausted"
)

// Limits of low balance alert thresholds (PRODUCT.md): at most
// MaxThresholds, each from MinThreshold to MaxThreshold in whole minor
// units, any two at least MinGap apart.
const (
	MaxThresholds = 5
	MinThreshold  = money.Amount(1 * money.MicrosPerUnit)
	MaxThreshold  = money.Amount(1_000 * money.MicrosPerUnit)
	MinGap        = money.Amount(5 * money.MicrosPerUnit)
)

// TimeFormat is the wire format of times in event data: RFC 3339 in UTC
// with microseconds, as the API writes them.
const TimeFormat = ledger.TimeFormat

// CheckThresholds refuses thresholds that break the rules, naming the
// element at fault as "thresholds[i]" (or "thresholds" for too many). The
// order of the list does not matter.
func CheckThresholds(ts []money.Amount, c money.Currency) error {
	if len(ts) > MaxThresholds {
		return apperr.Invalidf("thresholds", "at most %d thresholds", MaxThresholds)
	}
	for i, t := range ts {
		field := "thresholds[" + itoa(i) + "]"
		switch {
		case !t.IsWholeMinor(c):
			return apperr.Invalidf(field, "must be a whole number of %s minor units", c.Code)
		case t < MinThreshold || t > MaxThreshold:
			return apperr.Invalidf(field, "must be from %s to %s", MinThreshold.Format(c), MaxThreshold.Format(c))
		}
		for j := range i {
			d := t - ts[j]
			if d < 0 {
				d = -d
			}
			switch {
			case d == 0:
				return apperr.Invalidf(field, "repeats thresholds[%d]", j)
			case d < MinGap:
				return apperr.Invalidf(field, "must be at least %s away from thresholds[%d] (%s)", MinGap.Format(c), j, ts[j].Format(c))
			}
		}
	}
	return nil
}

// SortThresholds orders thresholds largest first: the order in which a
// falling balance crosses them.
func SortThresholds(ts []money.Amount) {
	slices.SortFunc(ts, func(a, b money.Amount) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
}

// Threshold is one low balance alert and the UTC day it last fired.
type Threshold struct {
	Amount money.Amount
	// AlertedOn is the UTC day ("2006-01-02") of the last balance.low for
	// this threshold; "" before the first.
	AlertedOn string
}

// Kind is how a budget counts.
type Kind string

// Budget kinds: unlimited only tracks spend; one_time counts from its
// creation; monthly resets on the 1st at 00:00 UTC (no carry-over).
const (
	Unlimited Kind = "unlimited"
	OneTime   Kind = "one_time"
	Monthly   Kind = "monthly"
)

// ParseKind returns the kind named s, refusing others (naming "kind").
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Unlimited, OneTime, Monthly:
		return k, nil
	}
	return "", apperr.Invalidf("kind", "must be unlimited, one_time or monthly")
}

// CheckLimit refuses a limit that does not fit kind: unlimited takes none,
// the others need one above zero in whole minor units (naming "limit").
func CheckLimit(k Kind, limit *money.Amount, c money.Currency) error {
	switch {
	case k == Unlimited && limit != nil:
		return apperr.Invalidf("limit", "an unlimited budget has no limit; leave it out")
	case k == Unlimited:
		return nil
	case limit == nil:
		return apperr.Invalidf("limit", "is required for a %s budget", k)
	case *limit <= 0:
		return apperr.Invalidf("limit", "must be greater than zero")
	case !limit.IsWholeMinor(c):
		return apperr.Invalidf("limit", "must be a whole number of %s minor units", c.Code)
	}
	return nil
}

// CheckSubject refuses a subject that usage could not carry: empty (leave
// it out for an account-wide budget), over 255 characters, not UTF-8 or
// holding U+0000 (input.Text's rules for usage's subject).
func CheckSubject(s string) error {
	if s == "" {
		return apperr.Invalidf("subject", "must not be empty; leave it out for a budget that covers all usage")
	}
	_, err := input.Text("subject", &s, input.MaxSubject)
	return err
}

// Level is a set of budget levels (50, 80 and 100 % of the limit).
type Level uint8

// Budget levels; Level100 is exhaustion.
const (
	Level50 Level = 1 << iota
	Level80
	Level100
)

var levels = [...]struct {
	bit     Level
	percent int64
}{{Level50, 50}, {Level80, 80}, {Level100, 100}}

// Budget is a spending limit for an account, or for one subject of its
// usage, and what was spent in its current period.
type Budget struct {
	ID        string
	AccountID string
	// Subject is "" for the budget that covers all the account's usage.
	Subject string
	Kind    Kind
	// Limit is nil for an unlimited budget.
	Limit *money.Amount
	Spent money.Amount
	// PeriodStart is the start of what Spent counts: the 1st of the month
	// (00:00 UTC) for a monthly budget, otherwise its creation.
	PeriodStart time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// MonthStart returns 00:00 UTC on the first of t's month.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// NewBudget returns a budget created at now, with nothing spent.
func NewBudget(id, accountID, subject string, k Kind, limit *money.Amount, now time.Time) Budget {
	b := Budget{ID: id, AccountID: accountID, Subject: subject, Kind: k, Limit: limit, PeriodStart: now, CreatedAt: now, UpdatedAt: now}
	if k == Monthly {
		b.PeriodStart = MonthStart(now)
	}
	return b
}

// Roll starts a new period when a monthly budget's period is over: spend
// back to zero, no carry-over. The reset is lazy, on the clock of whoever
// looks next, so no timer is needed. It reports whether b changed.
func (b *Budget) Roll(now time.Time) bool {
	if b.Kind != Monthly {
		return false
	}
	start := MonthStart(now)
	if !b.PeriodStart.Before(start) {
		return false
	}
	b.Spent, b.PeriodStart = 0, start
	return true
}

// Reached returns the levels the spend has reached.
func (b *Budget) Reached() Level {
	if b.Limit == nil {
		return 0
	}
	var out Level
	for _, l := range levels {
		if atLeast(b.Spent, *b.Limit, l.percent) {
			out |= l.bit
		}
	}
	return out
}

// atLeast reports spent*100 >= limit*percent without overflow.
func atLeast(spent, limit money.Amount, percent int64) bool {
	if spent < 0 || limit <= 0 {
		return spent >= 0 && limit <= 0
	}
	h1, l1 := bits.Mul64(uint64(spent), 100)
	h2, l2 := bits.Mul64(uint64(limit), uint64(percent))
	return h1 > h2 || (h1 == h2 && l1 >= l2)
}

// Exhausted reports whether the spend reached the limit.
func (b *Budget) Exhausted() bool { return b.Limit != nil && b.Spent >= *b.Limit }

// Spend adds usage (a positive amount) and returns the levels it crossed.
func (b *Budget) Spend(amount money.Amount) Level {
	before := b.Reached()
	spent, err := money.Add(b.Spent, amount)
	if err != nil {
		spent = math.MaxInt64
	}
	b.Spent = spent
	return b.Reached() &^ before
}

// SetLimit changes the limit and keeps what was spent; it returns the
// levels the change crossed, so that lowering the limit below the spend
// exhausts the budget at once, with its events.
func (b *Budget) SetLimit(limit *money.Amount) Level {
	before := b.Reached()
	b.Limit = limit
	return b.Reached() &^ before
}

// Percents lists the levels of l in increasing order, as percentages.
func (l Level) Percents() []int {
	var out []int
	for _, x := range levels {
		if l&x.bit != 0 {
			out = append(out, int(x.percent))
		}
	}
	return out
}

// Notice is one event for the outbox, with its data as the wire shows it.
type Notice struct {
	Type string
	Data any
}

// BudgetNotices returns the events of the levels crossed: one
// budget.threshold_reached per level below 100 %, and budget.exhausted for
// 100 %, in increasing order.
func BudgetNotices(b *Budget, crossed Level, c money.Currency) []Notice {
	var out []Notice
	for _, p := range crossed.Percents() {
		typ := BudgetThresholdReached
		if p == 100 {
			typ = BudgetExhausted
		}
		out = append(out, Notice{Type: typ, Data: BudgetEvent{BudgetView: b.View(c), Percent: p}})
	}
	return out
}

// BudgetView is a budget on the wire: in the API's answers and in the data
// of budget.* events.
type BudgetView struct {
	ID        string  `json:"id"`
	AccountID string  `json:"account_id"`
	Subject   *string `json:"subject"`
	Kind      string  `json:"kind"`
	Limit     *string `json:"limit"`
	Spent     string  `json:"spent"`
	// Remaining is the limit less the spend, never below zero; null for an
	// unlimited budget.
	Remaining   *string `json:"remaining"`
	Exhausted   bool    `json:"exhausted"`
	PeriodStart string  `json:"period_start"`
	// PeriodEnd is when a monthly budget resets; null otherwise.
	PeriodEnd *string `json:"period_end"`
	CreatedAt string  `json:"created_at"`
	UpdatedAt string  `json:"updated_at"`
}

// BudgetEvent is the data of a budget.* event: the budget, with the level
// reached.
type BudgetEvent struct {
	BudgetView
	Percent int `json:"percent"`
}

// View returns b as the wire shows it.
func (b *Budget) View(c money.Currency) BudgetView {
	v := BudgetView{ID: b.ID, AccountID: b.AccountID, Kind: string(b.Kind), Spent: b.Spent.Format(c), Exhausted: b.Exhausted(),
		PeriodStart: b.PeriodStart.UTC().Format(TimeFormat), CreatedAt: b.CreatedAt.UTC().Format(TimeFormat), UpdatedAt: b.UpdatedAt.UTC().Format(TimeFormat)}
	if b.Subject != "" {
		s := b.Subject
		v.Subject = &s
	}
	if b.Limit != nil {
		l, r := b.Limit.Format(c), max(*b.Limit-b.Spent, 0).Format(c)
		v.Limit, v.Remaining = &l, &r
	}
	if b.Kind == Monthly {
		e := MonthStart(b.PeriodStart).AddDate(0, 1, 0).Format(TimeFormat)
		v.PeriodEnd = &e
	}
	return v
}

// Watch is one account's low balance alerts and budgets during a
// transaction that changes its balance. Observe sees each change in order,
// so a group of many postings finds each crossing exactly where it
// happened.
type Watch struct {
	Currency money.Currency
	// Thresholds are the alerts, largest first (SortThresholds).
	Thresholds []Threshold
	// Budgets are the budgets the transaction may touch, by subject; ""
	// is the account-wide budget.
	Budgets map[string]*Budget

	// ChangedThresholds and ChangedBudgets say what Observe changed, for a
	// store that writes back only that (sqlstore writes budget spends
	// before observing, and thresholds only when one fired).
	ChangedThresholds map[int]bool
	ChangedBudgets    map[string]bool

	// now and day cache the UTC day of the group's one clock reading.
	now time.Time
	day string
}

// Observe applies one balance change from before to after by an entry of
// kind (with the usage's subject) at now. It returns the events the change
// causes and, when a budget that covers the change is exhausted after it,
// that budget: the posting's result is then not spendable.
func (w *Watch) Observe(now time.Time, kind ledger.Kind, subject string, before, after money.Amount) ([]Notice, *Budget) {
	var out []Notice
	if after < before && len(w.Thresholds) > 0 {
		if w.day == "" || !now.Equal(w.now) {
			w.now, w.day = now, now.UTC().Format(time.DateOnly)
		}
		day := w.day
		for i := range w.Thresholds {
			t := &w.Thresholds[i]
			if before >= t.Amount && after < t.Amount && t.AlertedOn != day {
				t.AlertedOn = day
				w.mark(i, "")
				out = append(out, Notice{Type: BalanceLow, Data: map[string]string{
					"threshold": t.Amount.Format(w.Currency), "balance": after.Format(w.Currency)}})
			}
		}
	}
	if len(w.Budgets) == 0 {
		return out, nil
	}
	var exhausted *Budget
	// The subject's own budget first, then the account-wide one: usage
	// with a subject counts toward both.
	keys, n := [2]string{subject, ""}, 2
	if subject == "" {
		keys, n = [2]string{""}, 1
	}
	for _, key := range keys[:n] {
		b := w.Budgets[key]
		if b == nil {
			continue
		}
		if b.Roll(now) {
			w.mark(-1, key)
		}
		if kind == ledger.KindUsage && after < before {
			crossed := b.Spend(before - after)
			w.mark(-1, key)
			out = append(out, BudgetNotices(b, crossed, w.Currency)...)
		}
		if exhausted == nil && b.Exhausted() {
			exhausted = b
		}
	}
	return out, exhausted
}

func (w *Watch) mark(threshold int, budget string) {
	if threshold >= 0 {
		if w.ChangedThresholds == nil {
			w.ChangedThresholds = map[int]bool{}
		}
		w.ChangedThresholds[threshold] = true
		return
	}
	if w.ChangedBudgets == nil {
		w.ChangedBudgets = map[string]bool{}
	}
	w.ChangedBudgets[budget] = true
}

// Spendable decides whether an account and the budgets that cover a
// subject (the subject's own, then the account-wide one; either may be nil)
// may spend: the account first (closed, or its balance not above zero),
// then budgets. Budgets are rolled to now first, on a copy. The budget that
// stops the spending is returned with the reason.
func Spendable(acct ledger.Account, now time.Time, budgets ...*Budget) (ok bool, reason string, stopping *Budget) {
	if reason := acct.StopReason(); reason != "" {
		return false, reason, nil
	}
	for _, b := range budgets {
		if b == nil {
			continue
		}
		c := *b
		c.Roll(now)
		if c.Exhausted() {
			return false, ledger.ReasonBudgetExhausted, b
		}
	}
	return true, "", nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// BudgetInput is a budget as a client sends it; nil fields were left out.
type BudgetInput struct {
	Subject *string
	Kind    *string
	Limit   *money.Amount
}

// New validates a new budget: an optional subject (left out: the budget
// covers all the account's usage), a kind, and a limit that fits the kind.
func (in BudgetInput) New(c money.Currency) (subject string, k Kind, limit *money.Amount, err error) {
	if in.Subject != nil {
		if err := CheckSubject(*in.Subject); err != nil {
			return "", "", nil, err
		}
		subject = *in.Subject
	}
	if in.Kind == nil {
		return "", "", nil, apperr.Invalidf("kind", "is required: unlimited, one_time or monthly")
	}
	if k, err = ParseKind(*in.Kind); err != nil {
		return "", "", nil, err
	}
	if err := CheckLimit(k, in.Limit, c); err != nil {
		return "", "", nil, err
	}
	return subject, k, in.Limit, nil
}

// Change validates a replacement of b (PUT): the limit, required as for a
// new budget of b's kind. Subject and kind may be sent again but not
// changed: what was spent would mean something else (delete the budget and
// create another).
func (in BudgetInput) Change(b *Budget, c money.Currency) (*money.Amount, error) {
	if in.Subject != nil && *in.Subject != b.Subject {
		return nil, apperr.Invalidf("subject", "cannot change; delete the budget and create another")
	}
	if in.Kind != nil && Kind(*in.Kind) != b.Kind {
		if _, err := ParseKind(*in.Kind); err != nil {
			return nil, err
		}
		return nil, apperr.Invalidf("kind", "cannot change; delete the budget and create another")
	}
	if err := CheckLimit(b.Kind, in.Limit, c); err != nil {
		return nil, err
	}
	return in.Limit, nil
}
