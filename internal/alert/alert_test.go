package alert_test

import (
	"slices"
	"testing"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

var usd = func() money.Currency {
	c, err := money.LookupCurrency("usd")
	if err != nil {
		panic(err)
	}
	return c
}()

func amt(t testing.TB, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return a
}

func amts(t testing.TB, ss ...string) []money.Amount {
	out := []money.Amount{}
	for _, s := range ss {
		out = append(out, amt(t, s))
	}
	return out
}

func TestCheckThresholds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		in    []string
		field string // "" when valid
	}{
		{"none removes the alerts", nil, ""},
		{"any order", []string{"5.00", "1000.00", "20", "12.50", "30.00"}, ""},
		{"the bounds", []string{"1.00", "1000.00"}, ""},
		{"exactly 5.00 apart", []string{"10.00", "15.00"}, ""},
		{"more than five", []string{"1", "10", "20", "30", "40", "50"}, "thresholds"},
		{"below 1.00", []string{"20.00", "0.99"}, "thresholds[1]"},
		{"above 1,000.00", []string{"1000.01"}, "thresholds[0]"},
		{"a fraction of a cent", []string{"20.005"}, "thresholds[0]"},
		{"repeated", []string{"20.00", "5.00", "20"}, "thresholds[2]"},
		{"closer than 5.00", []string{"20.00", "24.99"}, "thresholds[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := alert.CheckThresholds(amts(t, tc.in...), usd)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("%v refused: %v", tc.in, err)
				}
				return
			}
			e := apperr.As(err)
			if e == nil || e.Code != apperr.Invalid || e.Field != tc.field {
				t.Fatalf("%v: %v; want invalid naming %s", tc.in, err, tc.field)
			}
		})
	}
}

func TestBudgetInputs(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	ten := amt(t, "10")
	frac := amt(t, "10.001")
	for _, tc := range []struct {
		name  string
		in    alert.BudgetInput
		field string
	}{
		{"monthly with a limit", alert.BudgetInput{Kind: str("monthly"), Limit: &ten}, ""},
		{"unlimited for a subject", alert.BudgetInput{Subject: str("key_1"), Kind: str("unlimited")}, ""},
		{"no kind", alert.BudgetInput{Limit: &ten}, "kind"},
		{"unknown kind", alert.BudgetInput{Kind: str("weekly"), Limit: &ten}, "kind"},
		{"a limit on unlimited", alert.BudgetInput{Kind: str("unlimited"), Limit: &ten}, "limit"},
		{"no limit on monthly", alert.BudgetInput{Kind: str("monthly")}, "limit"},
		{"no limit on one_time", alert.BudgetInput{Kind: str("one_time")}, "limit"},
		{"a fraction of a cent", alert.BudgetInput{Kind: str("one_time"), Limit: &frac}, "limit"},
		{"an empty subject", alert.BudgetInput{Subject: str(""), Kind: str("unlimited")}, "subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, _, err := tc.in.New(usd)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if e := apperr.As(err); e == nil || e.Field != tc.field {
				t.Fatalf("%v; want invalid naming %s", err, tc.field)
			}
		})
	}
}

var march = time.Date(2026, time.March, 4, 5, 6, 7, 0, time.UTC)

func monthly(t *testing.T, limit string) *alert.Budget {
	l := amt(t, limit)
	b := alert.NewBudget("bud_1", "acct_1", "", alert.Monthly, &l, march)
	return &b
}

func TestBudgetLevels(t *testing.T) {
	t.Parallel()
	b := monthly(t, "10.00")
	if got := b.Spend(amt(t, "4.99")); got != 0 {
		t.Fatalf("49.9%% crossed %v", got.Percents())
	}
	// One debit over both 50 % and 80 % announces both, in order.
	if got := b.Spend(amt(t, "3.01")); !slices.Equal(got.Percents(), []int{50, 80}) {
		t.Fatalf("4.99 → 8.00 crossed %v, want [50 80]", got.Percents())
	}
	if b.Exhausted() {
		t.Fatal("exhausted at 80 %")
	}
	if got := b.Spend(amt(t, "2.00")); !slices.Equal(got.Percents(), []int{100}) || !b.Exhausted() {
		t.Fatalf("reaching the limit crossed %v (exhausted %v), want [100]", got.Percents(), b.Exhausted())
	}
	if got := b.Spend(amt(t, "5")); got != 0 {
		t.Fatalf("spending past the limit crossed %v again", got.Percents())
	}
	// Raising the limit keeps the spend; lowering it below exhausts at once.
	hundred, five := amt(t, "100"), amt(t, "5")
	if got := b.SetLimit(&hundred); got != 0 || b.Exhausted() || b.Spent != amt(t, "15") {
		t.Fatalf("raised to 100: crossed %v, exhausted %v, spent %s", got.Percents(), b.Exhausted(), b.Spent)
	}
	if got := b.SetLimit(&five); !slices.Equal(got.Percents(), []int{50, 80, 100}) || !b.Exhausted() {
		t.Fatalf("lowered below the spend: crossed %v, exhausted %v", got.Percents(), b.Exhausted())
	}
	// The month ends: nothing carried over.
	if b.Roll(march.AddDate(0, 0, 20)) {
		t.Fatal("rolled within March")
	}
	if !b.Roll(time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC)) || b.Spent != 0 || b.Exhausted() {
		t.Fatalf("on April 1st at 00:00: spent %s, exhausted %v", b.Spent, b.Exhausted())
	}
	one := alert.NewBudget("bud_2", "acct_1", "", alert.OneTime, &five, march)
	one.Spend(five)
	if one.Roll(march.AddDate(1, 0, 0)) || !one.Exhausted() {
		t.Fatal("a one_time budget reset with the month")
	}
}

func TestWatchFlappingBalance(t *testing.T) {
	t.Parallel()
	w := &alert.Watch{Currency: usd, Thresholds: []alert.Threshold{{Amount: amt(t, "20")}, {Amount: amt(t, "5")}}}
	balance := amt(t, "30")
	move := func(now time.Time, delta string) []alert.Notice {
		d := amt(t, delta[1:])
		kind := ledger.KindCredit
		if delta[0] == '-' {
			d, kind = -d, ledger.KindUsage
		}
		before := balance
		balance += d
		ns, _ := w.Observe(now, kind, "", before, balance)
		return ns
	}
	var lows int
	for i := range 50 {
		now := march.Add(time.Duration(i) * time.Minute)
		lows += len(move(now, "-15")) // 30 → 15: below 20
		lows += len(move(now, "+15")) // back to 30: armed again
	}
	if lows != 1 {
		t.Fatalf("50 falls below 20.00 in one day gave %d balance.low, want 1", lows)
	}
	// Staying below the next day tells nothing; falling again does.
	tomorrow := march.Add(24 * time.Hour)
	if ns := move(tomorrow, "-15"); len(ns) != 1 || ns[0].Type != alert.BalanceLow {
		t.Fatalf("the next day's fall gave %+v, want one balance.low", ns)
	}
	if ns := move(tomorrow.Add(24*time.Hour), "-1"); len(ns) != 0 {
		t.Fatalf("a debit while below gave %+v", ns)
	}
	// One debit through both thresholds: both, the larger first.
	balance = amt(t, "30")
	ns := move(march.Add(72*time.Hour), "-26")
	if len(ns) != 2 || ns[0].Data.(map[string]string)["threshold"] != "20.00" || ns[1].Data.(map[string]string)["balance"] != "4.00" {
		t.Fatalf("30 → 4 gave %+v, want 20.00 then 5.00 with balance 4.00", ns)
	}
}
