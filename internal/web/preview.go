package web

import (
	"math/big"
	"strconv"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// The chart and the Automatic Payments preview read the same thing: the
// account's daily totals of the last 30 days (at most 31 rows, by primary
// key), never its entries. From the rows and today's balance the console
// rebuilds each day's opening and closing balance exactly: the opening
// balance of the window is the balance now minus what the window's days
// added.

// historyDays is how many calendar days (today included) the chart and the
// preview cover.
const historyDays = 30

// flow is one calendar day of an account's history.
type flow struct {
	Day     time.Time // 00:00 UTC
	Usage   money.Amount
	Grants  money.Amount // credits other than top-ups (grants, refunds, adjustments), less what expired or was voided
	TopUps  int
	TopUpIn money.Amount // what top-ups credited
	Opening money.Amount
	Closing money.Amount
}

// history is an account's recent days, oldest first, one per calendar day
// from the window's first day (or the account's creation) to today.
type history struct {
	Days    []flow
	Opening money.Amount // the balance when the first day began
	Balance money.Amount // the balance now
}

// dayOf returns 00:00 UTC of t's day.
func dayOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// windowStart is the first day the chart and the preview read.
func windowStart(now time.Time) time.Time { return dayOf(now).AddDate(0, 0, -(historyDays - 1)) }

// buildHistory lays the daily rows since windowStart(now) out as one flow a
// day. Days without a row changed nothing.
func buildHistory(rows []ledger.Day, balance money.Amount, created, now time.Time) history {
	first, today := windowStart(now), dayOf(now)
	if c := dayOf(created); c.After(first) {
		first = c
	}
	if first.After(today) {
		first = today
	}
	byDay := make(map[time.Time]ledger.Day, len(rows))
	var net money.Amount
	for _, r := range rows {
		byDay[dayOf(r.Day)] = r
		net += r.Credits - r.Usage - r.Removed
	}
	h := history{Opening: balance - net, Balance: balance}
	b := h.Opening
	for d := first; !d.After(today); d = d.AddDate(0, 0, 1) {
		f := flow{Day: d, Opening: b}
		if r, ok := byDay[d]; ok {
			f.Usage, f.Grants, f.TopUps, f.TopUpIn = r.Usage, r.Credits-r.TopUpCredits-r.Removed, r.TopUps, r.TopUpCredits
			b += r.Credits - r.Usage - r.Removed
		}
		f.Closing = b
		h.Days = append(h.Days, f)
	}
	return h
}

// scenario is a set of Automatic Payments values to try on the history.
type scenario struct {
	Threshold, Target money.Amount
	MonthlyLimit      *money.Amount
	Currency          money.Currency
}

// replayResult is what a scenario would have done.
type replayResult struct {
	Charges int
	Total   money.Amount
	// Lowest is how low the balance would have gone (about the threshold
	// when charges kept it up).
	Lowest money.Amount
	// Limited is true when the monthly limit held a charge back.
	Limited bool
	// Actual counts the top-ups that really happened in the window.
	ActualCharges int
	ActualTotal   money.Amount
}

// replay runs the window again under s, from its opening balance, with
// its usage and grants but without the top-ups that really happened:
// within a day, grants come first and usage runs down continuously, so a
// charge happens each time the balance would go strictly below the
// threshold, and adds target - balance rounded up to the minor unit, at
// least the minimum charge and within what the monthly limit still allows
// (counted from the charges of the replay, per calendar month). Each day
// costs O(1) however large its usage.
func replay(h history, s scenario) replayResult {
	c := s.Currency
	unit := money.Amount(pow10(6 - c.Minor))
	per := s.Target - s.Threshold // validated: at least the minimum charge
	out := replayResult{Lowest: h.Opening}
	b := h.Opening
	month, spent := "", money.Amount(0)
	// allowance is what the monthly limit still lets through, whole
	// units; ok is false when there is no limit.
	allowance := func() (money.Amount, bool) {
		if s.MonthlyLimit == nil {
			return 0, false
		}
		left := max(*s.MonthlyLimit-spent, 0)
		return left / unit * unit, true
	}
	charge := func(a money.Amount, n int) {
		out.Charges += n
		out.Total += a
		spent += a
	}
	for _, d := range h.Days {
		out.ActualCharges += d.TopUps
		out.ActualTotal += d.TopUpIn
		if m := d.Day.Format("2006-01"); m != month {
			month, spent = m, 0
		}
		b += d.Grants
		if b < s.Threshold {
			// Below at the start of the day: one charge back to the target.
			a := roundUp(s.Target-b, unit)
			a = max(a, c.MinCharge)
			if left, limited := allowance(); limited && a > left {
				a = left
				out.Limited = true
			}
			if a >= c.MinCharge {
				charge(a, 1)
				b += a
			}
		}
		out.Lowest = min(out.Lowest, b)
		u := d.Usage
		if u <= 0 {
			continue
		}
		if b < s.Threshold || u <= b-s.Threshold {
			// Either nothing more can be charged this month, or the day's
			// usage stays above the threshold.
			b -= u
			out.Lowest = min(out.Lowest, b)
			continue
		}
		need := u - (b - s.Threshold) // usage below the threshold
		k := (need + per - 1) / per   // charges of `per` that cover it
		var added money.Amount
		if left, limited := allowance(); limited && money.Amount(k)*per > left {
			full := left / per
			added = full * per
			charge(added, int(full))
			if rest := (left - added) / unit * unit; rest >= c.MinCharge {
				charge(rest, 1)
				added += rest
			}
			out.Limited = true
		} else {
			added = money.Amount(k) * per
			charge(added, int(k))
		}
		b = s.Threshold - need + added
		out.Lowest = min(out.Lowest, b, s.Threshold)
	}
	return out
}

// nearestMinor rounds an estimate to the currency's minor unit, for
// showing it: "about $1.55 a day", not $1.548608.
func nearestMinor(a money.Amount, c money.Currency) money.Amount {
	unit := money.Amount(pow10(6 - c.Minor))
	return (a + unit/2) / unit * unit
}

func roundUp(a, unit money.Amount) money.Amount {
	if a <= 0 {
		return 0
	}
	return (a + unit - 1) / unit * unit
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// burnDays is how far back the burn rate looks.
const burnDays = 7

// burn is the account's recent rate of usage: Usage over Over.
type burn struct {
	Usage money.Amount
	Over  time.Duration
}

// recentBurn measures usage over the last burnDays calendar days (today
// included), or since the account was created when that is later.
func recentBurn(h history, created, now time.Time) burn {
	from := dayOf(now).AddDate(0, 0, -(burnDays - 1))
	if created.After(from) {
		from = created
	}
	var b burn
	for _, d := range h.Days {
		if !d.Day.Before(dayOf(from)) {
			b.Usage += d.Usage
		}
	}
	// At least an hour, so that a new account's first call does not look
	// like a torrent.
	b.Over = max(now.Sub(from), time.Hour)
	return b
}

// PerDay is the average usage a day.
func (b burn) PerDay() money.Amount {
	if b.Usage <= 0 {
		return 0
	}
	return money.Amount(mulDiv(int64(b.Usage), int64(24*time.Hour), int64(b.Over)))
}

// Until says how long, at this rate, it takes to use amount; ok is false
// when nothing is being used.
func (b burn) Until(amount money.Amount) (time.Duration, bool) {
	if b.Usage <= 0 {
		return 0, false
	}
	if amount <= 0 {
		return 0, true
	}
	const limit = int64(10 * 365 * 24 * time.Hour)
	d := mulDiv(int64(amount), int64(b.Over), int64(b.Usage))
	return time.Duration(min(d, limit)), true
}

// mulDiv returns a*b/c without overflowing on the way.
func mulDiv(a, b, c int64) int64 {
	var r big.Int
	r.Mul(big.NewInt(a), big.NewInt(b))
	r.Quo(&r, big.NewInt(c))
	if !r.IsInt64() {
		return 1<<63 - 1
	}
	return r.Int64()
}

// aboutDuration writes a duration roughly, for a forecast: "about 5 hours",
// "about 3 days".
func aboutDuration(d time.Duration) string {
	switch {
	case d < time.Hour:
		return "less than an hour"
	case d < 36*time.Hour:
		h := int((d + 30*time.Minute) / time.Hour)
		return "about " + plural(h, "hour", "hours")
	case d < 60*24*time.Hour:
		n := int((d + 12*time.Hour) / (24 * time.Hour))
		return "about " + plural(n, "day", "days")
	case d < 365*24*time.Hour:
		n := int((d + 15*24*time.Hour) / (30 * 24 * time.Hour))
		return "about " + plural(n, "month", "months")
	}
	return "more than a year"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
