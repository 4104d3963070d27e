package web

import (
	"strings"
	"testing"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// TestThresholdMessage feeds alert.CheckThresholds' own refusals through
// the console's wording, so a change there that the console no longer
// reads shows here rather than as "thresholds[0]" on a customer's screen.
func TestThresholdMessage(t *testing.T) {
	t.Parallel()
	usd, _ := money.LookupCurrency("usd")
	m := func(s string) money.Amount {
		a, err := money.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		in    []string
		field string
		want  string
	}{
		{[]string{"20.00", "17.50"}, "thresholds[1]", "Must be at least $5.00 away from $20.00."},
		{[]string{"20", "20.00"}, "thresholds[1]", "Is already in the list."},
		{[]string{"0.99"}, "thresholds[0]", "Must be from $1.00 to $1,000.00."},
		{[]string{"10.001"}, "thresholds[0]", "Must be in whole cents (at most 2 decimals)."},
	}
	for _, tt := range tests {
		var ts []money.Amount
		for _, s := range tt.in {
			ts = append(ts, m(s))
		}
		e := apperr.As(alert.CheckThresholds(ts, usd))
		if e == nil || e.Field != tt.field {
			t.Fatalf("CheckThresholds(%v) = %v; want a refusal of %s", tt.in, e, tt.field)
		}
		if got := thresholdMessage(e.Message, usd); got != tt.want {
			t.Errorf("CheckThresholds(%v): the console says %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestPercentOf: the bar never shows a level before it is reached, and
// survives amounts whose product with 100 overflows int64.
func TestPercentOf(t *testing.T) {
	t.Parallel()
	const big = money.Amount(1 << 62)
	tests := []struct {
		spent, limit money.Amount
		want         int
	}{
		{0, 10_000_000, 0},
		{4_999_999, 10_000_000, 49},
		{5_000_000, 10_000_000, 50},
		{12_500_000, 10_000_000, 125},
		{big / 2, big, 50},
		{big, 1, 1000},
		{5, 0, 0},
	}
	for _, tt := range tests {
		if got := percentOf(tt.spent, tt.limit); got != tt.want {
			t.Errorf("percentOf(%d, %d) = %d; want %d", tt.spent, tt.limit, got, tt.want)
		}
	}
}

// TestCreditWords: the console says how much credit expires (or expired)
// and when, from the events' data.
func TestCreditWords(t *testing.T) {
	t.Parallel()
	amount := func(s string) string { return "$" + s }
	d := eventData{Remaining: "4.50", AmountExpired: "3.00", ExpiresAt: "2026-03-11T05:06:07.000000Z"}
	tone, s := creditWords("credit.expiring", d, amount)
	if tone != "warning" || !strings.HasPrefix(s, "$4.50 of credit expires on ") || strings.Contains(s, "T05") {
		t.Errorf("credit.expiring: %s %q", tone, s)
	}
	if _, s := creditWords("credit.expired", d, amount); !strings.HasPrefix(s, "$3.00 of credit expired on ") {
		t.Errorf("credit.expired: %q", s)
	}
	if _, s := creditWords("something.else", d, amount); s != "Event something.else." {
		t.Errorf("another event: %q", s)
	}
}

// TestAfterChargeWords: the console says how much of which top-up was
// refunded, and that a disputed one switched Automatic Payments off.
func TestAfterChargeWords(t *testing.T) {
	t.Parallel()
	amount := func(s string) string { return "$" + s }
	d := eventData{Refund: afterCharge{Amount: "3.00"}, Dispute: afterCharge{Amount: "10.00", Reason: "product_not_received"}}
	if tone, s := afterChargeWords("top_up.refunded", d, "Manual top-up of $10.00", amount); tone != "info" ||
		s != "$3.00 of the manual top-up of $10.00 was refunded to your card and left the balance." {
		t.Errorf("refunded: %s %q", tone, s)
	}
	if tone, s := afterChargeWords("top_up.disputed", d, "Automatic top-up of $10.00", amount); tone != "error" ||
		!strings.HasPrefix(s, "Your bank disputes the automatic top-up of $10.00 (product not received).") || !strings.Contains(s, "Automatic Payments were switched off") {
		t.Errorf("disputed: %s %q", tone, s)
	}
	if got := disabledText("dispute"); !strings.Contains(got, "disputed") {
		t.Errorf("disabledText(dispute) = %q", got)
	}
}
