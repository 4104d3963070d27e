package input

import (
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// DefaultMaxAmount is TOPUP_MAX_AMOUNT's default: 1,000,000.00.
const DefaultMaxAmount = 1_000_000 * money.MicrosPerUnit

// Amount reads a required money string that must be above zero and at most
// max (TOPUP_MAX_AMOUNT): the one amount of a usage, credit, hold or
// top-up. A max of zero or less means DefaultMaxAmount.
func Amount(field string, v *string, max money.Amount) (money.Amount, error) {
	if v == nil {
		return 0, apperr.Invalidf(field, "is required")
	}
	a, err := money.Parse(*v)
	if err != nil {
		return 0, apperr.Invalidf(field, "%v", err)
	}
	if max <= 0 {
		max = DefaultMaxAmount
	}
	switch {
	case a == 0:
		return 0, apperr.Invalidf(field, "must be greater than zero")
	case a > max:
		return 0, apperr.Invalidf(field, "must be at most %s", max)
	}
	return a, nil
}
