// Package money holds Topup's representation of money: an exact integer
// count of micros of a currency's major unit, read from and written to
// decimal strings.
//
// Balances are debited at a high rate and must reconcile to the last micro,
// so nothing in this package ever touches a float, and every arithmetic
// operation that could wrap around reports ErrOverflow instead.
package money

import (
	"errors"
	"fmt"
	"math"
)

// Amount is a quantity of money in micros of the currency's major unit.
//
// Micros rather than cents let Topup price metered usage below one cent
// (for example 0.000125 per request) while a plain int64 still keeps
// arithmetic exact and cheap; the range is about ±9.2 trillion units.
type Amount int64

// MicrosPerUnit is the number of micros in one major unit; it is exported so
// that storage and provider code converts with the same factor as Parse.
const MicrosPerUnit = 1_000_000

// fracDigits is the number of decimal digits that MicrosPerUnit can hold.
const fracDigits = 6

const (
	maxWhole        = math.MaxInt64 / MicrosPerUnit // 9223372036854
	maxFracAtMaxInt = math.MaxInt64 % MicrosPerUnit // 775807
)

// pow10 holds 10^i for the exponents a micro-based amount can need.
var pow10 = [...]int64{1, 10, 100, 1_000, 10_000, 100_000, 1_000_000}

var (
	// ErrSyntax is wrapped by Parse when its input is not a plain decimal
	// string, so that handlers can answer with a client error instead of
	// guessing at what a sloppy amount was meant to be.
	ErrSyntax = errors.New("money: malformed amount")

	// ErrTooPrecise is wrapped by Parse when the input has more than six
	// fraction digits, because silently rounding a money amount would move
	// value that nobody asked to move.
	ErrTooPrecise = errors.New("money: more precise than one micro")

	// ErrOverflow is wrapped whenever a result does not fit in int64 micros,
	// so that a balance can never wrap around to a wrong value.
	ErrOverflow = errors.New("money: amount out of range")

	// ErrUnknownCurrency is wrapped when a currency code is not one Topup
	// supports (or a Currency value is unusable), so that a request in an
	// unexpected currency fails before any money moves.
	ErrUnknownCurrency = errors.New("money: unknown currency")

	// ErrNotWholeMinor is wrapped by MinorUnits when an amount has a part
	// smaller than the currency's minor unit, because payment providers
	// only accept whole minor units and truncating would lose money.
	ErrNotWholeMinor = errors.New("money: not a whole number of minor units")
)

// Currency describes one ISO currency as Topup uses it.
//
// It carries what billing needs to talk to a card processor: how many
// minor-unit digits the processor expects and the smallest charge it takes.
type Currency struct {
	// Code is the lower-case ISO 4217 code, the form Stripe requires.
	Code string
	// Minor is the number of minor-unit digits (2 for usd, 0 for jpy);
	// MinorUnits and FromMinor use it to speak the provider's integers.
	Minor int
	// MinCharge is the smallest card charge Stripe accepts in this
	// currency, so top-ups below it can be refused up front. Stripe
	// applies its minimum in the settlement currency, so a charge that
	// converts to less than the account's settlement minimum can still
	// be declined.
	MinCharge Amount
}

// currencies is the set Topup supports, keyed by lower-case code.
//
// Minimums are Stripe's published minimum charge amounts
// (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
// Stripe publishes no fixed KRW minimum (only "$0.50 US or equivalent"),
// so KRW uses a conservative 1,000 won, comfortably above 0.50 USD.
var currencies = func() map[string]Currency {
	list := []struct {
		code  string
		minor int
		min   string
	}{
		{"usd", 2, "0.50"},
		{"eur", 2, "0.50"},
		{"gbp", 2, "0.30"},
		{"jpy", 0, "50"},
		{"cad", 2, "0.50"},
		{"aud", 2, "0.50"},
		{"chf", 2, "0.50"},
		{"krw", 0, "1000"},
		{"sek", 2, "3.00"},
		{"nok", 2, "3.00"},
		{"dkk", 2, "2.50"},
		{"nzd", 2, "0.50"},
		{"sgd", 2, "0.50"},
		{"hkd", 2, "4.00"},
		{"mxn", 2, "10.00"},
		{"brl", 2, "0.50"},
		{"inr", 2, "0.50"},
		{"pln", 2, "2.00"},
		{"aed", 2, "2.00"},
		{"czk", 2, "15.00"},
		{"ron", 2, "2.00"},
		{"myr", 2, "2.00"},
		{"thb", 2, "10.00"},
	}
	m := make(map[string]Currency, len(list))
	for _, e := range list {
		mc, err := Parse(e.min)
		if err != nil {
			panic("money: bad minimum for " + e.code + ": " + err.Error())
		}
		m[e.code] = Currency{Code: e.code, Minor: e.minor, MinCharge: mc}
	}
	return m
}()

