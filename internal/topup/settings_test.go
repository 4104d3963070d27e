package topup_test

import (
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
)

var (
	amt  = topuptest.Amt
	amtP = topuptest.AmtP
	usd  = topuptest.Currency("usd")
	jpy  = topuptest.Currency("jpy")
	gbp  = topuptest.Currency("gbp")
)

func boolP(b bool) *bool { return &b }

func strP(s string) *string { return &s }

// wantField checks that err is an invalid-input refusal naming field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil || e.Code != apperr.Invalid || e.Field != field {
		t.Fatalf("err = %v, want an invalid refusal naming %q", err, field)
	}
}

func amountEq(a *money.Amount, want string) bool {
	if want == "" {
		return a == nil
	}
	return a != nil && *a == amt(want)
}

// TestValidate is the settings catalogue of PRODUCT.md: every refusal names
// its field (target when the pair is wrong) and changes nothing; what passes
// is what the customer asked for.
func TestValidate(t *testing.T) {
	t.Parallel()
	rules := topup.Rules{Currency: usd, MaxTarget: topuptest.MaxTarget, Cards: map[string]bool{"pm_a": true, "pm_b": true}, HasDefault: true}
	noCards := topup.Rules{Currency: usd, MaxTarget: topuptest.MaxTarget, Cards: map[string]bool{}}
	jpyRules := rules
	jpyRules.Currency = jpy
	gbpRules := rules
	gbpRules.Currency = gbp
	saved := topup.Settings{Enabled: true, Threshold: amtP("5.00"), Target: amtP("20.00"), PaymentMethod: "pm_b", MonthlyLimit: amtP("100.00")}
	on := func(th, tg string) topup.Input {
		in := topup.Input{Enabled: boolP(true)}
		if th != "" {
			in.Threshold = amtP(th)
		}
		if tg != "" {
			in.Target = amtP(tg)
		}
		return in
	}
	withLimit := func(in topup.Input, limit string) topup.Input {
		in.MonthlyLimitSet = true
		if limit != "" {
			in.MonthlyLimit = amtP(limit)
		}
		return in
	}
	neg := money.Amount(-1_000_000)

	refusals := []struct {
		name  string
		cur   topup.Settings
		in    topup.Input
		rules topup.Rules
		field string
	}{
		{"enabled left out", topup.Settings{}, topup.Input{Threshold: amtP("5")}, rules, "enabled"},
		{"threshold equal to target", topup.Settings{}, on("10.00", "10.00"), rules, "target"},
		{"threshold above target", topup.Settings{}, on("20.00", "10.00"), rules, "target"},
		{"gap below the minimum charge", topup.Settings{}, on("10.00", "10.49"), rules, "target"},
		{"target above the maximum", topup.Settings{}, on("10.00", "10000.01"), rules, "target"},
		{"fractional cent threshold", topup.Settings{}, on("5.001", "20.00"), rules, "threshold"},
		{"fractional cent target", topup.Settings{}, on("5.00", "20.001"), rules, "target"},
		{"fractional cent monthly limit", topup.Settings{}, withLimit(on("5", "20"), "10.001"), rules, "monthly_limit"},
		{"zero threshold", topup.Settings{}, on("0", "20.00"), rules, "threshold"},
		{"zero target", topup.Settings{}, on("5.00", "0"), rules, "target"},
		{"negative threshold", topup.Settings{}, topup.Input{Enabled: boolP(true), Threshold: &neg, Target: amtP("20")}, rules, "threshold"},
		{"negative monthly limit", topup.Settings{}, topup.Input{Enabled: boolP(true), Threshold: amtP("5"), Target: amtP("20"), MonthlyLimit: &neg, MonthlyLimitSet: true}, rules, "monthly_limit"},
		{"monthly limit below the minimum charge", topup.Settings{}, withLimit(on("5", "20"), "0.49"), rules, "monthly_limit"},
		{"enabled without amounts, none saved", topup.Settings{}, on("", ""), rules, "threshold"},
		{"enabled with only a threshold, none saved", topup.Settings{}, on("5", ""), rules, "target"},
		{"a new threshold that breaks the saved pair", saved, on("20.00", ""), rules, "target"},
		{"enabling without a card", topup.Settings{}, on("5", "20"), noCards, "payment_method"},
		{"a card of another account", topup.Settings{}, topup.Input{Enabled: boolP(true), Threshold: amtP("5"), Target: amtP("20"), PaymentMethod: strP("pm_other")}, rules, "payment_method"},
		{"disabled but a bad pair sent", saved, topup.Input{Enabled: boolP(false), Threshold: amtP("30"), Target: amtP("20")}, rules, "target"},
		{"jpy gap below its minimum of 50", topup.Settings{}, on("100", "149"), jpyRules, "target"},
		{"jpy fractional yen", topup.Settings{}, on("100.5", "1000"), jpyRules, "threshold"},
		{"jpy monthly limit below 50", topup.Settings{}, withLimit(on("100", "1000"), "49"), jpyRules, "monthly_limit"},
		{"gbp gap below its minimum of 0.30", topup.Settings{}, on("10.00", "10.29"), gbpRules, "target"},
	}
	for _, tc := range refusals {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := topup.Validate(tc.in, tc.cur, tc.rules)
			wantField(t, err, tc.field)
			if !sameSettings(got, tc.cur) {
				t.Errorf("a refusal returned %+v, want the current settings %+v unchanged", got, tc.cur)
			}
		})
	}

	retry := topuptest.Epoch.Add(time.Hour)
	accepted := []struct {
		name  string
		cur   topup.Settings
		in    topup.Input
		rules topup.Rules
		check func(t *testing.T, s topup.Settings)
	}{
		{"gap exactly the minimum charge", topup.Settings{}, on("10.00", "10.50"), rules, func(t *testing.T, s topup.Settings) {
			wantSettings(t, s, true, "10.00", "10.50", "", "")
		}},
		{"target at the maximum", topup.Settings{}, on("10.00", "10000.00"), rules, func(t *testing.T, s topup.Settings) {
			wantSettings(t, s, true, "10.00", "10000.00", "", "")
		}},
		{"a named card of the account", topup.Settings{}, topup.Input{Enabled: boolP(true), Threshold: amtP("5"), Target: amtP("20"), PaymentMethod: strP("pm_a")}, rules, func(t *testing.T, s topup.Settings) {
			wantSettings(t, s, true, "5.00", "20.00", "pm_a", "")
		}},
		{"disabled with amounts left out keeps them", saved, topup.Input{Enabled: boolP(false)}, rules, func(t *testing.T, s topup.Settings) {
			wantSettings(t, s, false, "5.00", "20.00", "pm_b", "100.00")
		}},
		{"disabled without any card", topup.Settings{}, topup.Input{Enabled: boolP(false)}, noCards, func(t *testing.T, s topup.Settings) {
			wantSettings(t, s, false, "", "", "", "")
		}},
		{"monthly_limit null removes the cap", saved, withLimit(on("5", "20"), ""), rules, func(t *testing.T, s topup.Settings) {
			if s.MonthlyLimit != nil {
				t.Errorf("monthly_limit = %v, want no cap", *s.MonthlyLimit)
			}
		}},
		{"monthly_limit left out keeps the cap", saved, topup.Input{Enabled: boolP(true), PaymentMethod: strP("pm_b")}, rules, func(t *testing.T, s topup.Settings) {
			wantSettings(t, s, true, "5.00", "20.00", "pm_b", "100.00")
		}},
		{"jpy with its minimum of 50", topup.Settings{}, withLimit(on("100", "150"), "50"), jpyRules, func(t *testing.T, s topup.Settings) {
			wantSettings(t, s, true, "100", "150", "", "50")
		}},
		{"gbp with its minimum of 0.30", topup.Settings{}, on("10.00", "10.30"), gbpRules, func(t *testing.T, s topup.Settings) {
			wantSettings(t, s, true, "10.00", "10.30", "", "")
		}},
		{"a save resets the decline streak and the back-off, and enabling clears the reason",
			topup.Settings{Threshold: amtP("5"), Target: amtP("20"), DisabledReason: topup.RepeatedDeclines, FailureStreak: 3, RetryAfter: retry},
			topup.Input{Enabled: boolP(true)}, rules, func(t *testing.T, s topup.Settings) {
				if s.FailureStreak != 0 || !s.RetryAfter.IsZero() || s.DisabledReason != "" || !s.Enabled {
					t.Errorf("after the customer re-enabled: %+v, want enabled, no streak, no back-off, no disabled_reason", s)
				}
			}},
	}
	for _, tc := range accepted {
		t.Run("accepted/"+tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := topup.Validate(tc.in, tc.cur, tc.rules)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			tc.check(t, got)
		})
	}
}

