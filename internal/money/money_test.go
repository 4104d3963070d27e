package money

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func mustCurrency(tb testing.TB, code string) Currency {
	tb.Helper()
	c, err := LookupCurrency(code)
	if err != nil {
		tb.Fatalf("LookupCurrency(%q): %v", code, err)
	}
	return c
}

var parseAccept = []struct {
	in   string
	want Amount
}{
	{"0", 0},
	{"0.0", 0},
	{"0.000000", 0},
	{"1", 1_000_000},
	{"10", 10_000_000},
	{"10.5", 10_500_000},
	{"10.50", 10_500_000},
	{"10.500000", 10_500_000},
	{"0.000125", 125},
	{"0.000001", 1},
	{"0.5", 500_000},
	{"1.234567", 1_234_567},
	{"1.000000", 1_000_000},
	{"100", 100_000_000},
	{"123456789.987654", 123_456_789_987_654},
	{"9223372036854", 9_223_372_036_854_000_000},
	{"9223372036854.7", 9_223_372_036_854_700_000},
	{"9223372036854.775807", math.MaxInt64},
	{"9223372036853.999999", 9_223_372_036_853_999_999},
}

var parseReject = []struct {
	in   string
	want error
}{
	{"", ErrSyntax},
	{" 1", ErrSyntax},
	{"1 ", ErrSyntax},
	{"\t1", ErrSyntax},
	{"1\n", ErrSyntax},
	{"+1", ErrSyntax},
	{"-1", ErrSyntax},
	{"-0", ErrSyntax},
	{"1e3", ErrSyntax},
	{"1E3", ErrSyntax},
	{"1.5e3", ErrSyntax},
	{"01", ErrSyntax},
	{"00.5", ErrSyntax},
	{"00", ErrSyntax},
	{"000", ErrSyntax},
	{"0x10", ErrSyntax},
	{"1,000", ErrSyntax},
	{"1,5", ErrSyntax},
	{"1_000", ErrSyntax},
	{"NaN", ErrSyntax},
	{"Inf", ErrSyntax},
	{"+Inf", ErrSyntax},
	{"١٢", ErrSyntax},  // Arabic-Indic digits
	{"１", ErrSyntax},   // fullwidth digit one
	{"1٫5", ErrSyntax}, // Arabic decimal separator
	{"1.2.3", ErrSyntax},
	{"10.", ErrSyntax},
	{".5", ErrSyntax},
	{".", ErrSyntax},
	{"..", ErrSyntax},
	{"1..2", ErrSyntax},
	{"1.-2", ErrSyntax},
	{"1.\x00", ErrSyntax},
	{"\x00", ErrSyntax},
	{"$1", ErrSyntax},
	{"1.0000000x", ErrSyntax},            // syntax wins over precision
	{"99999999999999999999x", ErrSyntax}, // syntax wins over overflow
	{"0.0000001", ErrTooPrecise},
	{"1.0000000", ErrTooPrecise},
	{"0.0000000000000000000001", ErrTooPrecise},
	{"9223372036854.7758071", ErrTooPrecise},        // precision wins over overflow
	{"99999999999999999999.1234567", ErrTooPrecise}, // precision wins over overflow
	{"9223372036854.775808", ErrOverflow},
	{"9223372036854.8", ErrOverflow},
	{"9223372036855", ErrOverflow},
	{"99999999999999999999", ErrOverflow},
	{"18446744073709551616", ErrOverflow}, // 2^64: would wrap a naive uint64
	{"184467440737095.51616", ErrOverflow},
	{strings.Repeat("9", 1000), ErrOverflow},
}

var parseSentinels = []error{ErrSyntax, ErrTooPrecise, ErrOverflow}