// LookupCurrency returns the Currency for an ISO 4217 code in either case,
// so that codes from clients, Stripe (lower case) and ISO tables (upper
// case) all resolve to one description. Unsupported codes return an error
// wrapping ErrUnknownCurrency.
func LookupCurrency(code string) (Currency, error) {
	if len(code) == 3 {
		var k [3]byte
		for i := range k {
			b := code[i]
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			k[i] = b
		}
		if c, ok := currencies[string(k[:])]; ok {
			return c, nil
		}
	}
	return Currency{}, fmt.Errorf("%w: %s", ErrUnknownCurrency, quote(code))
}

// minorStep returns the number of micros in one minor unit of c, or an
// error if c.Minor cannot be expressed in micros.
func (c Currency) minorStep() (int64, error) {
	if c.Minor < 0 || c.Minor > fracDigits {
		return 0, fmt.Errorf("%w: %s has %d minor digits, want 0 to %d",
			ErrUnknownCurrency, quote(c.Code), c.Minor, fracDigits)
	}
	return pow10[fracDigits-c.Minor], nil
}

// Parse reads a non-negative decimal string: digits, an optional '.', and up
// to 6 fraction digits.
//
// The accepted form is deliberately narrow ("0", "10", "10.5", "0.000125";
// never "10.", ".5", "01", "+1", "1e3", "1,000" or surrounding spaces) so
// that every amount on the wire has exactly one meaning and no locale or
// float syntax can slip through. Negative amounts are refused because
// clients state how much to charge or credit, never a signed delta.
// Errors wrap ErrSyntax, ErrTooPrecise or ErrOverflow (checked in that
// order) for errors.Is; a valid input does not allocate.
func Parse(s string) (Amount, error) {
	if s == "" {
		return 0, parseError(ErrSyntax, s, "empty string")
	}

	// Integer part. Past maxWhole the value can only overflow, so stop
	// accumulating and keep scanning: syntax errors are reported first.
	var whole uint64
	over := false
	i := 0
	for ; i < len(s); i++ {
		b := s[i]
		if b == '.' {
			break
		}
		if b < '0' || b > '9' {
			return 0, unexpectedByte(s, i)
		}
		if !over {
			whole = whole*10 + uint64(b-'0')
			over = whole > maxWhole
		}
	}
	if i == 0 {
		return 0, parseError(ErrSyntax, s, "a digit must come before the decimal point")
	}
	if s[0] == '0' && i > 1 {
		return 0, parseError(ErrSyntax, s, "leading zeros are not allowed")
	}

	// Fraction part.
	var frac uint64
	if i < len(s) {
		i++ // skip '.'
		start := i
		for ; i < len(s); i++ {
			b := s[i]
			if b < '0' || b > '9' {
				return 0, unexpectedByte(s, i)
			}
			if i-start < fracDigits {
				frac = frac*10 + uint64(b-'0')
			}
		}
		n := i - start
		switch {
		case n == 0:
			return 0, parseError(ErrSyntax, s, "the decimal point must be followed by a digit")
		case n > fracDigits:
			return 0, parseError(ErrTooPrecise, s, fmt.Sprintf("%d fraction digits, at most %d allowed", n, fracDigits))
		}
		frac *= uint64(pow10[fracDigits-n])
	}

	if over || (whole == maxWhole && frac > maxFracAtMaxInt) {
		return 0, parseError(ErrOverflow, s, "above 9223372036854.775807")
	}
	return Amount(whole*MicrosPerUnit + frac), nil
}

// Format renders a for currency c with at least c.Minor fraction digits and
// no trailing zeros beyond them ("10.00", "10.50", "0.000125" for usd;
// "100", "100.5" for jpy), so that ordinary prices look conventional while
// sub-minor amounts are shown exactly rather than rounded. Negative amounts
// get a leading '-'. A c.Minor outside 0..6 is clamped to that range.
// The result is always accepted by Parse when a is non-negative.
func (a Amount) Format(c Currency) string {
	return a.format(min(max(c.Minor, 0), fracDigits))
}

// String formats a with two minimum fraction digits, so that amounts in
// logs and %v output are readable without knowing their currency.
func (a Amount) String() string {
	return a.format(2)
}

