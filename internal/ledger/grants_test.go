package ledger_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// g is a grant for the tables: id, category, amount in whole units,
// priority, expiry in hours from t0 (0: never), age in hours before t0.
func g(id string, c ledger.Category, units int64, priority int, expiresIn, age int) *ledger.Grant {
	gr := &ledger.Grant{ID: id, Category: c, Amount: money.Amount(units * money.MicrosPerUnit), Priority: priority,
		CreatedAt: t0.Add(-time.Duration(age) * time.Hour), Status: ledger.GrantActive}
	gr.Remaining = gr.Amount
	if expiresIn != 0 {
		gr.ExpiresAt = t0.Add(time.Duration(expiresIn) * time.Hour)
	}
	return gr
}

func units(n int64) money.Amount { return money.Amount(n * money.MicrosPerUnit) }

func line(id string, c ledger.Category, n int64) ledger.Funding {
	return ledger.Funding{GrantID: id, Category: c, Amount: units(n)}
}

// TestSpendingOrder: usage takes money from the lowest priority first, then
// the soonest expiry (never-expiring last), then the oldest; what no grant
// covers is overdraft.
func TestSpendingOrder(t *testing.T) {
	t.Parallel()
	P, G, O := ledger.Paid, ledger.Promotional, ledger.Overdraft
	for _, tc := range []struct {
		name      string
		grants    []*ledger.Grant
		spend     int64
		want      []ledger.Funding
		overdraft int64
	}{
		{"promotional before paid by default priority",
			[]*ledger.Grant{g("paid", P, 10, 50, 0, 2), g("promo", G, 5, 10, 0, 1)},
			7, []ledger.Funding{line("promo", G, 5), line("paid", P, 2)}, 0},
		{"operator's priority wins over category",
			[]*ledger.Grant{g("paid", P, 10, 5, 0, 2), g("promo", G, 5, 10, 0, 1)},
			7, []ledger.Funding{line("paid", P, 7)}, 0},
		{"soonest expiry first, never-expiring last",
			[]*ledger.Grant{g("never", G, 5, 10, 0, 9), g("late", G, 5, 10, 48, 1), g("soon", G, 5, 10, 24, 1)},
			12, []ledger.Funding{line("soon", G, 5), line("late", G, 5), line("never", G, 2)}, 0},
		{"oldest first at equal priority and expiry",
			[]*ledger.Grant{g("young", P, 5, 50, 0, 1), g("old", P, 5, 50, 0, 3)},
			6, []ledger.Funding{line("old", P, 5), line("young", P, 1)}, 0},
		{"beyond every grant: overdraft",
			[]*ledger.Grant{g("a", G, 2, 10, 0, 1), g("b", P, 3, 50, 0, 1)},
			8, []ledger.Funding{line("a", G, 2), line("b", P, 3), line("", O, 3)}, 3},
		{"no grants at all", nil, 4, []ledger.Funding{line("", O, 4)}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := ledger.NewWallet(tc.grants, 0)
			before := w.Balance()
			got, err := w.Spend(units(tc.spend))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("funding %v, want %v", got, tc.want)
			}
			if w.Overdraft() != units(tc.overdraft) || w.Balance() != before-units(tc.spend) {
				t.Fatalf("overdraft %s balance %s; want %d and %s", w.Overdraft(), w.Balance(), tc.overdraft, before-units(tc.spend))
			}
			var sum money.Amount
			for _, f := range got {
				sum += f.Amount
			}
			if sum != units(tc.spend) {
				t.Fatalf("funding adds up to %s, want %d", sum, tc.spend)
			}
			for _, gr := range w.Grants() {
				if gr.Remaining == 0 || gr.Status != ledger.GrantActive {
					t.Errorf("grant %s still listed as active with %s (%s)", gr.ID, gr.Remaining, gr.Status)
				}
			}
		})
	}
}