func TestParseAccept(t *testing.T) {
	t.Parallel()
	for _, tt := range parseAccept {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseReject(t *testing.T) {
	t.Parallel()
	for _, tt := range parseReject {
		got, err := Parse(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) = %d, %v; want error wrapping %v", tt.in, got, err, tt.want)
			continue
		}
		if got != 0 {
			t.Errorf("Parse(%q) returned %d alongside error %v; want 0", tt.in, got, err)
		}
		for _, other := range parseSentinels {
			if other != tt.want && errors.Is(err, other) {
				t.Errorf("Parse(%q) error %v also matches %v", tt.in, err, other)
			}
		}
		// The message must say more than the bare sentinel.
		if err.Error() == tt.want.Error() {
			t.Errorf("Parse(%q) error %q has no detail", tt.in, err)
		}
	}
}

func TestParseErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := Parse("1e3")
	if msg := err.Error(); !strings.Contains(msg, `"1e3"`) || !strings.Contains(msg, "'e'") {
		t.Errorf("Parse(\"1e3\") error = %q; want it to quote the input and the bad byte", msg)
	}
	_, err = Parse(strings.Repeat("x", 10_000))
	if msg := err.Error(); len(msg) > 200 {
		t.Errorf("error for a long input is %d bytes; want it shortened", len(msg))
	}
}

var formatCases = []struct {
	code string
	in   Amount
	want string
}{
	{"usd", 10_000_000, "10.00"},
	{"usd", 125, "0.000125"},
	{"usd", 10_500_000, "10.50"},
	{"usd", 0, "0.00"},
	{"usd", 1, "0.000001"},
	{"usd", 1_234_567, "1.234567"},
	{"usd", 1_230_000, "1.23"},
	{"usd", 1_234_500, "1.2345"},
	{"usd", 1_200_000, "1.20"},
	{"usd", 10_000, "0.01"},
	{"usd", -1_500_000, "-1.50"},
	{"usd", -125, "-0.000125"},
	{"usd", math.MaxInt64, "9223372036854.775807"},
	{"usd", math.MinInt64, "-9223372036854.775808"},
	{"usd", math.MinInt64 + 1, "-9223372036854.775807"},
	{"usd", 9_223_372_036_854_000_000, "9223372036854.00"},
	{"jpy", 100_000_000, "100"},
	{"jpy", 100_500_000, "100.5"},
	{"jpy", 0, "0"},
	{"jpy", 50_000_000, "50"},
	{"jpy", 1, "0.000001"},
	{"jpy", -1_000_000, "-1"},
	{"jpy", math.MinInt64, "-9223372036854.775808"},
	{"krw", 1_000_000_000, "1000"},
	{"gbp", 300_000, "0.30"},
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tt := range formatCases {
		c := mustCurrency(t, tt.code)
		if got := tt.in.Format(c); got != tt.want {
			t.Errorf("Amount(%d).Format(%s) = %q; want %q", int64(tt.in), tt.code, got, tt.want)
		}
	}
}