// format renders a with at least minDigits (0..6) fraction digits using a
// stack buffer, so the only allocation is the returned string.
func (a Amount) format(minDigits int) string {
	// Longest output: "-9223372036854.775808" (21 bytes).
	var buf [24]byte
	u := uint64(a)
	if a < 0 {
		u = -u // two's complement: correct for math.MinInt64 too
	}
	whole, frac := u/MicrosPerUnit, u%MicrosPerUnit

	digits := fracDigits
	for digits > minDigits && frac%10 == 0 {
		frac /= 10
		digits--
	}

	i := len(buf)
	for range digits {
		i--
		buf[i] = byte('0' + frac%10)
		frac /= 10
	}
	if digits > 0 {
		i--
		buf[i] = '.'
	}
	for {
		i--
		buf[i] = byte('0' + whole%10)
		whole /= 10
		if whole == 0 {
			break
		}
	}
	if a < 0 {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

// IsWholeMinor reports whether a is a whole number of c's minor units (cents
// for usd, yen for jpy), which is what a card charge requires. It reports
// false for a Currency whose Minor is outside 0..6, since such an amount
// could never be sent to a provider.
func (a Amount) IsWholeMinor(c Currency) bool {
	step, err := c.minorStep()
	return err == nil && int64(a)%step == 0
}

// RoundUpMinor rounds a up (toward +infinity) to a whole number of c's minor
// units, so that the amount charged to a card never falls short of the
// credit it buys. It returns an error wrapping ErrOverflow if the result
// does not fit, or ErrUnknownCurrency if c.Minor is outside 0..6.
func (a Amount) RoundUpMinor(c Currency) (Amount, error) {
	step, err := c.minorStep()
	if err != nil {
		return 0, err
	}
	r := int64(a) % step
	switch {
	case r == 0:
		return a, nil
	case r < 0:
		// Truncating a negative amount moves it toward +infinity and
		// toward zero, so it cannot overflow.
		return a - Amount(r), nil
	}
	up := step - r
	if int64(a) > math.MaxInt64-up {
		return 0, fmt.Errorf("%w: rounding %s up to whole %s minor units", ErrOverflow, a, c.Code)
	}
	return a + Amount(up), nil
}

// MinorUnits returns a in c's minor units (cents for usd), the integer form
// provider APIs such as Stripe expect. It returns an error wrapping
// ErrNotWholeMinor rather than truncating if a has a sub-minor part (use
// RoundUpMinor first), or ErrUnknownCurrency if c.Minor is outside 0..6.
func (a Amount) MinorUnits(c Currency) (int64, error) {
	step, err := c.minorStep()
	if err != nil {
		return 0, err
	}
	if int64(a)%step != 0 {
		return 0, fmt.Errorf("%w: %s in %s", ErrNotWholeMinor, a.Format(c), c.Code)
	}
	return int64(a) / step, nil
}

// FromMinor converts minor units (cents for usd) from a provider into an
// Amount, so that charges and refunds reported by Stripe land in the ledger
// exactly. It returns an error wrapping ErrOverflow if the result does not
// fit, or ErrUnknownCurrency if c.Minor is outside 0..6.
func FromMinor(units int64, c Currency) (Amount, error) {
	step, err := c.minorStep()
	if err != nil {
		return 0, err
	}
	if units > math.MaxInt64/step || units < math.MinInt64/step {
		return 0, fmt.Errorf("%w: %d %s minor units", ErrOverflow, units, c.Code)
	}
	return Amount(units * step), nil
}

// Add returns a+b, or an error wrapping ErrOverflow instead of a wrapped
// around sum, so that a credit can never turn a balance negative.
func Add(a, b Amount) (Amount, error) {
	s := a + b
	// Overflow iff both operands have the same sign and the sum's differs.
	if (s^a)&(s^b) < 0 {
		return 0, fmt.Errorf("%w: %s + %s", ErrOverflow, a, b)
	}
	return s, nil
}

// Sub returns a-b, or an error wrapping ErrOverflow instead of a wrapped
// around difference, so that a debit can never turn into a credit.
func Sub(a, b Amount) (Amount, error) {
	d := a - b
	// Overflow iff the operands have different signs and the result's
	// sign differs from a's.
	if (a^b)&(a^d) < 0 {
		return 0, fmt.Errorf("%w: %s - %s", ErrOverflow, a, b)
	}
	return d, nil
}

// Neg returns -a, or an error wrapping ErrOverflow for math.MinInt64, whose
// negation does not fit and would silently stay negative.
func Neg(a Amount) (Amount, error) {
	if a == math.MinInt64 {
		return 0, fmt.Errorf("%w: -(%s)", ErrOverflow, a)
	}
	return -a, nil
}

// maxQuoted bounds how much of a caller's input is echoed in an error, since
// inputs come from clients and may be arbitrarily long.
const maxQuoted = 40

// quote returns s as a Go-quoted string, shortened if it is long.
func quote(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q...", s[:maxQuoted])
	}
	return fmt.Sprintf("%q", s)
}

// parseError wraps kind with a reason and the offending input.
func parseError(kind error, s, reason string) error {
	return fmt.Errorf("%w: %s: %s", kind, quote(s), reason)
}

// unexpectedByte reports the byte at s[i] that Parse cannot accept.
func unexpectedByte(s string, i int) error {
	b := s[i]
	if b >= 0x20 && b < 0x7f {
		return parseError(ErrSyntax, s, fmt.Sprintf("unexpected %q at offset %d", b, i))
	}
	return parseError(ErrSyntax, s, fmt.Sprintf("unexpected byte 0x%02x at offset %d", b, i))
}