// TestOverdraftPaidBackFirst: a grant made during overdraft pays it back
// first; its remaining starts at its amount less the overdraft, at least
// zero.
func TestOverdraftPaidBackFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		overdraft, grant, remaining, left int64
		status                            ledger.GrantStatus
	}{
		{3, 10, 7, 0, ledger.GrantActive},
		{10, 10, 0, 0, ledger.GrantUsed},
		{12, 10, 0, 2, ledger.GrantUsed},
		{0, 10, 10, 0, ledger.GrantActive},
	} {
		t.Run(fmt.Sprintf("overdraft %d grant %d", tc.overdraft, tc.grant), func(t *testing.T) {
			w := ledger.NewWallet(nil, units(tc.overdraft))
			gr := g("new", ledger.Paid, tc.grant, 50, 0, 0)
			w.Add(gr)
			if gr.Remaining != units(tc.remaining) || gr.Status != tc.status || w.Overdraft() != units(tc.left) {
				t.Fatalf("remaining %s (%s), overdraft %s; want %d (%s), %d", gr.Remaining, gr.Status, w.Overdraft(), tc.remaining, tc.status, tc.left)
			}
			if w.Balance() != units(tc.grant-tc.overdraft) {
				t.Fatalf("balance %s, want %d", w.Balance(), tc.grant-tc.overdraft)
			}
			if len(w.Changed()) != 1 {
				t.Fatalf("%d grants to write, want the new one", len(w.Changed()))
			}
		})
	}
}

// TestExpiryBeforeDebit: a debit never draws on a grant whose expiry has
// come; that grant's expiration comes first, and one with nothing left
// just becomes used.
func TestExpiryBeforeDebit(t *testing.T) {
	t.Parallel()
	gone := g("gone", ledger.Promotional, 5, 10, -1, 48)
	empty := g("empty", ledger.Promotional, 5, 10, -2, 48)
	empty.Remaining = 0
	keep := g("keep", ledger.Paid, 10, 50, 0, 1)
	w := ledger.NewWallet([]*ledger.Grant{gone, empty, keep}, 0)
	exp, funding, err := w.Debit(units(3), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 1 || exp[0].Grant != gone || exp[0].Amount != units(5) {
		t.Fatalf("expirations %+v, want gone's 5", exp)
	}
	if !reflect.DeepEqual(funding, []ledger.Funding{line("keep", ledger.Paid, 3)}) {
		t.Fatalf("funding %v, want keep's 3", funding)
	}
	if gone.Status != ledger.GrantExpired || empty.Status != ledger.GrantUsed || gone.Remaining != 0 {
		t.Fatalf("statuses %s %s", gone.Status, empty.Status)
	}
	// At exactly expires_at the grant may no longer be spent.
	edge := g("edge", ledger.Paid, 1, 50, 1, 1)
	w = ledger.NewWallet([]*ledger.Grant{edge}, 0)
	if exp := w.Expire(edge.ExpiresAt); len(exp) != 1 {
		t.Fatalf("at its expires_at the grant did not expire: %+v", exp)
	}
}

// TestVoid: voiding takes what remains of an active grant; a grant that is
// not active answers 409.
func TestVoid(t *testing.T) {
	t.Parallel()
	a := g("a", ledger.Promotional, 5, 10, 0, 1)
	w := ledger.NewWallet([]*ledger.Grant{a}, 0)
	if _, err := w.Spend(units(2)); err != nil {
		t.Fatal(err)
	}
	got, amount, err := w.Void("a")
	if err != nil || got != a || amount != units(3) || a.Status != ledger.GrantVoided || w.Balance() != 0 {
		t.Fatalf("void: %v %s %v (%s), balance %s", got, amount, err, a.Status, w.Balance())
	}
	if _, _, err := w.Void("a"); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("voiding twice: %v, want conflict", err)
	}
}

// TestGrantTerms: category, priority and expiry are checked with their
// fields named.
func TestGrantTerms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c        ledger.Category
		priority int
		expires  time.Time
		field    string
	}{
		{ledger.Paid, 50, time.Time{}, ""},
		{ledger.Promotional, 0, t0.Add(time.Hour), ""},
		{ledger.Promotional, 100, t0.Add(ledger.MaxGrantLifetime), ""},
		{"free", 10, time.Time{}, "category"},
		{ledger.Overdraft, 10, time.Time{}, "category"},
		{ledger.Paid, -1, time.Time{}, "priority"},
		{ledger.Paid, 101, time.Time{}, "priority"},
		{ledger.Paid, 50, t0, "expires_at"},
		{ledger.Paid, 50, t0.Add(ledger.MaxGrantLifetime + time.Second), "expires_at"},
	} {
		err := ledger.CheckGrantTerms(tc.c, tc.priority, tc.expires, t0)
		if tc.field == "" && err != nil || tc.field != "" && (apperr.As(err) == nil || apperr.As(err).Field != tc.field) {
			t.Errorf("%s %d %s: %v; want field %q", tc.c, tc.priority, tc.expires, err, tc.field)
		}
	}
}