func sameSettings(a, b topup.Settings) bool {
	eq := func(x, y *money.Amount) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Enabled == b.Enabled && eq(a.Threshold, b.Threshold) && eq(a.Target, b.Target) && a.PaymentMethod == b.PaymentMethod &&
		eq(a.MonthlyLimit, b.MonthlyLimit) && a.DisabledReason == b.DisabledReason && a.FailureStreak == b.FailureStreak && a.RetryAfter.Equal(b.RetryAfter)
}

func wantSettings(t *testing.T, s topup.Settings, enabled bool, threshold, target, card, limit string) {
	t.Helper()
	if s.Enabled != enabled || !amountEq(s.Threshold, threshold) || !amountEq(s.Target, target) || s.PaymentMethod != card || !amountEq(s.MonthlyLimit, limit) {
		t.Errorf("settings = enabled %v threshold %v target %v card %q limit %v; want %v %q %q %q %q",
			s.Enabled, fmtP(s.Threshold), fmtP(s.Target), s.PaymentMethod, fmtP(s.MonthlyLimit), enabled, threshold, target, card, limit)
	}
}

func fmtP(a *money.Amount) string {
	if a == nil {
		return "null"
	}
	return a.String()
}

// TestChargeAmount is the amount rule: target - balance rounded up to the
// minor unit, at least the minimum charge, never beyond the monthly
// allowance (rounded down), and nothing once the balance recovered.
func TestChargeAmount(t *testing.T) {
	t.Parallel()
	s := topup.Settings{Enabled: true, Threshold: amtP("10.00"), Target: amtP("25.00")}
	limited := func(limit string) topup.Settings {
		l := s
		l.MonthlyLimit = amtP(limit)
		return l
	}
	narrow := topup.Settings{Enabled: true, Threshold: amtP("10.00"), Target: amtP("10.20")}
	yen := topup.Settings{Enabled: true, Threshold: amtP("100"), Target: amtP("1000")}
	for _, tc := range []struct {
		name         string
		s            topup.Settings
		balance, mtd money.Amount
		c            money.Currency
		want         string // "" means canceled
	}{
		{"target minus balance", s, amt("9.99"), 0, usd, "15.01"},
		{"rounded up to the cent", s, amt("9.994"), 0, usd, "15.01"},
		{"rounded up from a micro", s, amt("9.999999"), 0, usd, "15.01"},
		{"a negative balance", s, -amt("3.50"), 0, usd, "28.50"},
		{"at least the minimum charge", narrow, amt("9.99"), 0, usd, "0.50"},
		{"balance back at the threshold", s, amt("10.00"), 0, usd, ""},
		{"balance above the threshold", s, amt("12.00"), 0, usd, ""},
		{"capped by the monthly limit", limited("10.00"), amt("5.00"), 0, usd, "10.00"},
		{"capped by what is left this month", limited("30.00"), amt("5.00"), amt("20.00"), usd, "10.00"},
		{"the allowance rounded down to the cent", limited("30.00"), amt("5.00"), amt("23.335"), usd, "6.66"},
		{"exactly the minimum left", limited("30.00"), amt("5.00"), amt("29.50"), usd, "0.50"},
		{"less than the minimum left", limited("30.00"), amt("5.00"), amt("29.70"), usd, ""},
		{"nothing left", limited("30.00"), amt("5.00"), amt("30.00"), usd, ""},
		{"jpy rounded up to the yen", yen, amt("99.5"), 0, jpy, "901"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, cancel := tc.s.ChargeAmount(tc.balance, tc.mtd, tc.c)
			switch {
			case tc.want == "" && !cancel:
				t.Errorf("amount %s, want the top-up canceled", got.Format(tc.c))
			case tc.want != "" && (cancel || got != amt(tc.want)):
				t.Errorf("amount %s (cancel %v), want %s", got.Format(tc.c), cancel, tc.want)
			}
		})
	}
}