func TestFormatClampsMinor(t *testing.T) {
	t.Parallel()
	a := Amount(1_500_000)
	if got := a.Format(Currency{Minor: -3}); got != "1.5" {
		t.Errorf("Format with Minor -3 = %q; want %q", got, "1.5")
	}
	if got := a.Format(Currency{Minor: 9}); got != "1.500000" {
		t.Errorf("Format with Minor 9 = %q; want %q", got, "1.500000")
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Amount
		want string
	}{
		{0, "0.00"},
		{10_500_000, "10.50"},
		{125, "0.000125"},
		{-1_500_000, "-1.50"},
		{math.MinInt64, "-9223372036854.775808"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Amount(%d).String() = %q; want %q", int64(tt.in), got, tt.want)
		}
		if got := fmt.Sprint(tt.in); got != tt.want {
			t.Errorf("fmt.Sprint(Amount(%d)) = %q; want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range formatCases {
		if tt.in < 0 {
			continue
		}
		got, err := Parse(tt.want)
		if err != nil || got != tt.in {
			t.Errorf("Parse(%q) = %d, %v; want %d (round trip)", tt.want, got, err, tt.in)
		}
	}
	for _, tt := range parseAccept {
		usd := mustCurrency(t, "usd")
		s := tt.want.Format(usd)
		got, err := Parse(s)
		if err != nil || got != tt.want {
			t.Errorf("Parse(Format(%d)) = Parse(%q) = %d, %v", int64(tt.want), s, got, err)
		}
	}
}

// TestAllocs is deliberately not parallel: testing.AllocsPerRun counts
// allocations process-wide, and parallel tests only start after the
// sequential ones have finished.
func TestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are not checked in -short mode")
	}
	usd := mustCurrency(t, "usd")
	for _, s := range []string{"0", "10.50", "0.000125", "9223372036854.775807"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Parse(s) }); n != 0 {
			t.Errorf("Parse(%q) allocates %v times; want 0", s, n)
		}
	}
	for _, a := range []Amount{0, 10_500_000, 125, math.MinInt64} {
		if n := testing.AllocsPerRun(100, func() { _ = a.Format(usd) }); n > 1 {
			t.Errorf("Amount(%d).Format allocates %v times; want at most 1", int64(a), n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = LookupCurrency("USD") }); n != 0 {
		t.Errorf("LookupCurrency allocates %v times; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Sub(10, 3) }); n != 0 {
		t.Errorf("Sub allocates %v times; want 0", n)
	}
}

func TestIsWholeMinor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		in   Amount
		want bool
	}{
		{"usd", 0, true},
		{"usd", 10_000, true},
		{"usd", 10_500_000, true},
		{"usd", 10_001, false},
		{"usd", 1, false},
		{"usd", -10_000, true},
		{"usd", -1, false},
		{"usd", math.MinInt64, false},
		{"jpy", 1_000_000, true},
		{"jpy", 50_000_000, true},
		{"jpy", 10_000, false},
		{"jpy", 1_500_000, false},
		{"krw", 1_000_000_000, true},
	}
	for _, tt := range tests {
		c := mustCurrency(t, tt.code)
		if got := tt.in.IsWholeMinor(c); got != tt.want {
			t.Errorf("Amount(%d).IsWholeMinor(%s) = %v; want %v", int64(tt.in), tt.code, got, tt.want)
		}
	}
	if Amount(0).IsWholeMinor(Currency{Code: "bad", Minor: 7}) {
		t.Error("IsWholeMinor with Minor 7 = true; want false")
	}
}

