package ledger_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// TestClaw: a refund takes back what remains of the top-up's grant first;
// for the part the customer already spent, the other grants in spending
// order, then overdraft; the part that had expired or been voided is not
// taken again.
func TestClaw(t *testing.T) {
	t.Parallel()
	P, G, O := ledger.Paid, ledger.Promotional, ledger.Overdraft
	type step struct {
		refund    int64
		taken     int64
		funding   []ledger.Funding
		overdraft int64
		returns   ledger.Returns
	}
	for _, tc := range []struct {
		name      string
		topUp     *ledger.Grant // the refunded top-up's grant: amount 100, its remaining as given
		remaining int64
		lost      int64 // what left the balance when it expired or was voided
		others    []*ledger.Grant
		overdraft int64
		steps     []step
	}{
		{name: "unspent: all from the grant itself", topUp: g("tu", P, 100, 50, 0, 1), remaining: 100,
			steps: []step{{refund: 100, taken: 100, funding: []ledger.Funding{line("tu", P, 100)},
				returns: ledger.Returns{Reclaimed: units(100)}}}},
		{name: "partly spent: the rest from other grants in spending order, then overdraft", topUp: g("tu", P, 100, 50, 0, 1), remaining: 40,
			others: []*ledger.Grant{g("paid", P, 30, 50, 0, 2), g("promo", G, 10, 10, 0, 1)},
			steps: []step{{refund: 100, taken: 100, overdraft: 20,
				funding: []ledger.Funding{line("tu", P, 40), line("promo", G, 10), line("paid", P, 30), line("", O, 20)},
				returns: ledger.Returns{Reclaimed: units(40), FromSpent: units(60)}}}},
		{name: "partial refund takes from what remains first", topUp: g("tu", P, 100, 50, 0, 1), remaining: 80,
			others: []*ledger.Grant{g("promo", G, 10, 10, 0, 1)},
			steps: []step{
				{refund: 50, taken: 50, funding: []ledger.Funding{line("tu", P, 50)}, returns: ledger.Returns{Reclaimed: units(50)}},
				{refund: 50, taken: 50, funding: []ledger.Funding{line("tu", P, 30), line("promo", G, 10), line("", O, 10)}, overdraft: 10,
					returns: ledger.Returns{Reclaimed: units(80), FromSpent: units(20)}},
			}},
		{name: "expired: the expired part is not taken again", topUp: g("tu", P, 100, 50, 0, 1), remaining: 0, lost: 70,
			others: []*ledger.Grant{g("promo", G, 50, 10, 0, 1)},
			steps: []step{{refund: 100, taken: 30, funding: []ledger.Funding{line("promo", G, 30)},
				returns: ledger.Returns{Lost: units(70), FromSpent: units(30), FromLost: units(70)}}}},
		{name: "voided after a partial refund: the second refund takes nothing", topUp: g("tu", P, 100, 50, 0, 1), remaining: 0, lost: 60,
			steps: []step{
				{refund: 40, taken: 40, overdraft: 40, funding: []ledger.Funding{line("", O, 40)},
					returns: ledger.Returns{Lost: units(60), FromSpent: units(40)}},
				{refund: 60, taken: 0, overdraft: 40, returns: ledger.Returns{Lost: units(60), FromSpent: units(40), FromLost: units(60)}},
			}},
		{name: "a grant that paid an overdraft back counts that as spent", topUp: g("tu", P, 100, 50, 0, 1), remaining: 75, overdraft: 0,
			steps: []step{{refund: 100, taken: 100, overdraft: 25, funding: []ledger.Funding{line("tu", P, 75), line("", O, 25)},
				returns: ledger.Returns{Reclaimed: units(75), FromSpent: units(25)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu := tc.topUp
			tu.Remaining = units(tc.remaining)
			active := append([]*ledger.Grant(nil), tc.others...)
			if tu.Remaining > 0 {
				active = append(active, tu)
			} else {
				tu.Status = ledger.GrantUsed
			}
			w := ledger.NewWallet(active, units(tc.overdraft))
			r := ledger.Returns{Lost: units(tc.lost)}
			for i, s := range tc.steps {
				before := w.Balance()
				c, err := w.Claw(tu, r, units(s.refund))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if c.Taken != units(s.taken) || !reflect.DeepEqual(c.Funding, s.funding) || c.Returns != s.returns {
					t.Fatalf("step %d: refund %d took %v funded %v, returns %+v; want %d funded %v, returns %+v",
						i, s.refund, c.Taken, c.Funding, c.Returns, s.taken, s.funding, s.returns)
				}
				if got := w.Overdraft(); got != units(s.overdraft) {
					t.Errorf("step %d: overdraft %v, want %d", i, got, s.overdraft)
				}
				if got := before - w.Balance(); got != c.Taken {
					t.Errorf("step %d: the balance fell by %v, but the entry takes %v", i, got, c.Taken)
				}
				var sum money.Amount
				for _, f := range c.Funding {
					sum += f.Amount
				}
				if sum != c.Taken {
					t.Errorf("step %d: funding adds up to %v, the entry takes %v", i, sum, c.Taken)
				}
				r = c.Returns
			}
			if tu.Remaining == 0 && tu.Status == ledger.GrantActive {
				t.Errorf("the top-up's grant has nothing left but is still active")
			}
		})
	}
}

// TestClawRefusesMoreThanIsLeft: more than the grant's amount not yet
// refunded or disputed is refused, and changes nothing.
func TestClawRefusesMoreThanIsLeft(t *testing.T) {
	t.Parallel()
	tu := g("tu", ledger.Paid, 100, 50, 0, 1)
	w := ledger.NewWallet([]*ledger.Grant{tu}, 0)
	r := ledger.Returns{Reclaimed: units(30)}
	tu.Remaining = units(70)
	if _, err := w.Claw(tu, r, units(71)); err == nil {
		t.Fatal("refunding 71 of the 70 left was accepted")
	}
	if _, err := w.Claw(tu, r, 0); err == nil {
		t.Fatal("refunding zero was accepted")
	}
	if tu.Remaining != units(70) || w.Balance() != units(70) || len(w.Changed()) != 0 {
		t.Fatalf("a refused claw changed the wallet: remaining %v, balance %v, changed %d", tu.Remaining, w.Balance(), len(w.Changed()))
	}
}

// TestClawBackAndGiveBack: a refund's entry takes what Claw says from the
// balance (none when all of it had expired), and its reversal gives the
// money back as a grant like the one refunded, paying any overdraft first
// and rolling the grant's Returns back.
func TestClawBackAndGiveBack(t *testing.T) {
	t.Parallel()
	n := 0
	newID := func(p string) string { n++; return fmt.Sprintf("%s_%d", p, n) }
	tu := g("tu", ledger.Paid, 100, 50, 48, 1)
	tu.SourceID, tu.Remaining = "top_1", units(60) // 40 spent
	acct := &ledger.AccountState{Account: ledger.Account{ID: "a", Balance: units(60)}, LastSeq: 3, Turnover: units(140)}
	acct.Wallet = ledger.NewWallet([]*ledger.Grant{tu}, 0)

	e, c, err := ledger.ClawBack(t0, newID, acct, ledger.KindRefund, "re_1", tu, ledger.Returns{}, units(100))
	if err != nil {
		t.Fatal(err)
	}
	if e == nil || e.Amount != -units(100) || e.Kind != ledger.KindRefund || e.TopUpID != "top_1" || e.IdempotencyKey != "re_1" || e.Seq != 4 {
		t.Fatalf("refund entry %+v", e)
	}
	if acct.Balance != -units(40) || e.BalanceAfter != -units(40) || acct.Wallet.Overdraft() != units(40) {
		t.Fatalf("after the refund: balance %v, overdraft %v", acct.Balance, acct.Wallet.Overdraft())
	}
	want := ledger.Returns{Reclaimed: units(60), FromSpent: units(40)}
	if c.Returns != want {
		t.Fatalf("returns %+v, want %+v", c.Returns, want)
	}

	back, grant, r, err := ledger.GiveBack(t0, newID, acct, ledger.KindRefundReversal, "re_1", tu, c.Returns, c.Returns, c.Taken)
	if err != nil {
		t.Fatal(err)
	}
	if back.Amount != units(100) || back.Kind != ledger.KindRefundReversal || acct.Balance != units(60) {
		t.Fatalf("reversal %+v, balance %v", back, acct.Balance)
	}
	if grant.Category != ledger.Paid || grant.Priority != 50 || !grant.ExpiresAt.Equal(tu.ExpiresAt) || grant.PaidBack != units(40) || grant.Remaining != units(60) {
		t.Fatalf("the grant given back %+v", grant)
	}
	if r != (ledger.Returns{}) {
		t.Fatalf("returns after the reversal %+v, want none", r)
	}

	// All of it expired: the refund takes nothing, and writes no entry.
	gone := g("gone", ledger.Paid, 10, 50, 0, 1)
	gone.Remaining, gone.Status = 0, ledger.GrantExpired
	before := acct.LastSeq
	e, c, err = ledger.ClawBack(t0, newID, acct, ledger.KindRefund, "re_2", gone, ledger.Returns{Lost: units(10)}, units(10))
	if err != nil || e != nil || c.Taken != 0 || acct.LastSeq != before || c.Returns.FromLost != units(10) {
		t.Fatalf("refund of expired credit: entry %+v, %+v, %v", e, c, err)
	}
}
