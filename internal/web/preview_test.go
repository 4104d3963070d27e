package web

import (
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

func usdCur(t *testing.T) money.Currency {
	t.Helper()
	c, err := money.LookupCurrency("usd")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dollars(d float64) money.Amount { return money.Amount(d * 1_000_000) }

// TestBuildHistory: the daily rows and today's balance give every day's
// opening and closing balance; days without a row changed nothing.
func TestBuildHistory(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	rows := []ledger.Day{
		{Day: day(20), Credits: dollars(50), Usage: dollars(2)},
		{Day: day(22), Usage: dollars(3), Credits: dollars(10), TopUps: 1, TopUpCredits: dollars(10)},
		{Day: day(26), Usage: dollars(1)},
	}
	h := buildHistory(rows, dollars(54), time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), now)
	if len(h.Days) != 7 || !h.Days[0].Day.Equal(day(20)) {
		t.Fatalf("history has %d days from %v; want 7 days from the account's creation, 20 Nov", len(h.Days), h.Days[0].Day)
	}
	if h.Opening != 0 {
		t.Errorf("opening = %s; want 0 (54 now, less what the days added)", h.Opening)
	}
	closings := []float64{48, 48, 55, 55, 55, 55, 54}
	for i, want := range closings {
		if h.Days[i].Closing != dollars(want) {
			t.Errorf("day %s closes at %s; want %v", h.Days[i].Day.Format("2 Jan"), h.Days[i].Closing, want)
		}
	}
	if g := h.Days[2]; g.Grants != 0 || g.TopUpIn != dollars(10) || g.TopUps != 1 {
		t.Errorf("22 Nov = %+v; want its credit counted as a top-up, not a grant", g)
	}

	// An old account: the window is the last 30 days, and the opening
	// balance comes from today's balance.
	h = buildHistory(rows[1:], dollars(54), day(1).AddDate(-1, 0, 0), now)
	if len(h.Days) != historyDays || h.Opening != dollars(48) {
		t.Errorf("an old account's history: %d days opening at %s; want %d days opening at 48", len(h.Days), h.Opening, historyDays)
	}
}

// TestReplay: what a scenario would have charged, day by day.
func TestReplay(t *testing.T) {
	t.Parallel()
	usd := usdCur(t)
	lim := func(d float64) *money.Amount { a := dollars(d); return &a }
	nov := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		opening  float64
		days     []flow
		s        scenario
		charges  int
		total    float64
		limited  bool
		lowest   float64
		actual   int
		actualIn float64
	}{
		{name: "stays above the threshold", opening: 50, days: []flow{{Day: nov(1), Usage: dollars(10)}, {Day: nov(2), Usage: dollars(10)}},
			s: scenario{Threshold: dollars(5), Target: dollars(20)}, lowest: 30},
		{name: "one crossing", opening: 20, days: []flow{{Day: nov(1), Usage: dollars(30)}},
			s: scenario{Threshold: dollars(5), Target: dollars(20)}, charges: 1, total: 15, lowest: 5},
		{name: "usage of exactly two charges below", opening: 20, days: []flow{{Day: nov(1), Usage: dollars(45)}},
			s: scenario{Threshold: dollars(5), Target: dollars(20)}, charges: 2, total: 30, lowest: 5},
		{name: "below at the start is charged back to the target", opening: 2, days: []flow{{Day: nov(1)}},
			s: scenario{Threshold: dollars(5), Target: dollars(20)}, charges: 1, total: 18, lowest: 2},
		{name: "grants first, real top-ups left out", opening: 6, days: []flow{{Day: nov(1), Grants: dollars(10), TopUps: 2, TopUpIn: dollars(40), Usage: dollars(10)}},
			s: scenario{Threshold: dollars(5), Target: dollars(20)}, lowest: 6, actual: 2, actualIn: 40},
		{name: "the monthly limit holds charges back", opening: 20, days: []flow{{Day: nov(1), Usage: dollars(45)}},
			s: scenario{Threshold: dollars(5), Target: dollars(20), MonthlyLimit: lim(20)}, charges: 2, total: 20, limited: true, lowest: -5},
		{name: "the limit starts again next month", opening: 20, days: []flow{
			{Day: nov(30), Usage: dollars(45)}, {Day: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}},
			s: scenario{Threshold: dollars(5), Target: dollars(20), MonthlyLimit: lim(20)}, charges: 3, total: 40, limited: true, lowest: -5},
		{name: "a day of a million dollars costs no loop", opening: 1, days: []flow{{Day: nov(1), Usage: dollars(1_000_000)}},
			s: scenario{Threshold: dollars(0.50), Target: dollars(1)}, charges: 1_999_999, total: 999_999.50, lowest: 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.s.Currency = usd
			r := replay(history{Days: tt.days, Opening: dollars(tt.opening)}, tt.s)
			if r.Charges != tt.charges || r.Total != dollars(tt.total) || r.Limited != tt.limited || r.Lowest != dollars(tt.lowest) ||
				r.ActualCharges != tt.actual || r.ActualTotal != dollars(tt.actualIn) {
				t.Errorf("replay = %+v; want %d charges, total %v, limited %v, lowest %v, actual %d / %v",
					r, tt.charges, tt.total, tt.limited, tt.lowest, tt.actual, tt.actualIn)
			}
		})
	}
}