func TestRoundUpMinor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code    string
		in      Amount
		want    Amount
		wantErr error
	}{
		{"usd", 0, 0, nil},
		{"usd", 1, 10_000, nil},
		{"usd", 125, 10_000, nil},
		{"usd", 10_000, 10_000, nil},
		{"usd", 10_001, 20_000, nil},
		{"usd", 19_999, 20_000, nil},
		{"usd", 10_500_001, 10_510_000, nil},
		{"usd", -1, 0, nil},
		{"usd", -9_999, 0, nil},
		{"usd", -10_000, -10_000, nil},
		{"usd", -10_001, -10_000, nil},
		{"usd", math.MinInt64, math.MinInt64 + 5_808, nil},
		{"usd", math.MaxInt64 - 5_807, math.MaxInt64 - 5_807, nil},
		{"usd", math.MaxInt64 - 5_808, math.MaxInt64 - 5_807, nil},
		{"usd", math.MaxInt64, 0, ErrOverflow},
		{"usd", math.MaxInt64 - 5_806, 0, ErrOverflow},
		{"jpy", 1, 1_000_000, nil},
		{"jpy", 1_500_000, 2_000_000, nil},
		{"jpy", 2_000_000, 2_000_000, nil},
		{"jpy", -1_500_000, -1_000_000, nil},
		{"jpy", math.MaxInt64, 0, ErrOverflow},
		{"jpy", math.MaxInt64 - 775_807, math.MaxInt64 - 775_807, nil},
	}
	for _, tt := range tests {
		c := mustCurrency(t, tt.code)
		got, err := tt.in.RoundUpMinor(c)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Amount(%d).RoundUpMinor(%s) = %d, %v; want error wrapping %v", int64(tt.in), tt.code, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Amount(%d).RoundUpMinor(%s) = %d, %v; want %d, nil", int64(tt.in), tt.code, got, err, tt.want)
		}
		if err == nil && !got.IsWholeMinor(c) {
			t.Errorf("Amount(%d).RoundUpMinor(%s) = %d is not whole minor units", int64(tt.in), tt.code, got)
		}
	}
	if _, err := Amount(1).RoundUpMinor(Currency{Code: "bad", Minor: -1}); !errors.Is(err, ErrUnknownCurrency) {
		t.Errorf("RoundUpMinor with Minor -1: err = %v; want ErrUnknownCurrency", err)
	}
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code    string
		in      Amount
		want    int64
		wantErr error
	}{
		{"usd", 0, 0, nil},
		{"usd", 10_500_000, 1_050, nil},
		{"usd", 500_000, 50, nil},
		{"usd", 10_000, 1, nil},
		{"usd", -10_000, -1, nil},
		{"usd", math.MaxInt64 - 5_807, 922_337_203_685_477, nil},
		{"usd", 125, 0, ErrNotWholeMinor},
		{"usd", 10_500_001, 0, ErrNotWholeMinor},
		{"usd", math.MinInt64, 0, ErrNotWholeMinor},
		{"jpy", 100_000_000, 100, nil},
		{"jpy", 50_000_000, 50, nil},
		{"jpy", 100_500_000, 0, ErrNotWholeMinor},
		{"gbp", 300_000, 30, nil},
	}
	for _, tt := range tests {
		c := mustCurrency(t, tt.code)
		got, err := tt.in.MinorUnits(c)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Amount(%d).MinorUnits(%s) = %d, %v; want error wrapping %v", int64(tt.in), tt.code, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Amount(%d).MinorUnits(%s) = %d, %v; want %d, nil", int64(tt.in), tt.code, got, err, tt.want)
		}
		back, err := FromMinor(got, c)
		if err != nil || back != tt.in {
			t.Errorf("FromMinor(%d, %s) = %d, %v; want %d (round trip)", got, tt.code, back, err, tt.in)
		}
	}
	if _, err := Amount(0).MinorUnits(Currency{Code: "bad", Minor: 7}); !errors.Is(err, ErrUnknownCurrency) {
		t.Errorf("MinorUnits with Minor 7: err = %v; want ErrUnknownCurrency", err)
	}
}