// TestFundingEncoding: what an entry row keeps reads back the same.
func TestFundingEncoding(t *testing.T) {
	t.Parallel()
	lines := []ledger.Funding{line("grt_1", ledger.Promotional, 2), line("grt_2", ledger.Paid, 3),
		{Category: ledger.Overdraft, Amount: 125}}
	s := ledger.EncodeFunding(lines)
	if s != "grt_1:g:2000000;grt_2:p:3000000;-:o:125" {
		t.Fatalf("encoded %q", s)
	}
	got, err := ledger.DecodeFunding(s)
	if err != nil || !reflect.DeepEqual(got, lines) {
		t.Fatalf("decoded %v %v", got, err)
	}
	for _, bad := range []string{"x", "a:q:1", "a:p:0", "a:p:-1", "a:p:1;"} {
		if _, err := ledger.DecodeFunding(bad); err == nil {
			t.Errorf("DecodeFunding(%q) accepted", bad)
		}
	}
}

// TestHolds: status at a time, what is held, and the rules of create,
// capture and release.
func TestHolds(t *testing.T) {
	t.Parallel()
	acct := ledger.Account{ID: "acct_1", Status: ledger.Active, Currency: money.Currency{Code: "usd", Minor: 2}}
	h := ledger.Hold{ID: "hld_1", Amount: units(5), Status: ledger.HoldActive, ExpiresAt: t0.Add(time.Minute)}
	if h.StatusAt(t0) != ledger.HoldActive || h.StatusAt(t0.Add(time.Minute)) != ledger.HoldExpired {
		t.Fatalf("status before and at expiry: %s %s", h.StatusAt(t0), h.StatusAt(t0.Add(time.Minute)))
	}
	released := ledger.Hold{ID: "hld_2", Amount: units(7), Status: ledger.HoldReleased, ExpiresAt: t0.Add(time.Hour)}
	if got := ledger.Held([]ledger.Hold{h, released}, t0); got != units(5) {
		t.Fatalf("held %s, want 5", got)
	}
	if got := ledger.Held([]ledger.Hold{h}, t0.Add(2*time.Minute)); got != 0 {
		t.Fatalf("an expired hold still held %s", got)
	}
	if err := ledger.CanHold(acct, units(4), units(5), 0); apperr.CodeOf(err) != apperr.InsufficientBalance {
		t.Fatalf("hold beyond available: %v", err)
	}
	if err := ledger.CanHold(acct, units(5), units(5), 0); err != nil {
		t.Fatalf("hold of exactly available: %v", err)
	}
	if err := ledger.CanHold(acct, units(50), units(5), ledger.MaxActiveHolds); apperr.CodeOf(err) != apperr.LimitExceeded {
		t.Fatalf("hold past the limit: %v", err)
	}
	closed := acct
	closed.Status = ledger.Closed
	if err := ledger.CanHold(closed, units(50), units(5), 0); apperr.CodeOf(err) != apperr.AccountClosed {
		t.Fatalf("hold on a closed account: %v", err)
	}
	if got, err := h.Capture(0, false, t0); err != nil || got != units(5) {
		t.Fatalf("capture whole: %s %v", got, err)
	}
	if got, err := h.Capture(units(2), true, t0); err != nil || got != units(2) {
		t.Fatalf("capture part: %s %v", got, err)
	}
	for _, bad := range []money.Amount{0, units(6)} {
		if _, err := h.Capture(bad, true, t0); apperr.As(err) == nil || apperr.As(err).Field != "amount" {
			t.Errorf("capture %s: %v, want 400 on amount", bad, err)
		}
	}
	if _, err := h.Capture(0, false, t0.Add(time.Hour)); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("capture of an expired hold: %v", err)
	}
	if unchanged, err := released.Release(t0); !unchanged || err != nil {
		t.Fatalf("release of a released hold: %v %v", unchanged, err)
	}
	if _, err := h.Release(t0.Add(time.Hour)); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("release of an expired hold: %v", err)
	}
	for _, tc := range []struct {
		in   *int64
		want time.Duration
		ok   bool
	}{{nil, 900 * time.Second, true}, {ptr(1), time.Second, true}, {ptr(86400), 24 * time.Hour, true}, {ptr(0), 0, false}, {ptr(86401), 0, false}} {
		got, err := ledger.HoldLifetime(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("HoldLifetime(%v) = %s, %v", tc.in, got, err)
		}
	}
}

func ptr(n int64) *int64 { return &n }