// TestDueAndAfterFailure are the trigger and the decline rules: strictly
// below the threshold, one open at a time, the back-off measured from the
// failure, off after three in a row or at once for a card never retried.
func TestDueAndAfterFailure(t *testing.T) {
	t.Parallel()
	now := topuptest.Epoch
	s := topup.Settings{Enabled: true, Threshold: amtP("10.00"), Target: amtP("25.00")}
	if s.Due(amt("10.00"), false, now) {
		t.Error("due with the balance at the threshold; the rule is strictly below")
	}
	if !s.Due(amt("9.999999"), false, now) {
		t.Error("not due a micro below the threshold")
	}
	if s.Due(amt("1"), true, now) {
		t.Error("due while another automatic top-up is open")
	}
	off := s
	off.Enabled = false
	if off.Due(amt("1"), false, now) {
		t.Error("due while disabled")
	}

	next, disabled := s.AfterFailure("card_declined", false, now, time.Hour)
	if next.FailureStreak != 1 || !next.RetryAfter.Equal(now.Add(time.Hour)) || disabled != "" || !next.Enabled {
		t.Fatalf("after one decline: %+v disabled %q", next, disabled)
	}
	if next.Due(amt("1"), false, now.Add(time.Hour-time.Microsecond)) {
		t.Error("due before the back-off ended")
	}
	if !next.Due(amt("1"), false, now.Add(time.Hour)) {
		t.Error("not due once the back-off ended")
	}
	next, disabled = next.AfterFailure("card_declined", false, now, time.Hour)
	if disabled != "" || !next.Enabled {
		t.Fatalf("disabled after two declines: %q", disabled)
	}
	next, disabled = next.AfterFailure("card_declined", false, now, time.Hour)
	if disabled != topup.RepeatedDeclines || next.Enabled || next.DisabledReason != topup.RepeatedDeclines {
		t.Fatalf("after three declines: %+v disabled %q, want off with repeated_declines", next, disabled)
	}
	if _, again := next.AfterFailure("card_declined", false, now, time.Hour); again != "" {
		t.Errorf("already off, switched off again with %q (the customer would be told twice)", again)
	}
	lost, disabled := s.AfterFailure("lost_card", true, now, time.Hour)
	if disabled != topup.CardNotRetryable || lost.Enabled {
		t.Errorf("after lost_card: %+v disabled %q, want off with card_not_retryable", lost, disabled)
	}
	// A request the provider refused (a bad key, a card gone at the
	// provider) waits out the back-off but is not a decline: three of them
	// must not switch anyone off.
	refused := s
	for range 3 {
		refused, disabled = refused.AfterFailure(topup.ProcessingError, false, now, time.Hour)
	}
	if disabled != "" || !refused.Enabled || refused.FailureStreak != 0 || !refused.RetryAfter.Equal(now.Add(time.Hour)) {
		t.Errorf("after three refused requests: %+v disabled %q; want on, streak 0, back-off set", refused, disabled)
	}
}

