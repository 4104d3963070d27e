package topup

import (
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// Input is a PUT of the settings as the client sent it: nil means left out.
type Input struct {
	Enabled         *bool
	Threshold       *money.Amount
	Target          *money.Amount
	PaymentMethod   *string
	MonthlyLimit    *money.Amount
	MonthlyLimitSet bool // monthly_limit was present (null removes the cap)
}

// Rules are the operator's and the account's limits for validation.
type Rules struct {
	Currency  money.Currency
	MaxTarget money.Amount
	// Cards are the ids of the account's payment methods; HasDefault says
	// whether one of them is the default.
	Cards      map[string]bool
	HasDefault bool
}

// Validate returns the settings that in makes of cur, or a refusal naming
// the field. With enabled false, amounts left out keep their values. A save
// resets the failure streak and the back-off: the customer has acted.
func Validate(in Input, cur Settings, r Rules) (Settings, error) {
	if in.Enabled == nil {
		return cur, apperr.Invalidf("enabled", "is required")
	}
	next := cur
	next.Enabled = *in.Enabled
	if in.Threshold != nil {
		next.Threshold = in.Threshold
	}
	if in.Target != nil {
		next.Target = in.Target
	}
	if in.PaymentMethod != nil {
		next.PaymentMethod = *in.PaymentMethod
	} else if next.Enabled {
		next.PaymentMethod = ""
	}
	if in.MonthlyLimitSet {
		next.MonthlyLimit = in.MonthlyLimit
	}
	c := r.Currency
	check := func(field string, a *money.Amount) error {
		switch {
		case a == nil:
			return apperr.Invalidf(field, "is required when enabled is true")
		case *a <= 0:
			return apperr.Invalidf(field, "must be greater than zero")
		case !a.IsWholeMinor(c):
			return apperr.Invalidf(field, "must be a whole number of %s minor units (at most %d decimals)", c.Code, c.Minor)
		}
		return nil
	}
	// Amounts given are always checked; with enabled true they are required.
	for _, f := range []struct {
		name string
		v    *money.Amount
		sent bool
	}{{"threshold", next.Threshold, in.Threshold != nil}, {"target", next.Target, in.Target != nil}} {
		if f.sent || next.Enabled {
			if err := check(f.name, f.v); err != nil {
				return cur, err
			}
		}
	}
	if next.Threshold != nil && next.Target != nil && (in.Threshold != nil || in.Target != nil || next.Enabled) {
		switch {
		case *next.Target > r.MaxTarget:
			return cur, apperr.Invalidf("target", "must be at most %s", r.MaxTarget.Format(c))
		case *next.Threshold >= *next.Target:
			return cur, apperr.Invalidf("target", "must be greater than threshold")
		case *next.Target-*next.Threshold < c.MinCharge:
			return cur, apperr.Invalidf("target", "must be at least %s above threshold (the minimum charge)", c.MinCharge.Format(c))
		}
	}
	if in.MonthlyLimitSet && in.MonthlyLimit != nil {
		switch {
		case !in.MonthlyLimit.IsWholeMinor(c):
			return cur, apperr.Invalidf("monthly_limit", "must be a whole number of %s minor units", c.Code)
		case *in.MonthlyLimit < c.MinCharge:
			return cur, apperr.Invalidf("monthly_limit", "must be at least the minimum charge, %s", c.MinCharge.Format(c))
		}
	}
	if next.PaymentMethod != "" && !r.Cards[next.PaymentMethod] {
		return cur, apperr.Invalidf("payment_method", "no payment method %s on this account", next.PaymentMethod)
	}
	if next.Enabled && next.PaymentMethod == "" && !r.HasDefault {
		return cur, apperr.Invalidf("payment_method", "add a payment method before enabling Automatic Top-Up")
	}
	next.FailureStreak = 0
	next.RetryAfter = time.Time{}
	if next.Enabled {
		next.DisabledReason = ""
	}
	return next, nil
}