func TestFromMinor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code    string
		in      int64
		want    Amount
		wantErr error
	}{
		{"usd", 0, 0, nil},
		{"usd", 1_050, 10_500_000, nil},
		{"usd", -1, -10_000, nil},
		{"usd", math.MaxInt64 / 10_000, (math.MaxInt64 / 10_000) * 10_000, nil},
		{"usd", math.MaxInt64/10_000 + 1, 0, ErrOverflow},
		{"usd", math.MinInt64 / 10_000, (math.MinInt64 / 10_000) * 10_000, nil},
		{"usd", math.MinInt64/10_000 - 1, 0, ErrOverflow},
		{"usd", math.MaxInt64, 0, ErrOverflow},
		{"usd", math.MinInt64, 0, ErrOverflow},
		{"jpy", 50, 50_000_000, nil},
		{"jpy", maxWhole, maxWhole * MicrosPerUnit, nil},
		{"jpy", maxWhole + 1, 0, ErrOverflow},
		{"jpy", -maxWhole - 1, 0, ErrOverflow},
	}
	for _, tt := range tests {
		c := mustCurrency(t, tt.code)
		got, err := FromMinor(tt.in, c)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("FromMinor(%d, %s) = %d, %v; want error wrapping %v", tt.in, tt.code, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("FromMinor(%d, %s) = %d, %v; want %d, nil", tt.in, tt.code, got, err, tt.want)
		}
	}
	if _, err := FromMinor(1, Currency{Code: "bad", Minor: 7}); !errors.Is(err, ErrUnknownCurrency) {
		t.Errorf("FromMinor with Minor 7: err = %v; want ErrUnknownCurrency", err)
	}
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	const (
		maxA = Amount(math.MaxInt64)
		minA = Amount(math.MinInt64)
	)
	tests := []struct {
		name    string
		f       func() (Amount, error)
		want    Amount
		wantErr bool
	}{
		{"1+2", func() (Amount, error) { return Add(1, 2) }, 3, false},
		{"-5+3", func() (Amount, error) { return Add(-5, 3) }, -2, false},
		{"max+0", func() (Amount, error) { return Add(maxA, 0) }, maxA, false},
		{"max+1", func() (Amount, error) { return Add(maxA, 1) }, 0, true},
		{"1+max", func() (Amount, error) { return Add(1, maxA) }, 0, true},
		{"max+max", func() (Amount, error) { return Add(maxA, maxA) }, 0, true},
		{"min+-1", func() (Amount, error) { return Add(minA, -1) }, 0, true},
		{"min+min", func() (Amount, error) { return Add(minA, minA) }, 0, true},
		{"max+min", func() (Amount, error) { return Add(maxA, minA) }, -1, false},
		{"min+max", func() (Amount, error) { return Add(minA, maxA) }, -1, false},
		{"5-3", func() (Amount, error) { return Sub(5, 3) }, 2, false},
		{"3-5", func() (Amount, error) { return Sub(3, 5) }, -2, false},
		{"min-1", func() (Amount, error) { return Sub(minA, 1) }, 0, true},
		{"0-min", func() (Amount, error) { return Sub(0, minA) }, 0, true},
		{"-1-min", func() (Amount, error) { return Sub(-1, minA) }, maxA, false},
		{"-1-max", func() (Amount, error) { return Sub(-1, maxA) }, minA, false},
		{"-2-max", func() (Amount, error) { return Sub(-2, maxA) }, 0, true},
		{"max--1", func() (Amount, error) { return Sub(maxA, -1) }, 0, true},
		{"max-max", func() (Amount, error) { return Sub(maxA, maxA) }, 0, false},
		{"min-min", func() (Amount, error) { return Sub(minA, minA) }, 0, false},
		{"-(5)", func() (Amount, error) { return Neg(5) }, -5, false},
		{"-(0)", func() (Amount, error) { return Neg(0) }, 0, false},
		{"-(max)", func() (Amount, error) { return Neg(maxA) }, -maxA, false},
		{"-(min)", func() (Amount, error) { return Neg(minA) }, 0, true},
	}
	for _, tt := range tests {
		got, err := tt.f()
		if tt.wantErr {
			if !errors.Is(err, ErrOverflow) {
				t.Errorf("%s = %d, %v; want error wrapping ErrOverflow", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s = %d, %v; want %d, nil", tt.name, got, err, tt.want)
		}
	}
}

// TestArithmeticOracle checks Add and Sub against big.Int on values near
// the int64 boundaries, where overflow detection is easiest to get wrong.
func TestArithmeticOracle(t *testing.T) {
	t.Parallel()
	var vals []Amount
	for _, base := range []int64{0, math.MaxInt64, math.MinInt64, math.MaxInt64 / 2, math.MinInt64 / 2} {
		for d := int64(-2); d <= 2; d++ {
			vals = append(vals, Amount(base+d)) // wraps at the extremes, which is fine
		}
	}
	lo, hi := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	fits := func(x *big.Int) bool { return x.Cmp(lo) >= 0 && x.Cmp(hi) <= 0 }
	for _, a := range vals {
		for _, b := range vals {
			ba, bb := big.NewInt(int64(a)), big.NewInt(int64(b))
			sum := new(big.Int).Add(ba, bb)
			got, err := Add(a, b)
			if fits(sum) != (err == nil) || (err == nil && int64(got) != sum.Int64()) {
				t.Errorf("Add(%d, %d) = %d, %v; exact sum %v", int64(a), int64(b), got, err, sum)
			}
			diff := new(big.Int).Sub(ba, bb)
			got, err = Sub(a, b)
			if fits(diff) != (err == nil) || (err == nil && int64(got) != diff.Int64()) {
				t.Errorf("Sub(%d, %d) = %d, %v; exact difference %v", int64(a), int64(b), got, err, diff)
			}
		}
	}
}

func TestLookupCurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		wantCode  string
		wantMinor int
		wantMin   Amount
	}{
		{"usd", "usd", 2, 500_000},
		{"USD", "usd", 2, 500_000},
		{"Usd", "usd", 2, 500_000},
		{"eur", "eur", 2, 500_000},
		{"gbp", "gbp", 2, 300_000},
		{"GBP", "gbp", 2, 300_000},
		{"jpy", "jpy", 0, 50_000_000},
		{"JPY", "jpy", 0, 50_000_000},
		{"krw", "krw", 0, 1_000_000_000},
		{"cad", "cad", 2, 500_000},
		{"aud", "aud", 2, 500_000},
		{"chf", "chf", 2, 500_000},
		{"sek", "sek", 2, 3_000_000},
		{"nok", "nok", 2, 3_000_000},
		{"dkk", "dkk", 2, 2_500_000},
		{"nzd", "nzd", 2, 500_000},
		{"sgd", "sgd", 2, 500_000},
		{"hkd", "hkd", 2, 4_000_000},
		{"mxn", "mxn", 2, 10_000_000},
		{"brl", "brl", 2, 500_000},
		{"inr", "inr", 2, 500_000},
		{"pln", "pln", 2, 2_000_000},
	}
	for _, tt := range tests {
		c, err := LookupCurrency(tt.in)
		if err != nil {
			t.Errorf("LookupCurrency(%q): %v", tt.in, err)
			continue
		}
		if c.Code != tt.wantCode || c.Minor != tt.wantMinor || c.MinCharge != tt.wantMin {
			t.Errorf("LookupCurrency(%q) = %+v; want {Code:%s Minor:%d MinCharge:%d}", tt.in, c, tt.wantCode, tt.wantMinor, tt.wantMin)
		}
	}
	for _, in := range []string{"", "us", "usdd", "xyz", "US D", " usd", "usd ", "ｕsd", "u\x00d", "btc"} {
		c, err := LookupCurrency(in)
		if !errors.Is(err, ErrUnknownCurrency) {
			t.Errorf("LookupCurrency(%q) = %+v, %v; want error wrapping ErrUnknownCurrency", in, c, err)
		}
		if c != (Currency{}) {
			t.Errorf("LookupCurrency(%q) returned non-zero %+v with its error", in, c)
		}
	}
}

