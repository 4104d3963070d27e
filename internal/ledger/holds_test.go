package ledger_test

import (
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// holdAccount is an active usd account with balance and held (in units).
func holdAccount(balance, held int64) *ledger.AccountState {
	return &ledger.AccountState{Account: ledger.Account{ID: "acct_1", Status: ledger.Active, Currency: money.Currency{Code: "usd", Minor: 2},
		Balance: units(balance), Held: units(held)}}
}

// TestNewHold: a hold is made only when available credit covers it (and
// it then counts in held and in held_until); creating one never makes
// available negative; the limit and a closed account refuse it.
func TestNewHold(t *testing.T) {
	t.Parallel()
	req := func(amount int64) ledger.HoldRequest {
		return ledger.HoldRequest{AccountID: "acct_1", Amount: units(amount), IdempotencyKey: "k", Lifetime: 15 * time.Minute}
	}
	cases := []struct {
		name             string
		balance, held    int64
		amount           int64
		active           int
		closed           bool
		wantCode         apperr.Code
		wantHeld, wantAv int64
	}{
		{"covered", 10, 0, 4, 0, false, "", 4, 6},
		{"exactly available", 10, 6, 4, 1, false, "", 10, 0},
		{"held credit is not available", 10, 7, 4, 1, false, apperr.InsufficientBalance, 7, 3},
		{"overdrawn account", -1, 0, 1, 0, false, apperr.InsufficientBalance, 0, -1},
		{"limit of active holds", 100, 1, 1, ledger.MaxActiveHolds, false, apperr.LimitExceeded, 1, 99},
		{"one under the limit", 100, 1, 1, ledger.MaxActiveHolds - 1, false, "", 2, 98},
		{"closed account", 100, 0, 1, 0, true, apperr.AccountClosed, 0, 100},
	}
	for _, tc := range cases {
		a := holdAccount(tc.balance, tc.held)
		if tc.closed {
			a.Status = ledger.Closed
		}
		h, err := ledger.NewHold(a, req(tc.amount), tc.active, t0, "hld_1")
		if codeOf(err) != tc.wantCode {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.wantCode)
			continue
		}
		if a.Held != units(tc.wantHeld) || a.Available() != units(tc.wantAv) {
			t.Errorf("%s: held %s available %s, want %d and %d", tc.name, a.Held.Format(usdC), a.Available().Format(usdC), tc.wantHeld, tc.wantAv)
		}
		if err != nil {
			if a.HeldChanged {
				t.Errorf("%s: a refused hold marked held changed", tc.name)
			}
			continue
		}
		if h.Status != ledger.HoldActive || h.Amount != units(tc.amount) || !h.ExpiresAt.Equal(t0.Add(15*time.Minute)) || !a.HeldUntil.Equal(h.ExpiresAt) {
			t.Errorf("%s: hold %+v, held until %s", tc.name, h, a.HeldUntil)
		}
	}
}

// TestNewHoldKeepsSoonestExpiry: held_until is the soonest expiry of the
// holds held counts.
func TestNewHoldKeepsSoonestExpiry(t *testing.T) {
	t.Parallel()
	a := holdAccount(100, 0)
	long := ledger.HoldRequest{Amount: units(1), Lifetime: time.Hour}
	short := ledger.HoldRequest{Amount: units(1), Lifetime: time.Minute}
	for i, r := range []ledger.HoldRequest{long, short, long} {
		if _, err := ledger.NewHold(a, r, i, t0, "hld"); err != nil {
			t.Fatal(err)
		}
	}
	if !a.HeldUntil.Equal(t0.Add(time.Minute)) || a.Held != units(3) {
		t.Fatalf("held %s until %s; want 3.00 until the short hold's expiry", a.Held.Format(usdC), a.HeldUntil)
	}
}

// TestReleaseHold: an active hold stops counting; a released one is
// answered unchanged; captured and expired ones are conflicts.
func TestReleaseHold(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		status      ledger.HoldStatus
		at          time.Duration
		wantChanged bool
		wantCode    apperr.Code
		wantHeld    int64
	}{
		{"active", ledger.HoldActive, 0, true, "", 0},
		{"released again", ledger.HoldReleased, 0, false, "", 5},
		{"captured", ledger.HoldCaptured, 0, false, apperr.Conflict, 5},
		{"expired, written or not", ledger.HoldActive, time.Hour, false, apperr.Conflict, 5},
	}
	for _, tc := range cases {
		a := holdAccount(10, 5)
		h := &ledger.Hold{ID: "hld_1", Amount: units(5), Status: tc.status, ExpiresAt: t0.Add(time.Minute)}
		changed, err := ledger.ReleaseHold(a, h, t0.Add(tc.at))
		if changed != tc.wantChanged || codeOf(err) != tc.wantCode {
			t.Errorf("%s: changed %v err %v", tc.name, changed, err)
		}
		if a.Held != units(tc.wantHeld) {
			t.Errorf("%s: held %s, want %d", tc.name, a.Held.Format(usdC), tc.wantHeld)
		}
		if changed && h.Status != ledger.HoldReleased {
			t.Errorf("%s: status %s after release", tc.name, h.Status)
		}
	}
}