// TestSaveSettingsRefusals checks on both databases that a refused save
// keeps nothing: the settings, the audit trail and the top-ups stay as they
// were. Another account's card is refused like an unknown one.
func TestSaveSettingsRefusals(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, other := e.Account(), e.Account()
		e.Card(e.Scripted, acct.ID, "pm_card_visa")
		theirs := e.Card(e.Scripted, other.ID, "pm_card_visa")
		e.Credit(acct.ID, "50.00")
		e.Enable(acct.ID, "5.00", "20.00")
		before, _ := e.Settings(acct.ID)
		audit, err := e.Store.SettingsAudit(t.Context(), acct.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			in    topup.Input
			field string
		}{
			{topup.Input{Enabled: boolP(true), PaymentMethod: &theirs.ID}, "payment_method"},
			{topup.Input{Enabled: boolP(true), Threshold: amtP("20"), Target: amtP("20")}, "target"},
			{topup.Input{Enabled: boolP(true), Threshold: amtP("5"), Target: amtP("20.005")}, "target"},
			{topup.Input{Enabled: boolP(true), Target: amtP("10000.01")}, "target"},
		} {
			_, created, err := e.Store.SaveSettings(t.Context(), acct.ID, "test", tc.in, topuptest.MaxTarget)
			wantField(t, err, tc.field)
			if created != nil {
				t.Errorf("a refused save created top-up %s", created.ID)
			}
		}
		after, _ := e.Settings(acct.ID)
		if !sameSettings(before, after) {
			t.Errorf("refused saves changed the settings: %+v, were %+v", after, before)
		}
		audit2, err := e.Store.SettingsAudit(t.Context(), acct.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(audit2) != len(audit) {
			t.Errorf("refused saves wrote %d audit rows", len(audit2)-len(audit))
		}
		if n := len(e.TopUps(acct.ID)); n != 0 {
			t.Errorf("%d top-ups after refused saves", n)
		}
		// Before any save, the other account's settings are off with no
		// amounts.
		st, mtd := e.Settings(other.ID)
		if st.Enabled || st.Threshold != nil || st.Target != nil || mtd != 0 {
			t.Errorf("settings before any save: %+v month-to-date %v", st, mtd)
		}
	})
}