// TestBurn: the recent rate of usage and how long a balance lasts at it.
func TestBurn(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var days []flow
	for i := range 10 {
		days = append(days, flow{Day: now.AddDate(0, 0, i-10), Usage: dollars(7)})
	}
	days = append(days, flow{Day: now})
	// Today has just begun: the last 7 calendar days are 6 whole days and
	// today's first instant, 42.00 of usage over 6 days.
	b := recentBurn(history{Days: days}, now.AddDate(-1, 0, 0), now)
	if got := b.PerDay(); got != dollars(7) {
		t.Errorf("per day = %s; want 7.00", got)
	}
	if d, ok := b.Until(dollars(14)); !ok || d != 48*time.Hour {
		t.Errorf("14.00 lasts %v (%v); want 48h", d, ok)
	}
	if _, ok := (burn{Over: time.Hour}).Until(dollars(1)); ok {
		t.Error("no usage still gives a time to the threshold")
	}
	if got := aboutDuration(50 * time.Hour); got != "about 2 days" {
		t.Errorf("aboutDuration(50h) = %q", got)
	}
}

// TestFormatMoney: amounts as a person reads them, exact.
func TestFormatMoney(t *testing.T) {
	t.Parallel()
	cur := func(code string) money.Currency {
		c, err := money.LookupCurrency(code)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tt := range []struct {
		a    money.Amount
		code string
		want string
	}{
		{dollars(1234.5), "usd", "$1,234.50"},
		{-125, "usd", "−$0.000125"},
		{dollars(1000000), "usd", "$1,000,000.00"},
		{dollars(100), "jpy", "¥100"},
		{dollars(12), "chf", "12.00 CHF"},
	} {
		if got := formatMoney(tt.a, cur(tt.code)); got != tt.want {
			t.Errorf("formatMoney(%d, %s) = %q; want %q", tt.a, tt.code, got, tt.want)
		}
	}
	if got := niceCeil(dollars(47.13), cur("usd")); got != dollars(50) {
		t.Errorf("niceCeil(47.13) = %s; want 50", got)
	}
}

// TestForecastWatchesAvailable: the preview forecasts from available
// credit, which Automatic Top-Up watches: credit on hold can already put it
// below the threshold, though the balance is above it.
func TestForecastWatchesAvailable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	T, G := dollars(10), dollars(50)
	next := topup.Settings{Threshold: &T, Target: &G}
	acct := ledger.Account{ID: "a", Currency: usdCur(t), Balance: dollars(12), Held: dollars(4)}
	var out previewResult
	got := forecast(acct, burn{Usage: dollars(7), Over: 7 * 24 * time.Hour}, next, now, &out)
	if want := "Your available credit (your balance less $4.00 held), $8.00, is already below $10.00: saving starts a charge of about $42.00 right away."; got != want {
		t.Errorf("forecast = %q; want %q", got, want)
	}
	if out.NextBelow != now.Format(time.RFC3339) {
		t.Errorf("NextBelow = %q; want now", out.NextBelow)
	}
	acct.Held = 0
	out = previewResult{}
	got = forecast(acct, burn{Usage: dollars(7), Over: 7 * 24 * time.Hour}, next, now, &out)
	if !strings.HasPrefix(got, "At your recent usage, about $1.00 a day, your balance of $12.00 will go below $10.00 around") || out.NextBelow == "" {
		t.Errorf("forecast without holds = %q (next below %q)", got, out.NextBelow)
	}
}
