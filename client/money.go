package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Money is an exact decimal amount as the API spells it: "10.00",
// "0.000125", "-3.50" for a signed balance. It is a string so that no
// amount ever passes through a float; Micros and MoneyFromMicros convert to
// and from whole millionths for arithmetic.
type Money string

// MicrosPerUnit is how many micros make one unit of currency.
const MicrosPerUnit = 1_000_000

// errMoney is the refusal of a string that is not an amount.
var errMoney = errors.New("not a decimal amount with at most 6 fraction digits")

// ParseMoney checks s as the API reads an amount on input (digits, an
// optional point and up to 6 fraction digits; no sign, exponent, leading
// zeros or spaces) and returns it as Money.
func ParseMoney(s string) (Money, error) {
	whole, frac, point := strings.Cut(s, ".")
	ok := whole != "" && digits(whole) && (len(whole) == 1 || whole[0] != '0') &&
		(!point || (frac != "" && len(frac) <= 6 && digits(frac)))
	if !ok {
		return "", fmt.Errorf("topup: money %q: %w", s, errMoney)
	}
	return Money(s), nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Micros returns m in millionths of a unit ("10.5" is 10,500,000); a
// leading minus (a balance in overdraft) gives a negative number.
func (m Money) Micros() (int64, error) {
	s := string(m)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	if _, err := ParseMoney(s); err != nil {
		return 0, err
	}
	whole, frac, _ := strings.Cut(s, ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (1<<63-1)/MicrosPerUnit-1 {
		return 0, fmt.Errorf("topup: money %q: out of range", string(m))
	}
	f, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	n := w*MicrosPerUnit + f
	if neg {
		n = -n
	}
	return n, nil
}

// MoneyFromMicros spells n micros as Money with the fraction digits it
// needs and at least two ("10.50", "0.000125", "-3.00").
func MoneyFromMicros(n int64) Money {
	sign := ""
	u := uint64(n)
	if n < 0 {
		sign, u = "-", uint64(-n)
	}
	frac := fmt.Sprintf("%06d", u%MicrosPerUnit)
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return Money(fmt.Sprintf("%s%d.%s", sign, u/MicrosPerUnit, frac))
}

// String returns the amount as the API spells it.
func (m Money) String() string { return string(m) }

// Cmp compares two amounts by value ("10" equals "10.00"): -1, 0 or +1.
// An amount that does not parse compares as zero.
func (m Money) Cmp(o Money) int {
	a, _ := m.Micros()
	b, _ := o.Micros()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// MoneyPtr returns a pointer to m, for the optional amounts of a request.
func MoneyPtr(m Money) *Money { return &m }