// TestApplyCapture: a capture is usage of the captured amount (with its
// funding) that releases the whole hold; it needs an active hold of the
// account that covers the amount; a replay answers the first result and
// a new key on a captured hold is a conflict.
func TestApplyCapture(t *testing.T) {
	t.Parallel()
	n := 0
	newID := func(p string) string { n++; return p + "_" + string(rune('a'+n)) }
	capture := func(key, hold string, amount int64) ledger.Posting {
		return ledger.Posting{AccountID: "acct_1", Kind: ledger.KindUsage, Amount: -units(amount), IdempotencyKey: key, Call: ledger.ScopeCapture, HoldID: hold}
	}
	a := holdAccount(10, 8)
	a.Wallet = ledger.NewWallet([]*ledger.Grant{{ID: "g", Category: ledger.Paid, Priority: 50, Remaining: units(10), Status: ledger.GrantActive}}, 0)
	a.Holds = map[string]*ledger.Hold{
		"h5": {ID: "h5", AccountID: "acct_1", Amount: units(5), Status: ledger.HoldActive, ExpiresAt: t0.Add(time.Minute)},
		"h3": {ID: "h3", AccountID: "acct_1", Amount: units(3), Status: ledger.HoldActive, ExpiresAt: t0},
	}
	accounts := map[string]*ledger.AccountState{"acct_1": a}
	plan := ledger.Apply(t0, newID, accounts, nil, []ledger.Posting{
		capture("c1", "h5", 2),   // part of it
		capture("c1", "h5", 2),   // the same key: replays
		capture("c2", "h5", 1),   // a new key on a captured hold
		capture("c3", "h3", 1),   // expired at t0
		capture("c4", "nope", 1), // no such hold
		capture("c5", "h3", 4),   // more than the hold (and expired: the status speaks first)
	})
	want := []apperr.Code{"", "", apperr.Conflict, apperr.Conflict, apperr.NotFound, apperr.Conflict}
	for i, r := range plan.Results {
		if codeOf(r.Err) != want[i] {
			t.Errorf("capture %d: %v, want %q", i, r.Err, want[i])
		}
	}
	if !plan.Results[1].Replayed || plan.Results[1].EntryID != plan.Results[0].EntryID {
		t.Errorf("the same key did not replay: %+v", plan.Results[1])
	}
	h := a.Holds["h5"]
	if h.Status != ledger.HoldCaptured || h.Captured != units(2) || h.EntryID != plan.Results[0].EntryID || len(plan.Holds) != 1 {
		t.Fatalf("captured hold %+v, plan holds %d", h, len(plan.Holds))
	}
	// Balance 10 - 2; held 8 - 5 (the rest of the hold is released).
	if a.Balance != units(8) || a.Held != units(3) || !a.HeldChanged || plan.Results[0].Available != units(5) {
		t.Fatalf("balance %s held %s available in result %s", a.Balance.Format(usdC), a.Held.Format(usdC), plan.Results[0].Available.Format(usdC))
	}
	e := plan.Entries[0]
	if e.Kind != ledger.KindUsage || e.Amount != -units(2) || e.HoldID != "h5" || len(e.Funding) != 1 || e.Funding[0].GrantID != "g" {
		t.Fatalf("capture entry %+v", e)
	}
	// A partial capture within the hold, checked on a fresh one.
	big := holdAccount(10, 5)
	big.Holds = map[string]*ledger.Hold{"h": {ID: "h", Amount: units(5), Status: ledger.HoldActive, ExpiresAt: t0.Add(time.Hour)}}
	p := ledger.Apply(t0, newID, map[string]*ledger.AccountState{"acct_1": big}, nil, []ledger.Posting{capture("k", "h", 6)})
	if apperr.CodeOf(p.Results[0].Err) != apperr.Invalid || big.Balance != units(10) || big.Held != units(5) {
		t.Fatalf("capture beyond the hold: %v; balance %s held %s", p.Results[0].Err, big.Balance.Format(usdC), big.Held.Format(usdC))
	}
}

// TestAvailableDecidesSpendable: held credit is not spendable.
func TestAvailableDecidesSpendable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		balance, held int64
		want          string
	}{{10, 0, ""}, {10, 9, ""}, {10, 10, ledger.ReasonInsufficientBalance}, {0, 0, ledger.ReasonInsufficientBalance}} {
		if got := holdAccount(tc.balance, tc.held).StopReason(); got != tc.want {
			t.Errorf("balance %d held %d: reason %q, want %q", tc.balance, tc.held, got, tc.want)
		}
	}
}

var usdC = money.Currency{Code: "usd", Minor: 2}

// codeOf is the error's code, "" for none.
func codeOf(err error) apperr.Code {
	if err == nil {
		return ""
	}
	return apperr.CodeOf(err)
}