// TestCurrencyTable checks invariants every supported currency must meet so
// that a new entry cannot break charging.
func TestCurrencyTable(t *testing.T) {
	t.Parallel()
	for code, c := range currencies {
		if c.Code != code || strings.ToLower(code) != code || len(code) != 3 {
			t.Errorf("currency %q has code %q; want the same three lower-case letters", code, c.Code)
		}
		if c.Minor < 0 || c.Minor > fracDigits {
			t.Errorf("currency %q has Minor %d", code, c.Minor)
		}
		if c.MinCharge <= 0 || !c.MinCharge.IsWholeMinor(c) {
			t.Errorf("currency %q has MinCharge %v; want a positive whole number of minor units", code, c.MinCharge)
		}
		up, err := LookupCurrency(strings.ToUpper(code))
		if err != nil || up != c {
			t.Errorf("LookupCurrency(%q) = %+v, %v; want %+v", strings.ToUpper(code), up, err, c)
		}
	}
}

// refPattern is the accepted grammar written independently of Parse.
var refPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)(?:\.([0-9]+))?$`)

// refParse is a slow but obviously correct oracle for Parse.
func refParse(s string) (Amount, error) {
	m := refPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, ErrSyntax
	}
	if len(m[2]) > 6 {
		return 0, ErrTooPrecise
	}
	v, ok := new(big.Int).SetString(m[1]+m[2]+strings.Repeat("0", 6-len(m[2])), 10)
	if !ok {
		panic("refParse: bad digits " + s)
	}
	if !v.IsInt64() {
		return 0, ErrOverflow
	}
	return Amount(v.Int64()), nil
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseAccept {
		f.Add(tt.in)
	}
	for _, tt := range parseReject {
		f.Add(tt.in)
	}
	usd := mustCurrency(f, "usd")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)

		want, wantErr := refParse(s)
		if wantErr != nil {
			if !errors.Is(err, wantErr) {
				t.Fatalf("Parse(%q) = %d, %v; want error wrapping %v", s, got, err, wantErr)
			}
		} else if err != nil || got != want {
			t.Fatalf("Parse(%q) = %d, %v; want %d, nil", s, got, err, want)
		}

		if err != nil {
			return
		}
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("Parse accepted %q, which is not UTF-8 text without U+0000", s)
		}
		if strings.ContainsAny(s, "eE+- ") {
			t.Fatalf("Parse accepted %q, which contains a forbidden character", s)
		}
		if _, frac, ok := strings.Cut(s, "."); ok && len(frac) > 6 {
			t.Fatalf("Parse accepted %q, which has more than 6 fraction digits", s)
		}
		if got < 0 {
			t.Fatalf("Parse(%q) = %d; want non-negative", s, got)
		}
		out := got.Format(usd)
		back, err := Parse(out)
		if err != nil || back != got {
			t.Fatalf("Parse(Format(Parse(%q))) = Parse(%q) = %d, %v; want %d", s, out, back, err, got)
		}
	})
}

func FuzzFormatRoundTrip(f *testing.F) {
	for _, v := range []int64{0, 1, 125, 10_000, 10_500_000, 1_234_567, -1, -1_500_000, math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
		f.Add(v)
	}
	usd := mustCurrency(f, "usd")
	jpy := mustCurrency(f, "jpy")
	f.Fuzz(func(t *testing.T, v int64) {
		a := Amount(v)
		for _, c := range []Currency{usd, jpy} {
			s := a.Format(c)
			if a < 0 {
				if !strings.HasPrefix(s, "-") {
					t.Fatalf("Amount(%d).Format(%s) = %q; want a leading '-'", v, c.Code, s)
				}
				if a == math.MinInt64 {
					continue
				}
				back, err := Parse(s[1:])
				if err != nil || back != -a {
					t.Fatalf("Parse(%q) = %d, %v; want %d", s[1:], back, err, -a)
				}
				continue
			}
			back, err := Parse(s)
			if err != nil || back != a {
				t.Fatalf("Parse(Amount(%d).Format(%s)) = Parse(%q) = %d, %v", v, c.Code, s, back, err)
			}
		}
	})
}

var (
	sinkAmount Amount
	sinkString string
)

func BenchmarkParse(b *testing.B) {
	for _, s := range []string{"10", "10.50", "0.000125", "9223372036854.775807"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a, err := Parse(s)
				if err != nil {
					b.Fatal(err)
				}
				sinkAmount = a
			}
		})
	}
}

func BenchmarkFormat(b *testing.B) {
	usd := mustCurrency(b, "usd")
	for _, a := range []Amount{10_500_000, 125, math.MaxInt64} {
		b.Run(fmt.Sprint(int64(a)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkString = a.Format(usd)
			}
		})
	}
}
