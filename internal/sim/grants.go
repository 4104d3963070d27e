package sim

import (
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// creditTerms are the grant an operator credit asks for, from the step's
// random source: half the credits are the default grant (promotional,
// priority 10, never expiring); the others pick a category, a priority on
// either side of the defaults, and often an expiry minutes to days ahead,
// so that clock steps carry grants past it between debits.
func (s *Sim) creditTerms() ledger.GrantTerms {
	r := s.step.rng
	if r.IntN(2) == 0 {
		return ledger.GrantTerms{}
	}
	t := ledger.GrantTerms{Category: ledger.Promotional}
	if r.IntN(2) == 0 {
		t.Category = ledger.Paid
	}
	t.Priority = []int{0, ledger.DefaultPromotionalPriority, ledger.DefaultPaidPriority, ledger.MaxPriority}[r.IntN(4)]
	if r.IntN(3) > 0 {
		ahead := []time.Duration{10 * time.Minute, 2 * time.Hour, 30 * time.Hour, 3 * 24 * time.Hour}[r.IntN(4)]
		t.ExpiresAt = s.clock.Now().UTC().Add(ahead).Truncate(time.Microsecond)
	}
	return t
}

// grant returns what the store says of a grant of acct, read once (what
// the checks use of it, its terms, never changes).
func (s *Sim) grant(acct, id string) (ledger.Grant, bool) {
	if g, ok := s.grants[id]; ok {
		return g, true
	}
	page := ledger.Page{Limit: 100}
	for {
		gs, more, err := s.proc.store.Grants(s.ctx, acct, "", page)
		if err != nil {
			panic(simError{err})
		}
		for _, g := range gs {
			s.grants[g.ID] = g
		}
		if !more || len(gs) == 0 {
			break
		}
		page.StartingAfter = gs[len(gs)-1].ID
	}
	g, ok := s.grants[id]
	return g, ok
}

// checkFunding checks a negative entry's funding against the contract
// (invariant "funding"): the lines add up to the entry's amount, overdraft
// comes last and once, the grant lines follow the spending order, a usage
// or void line never draws on a grant whose expires_at had come when the
// entry was written, and an expiration takes exactly one grant that had
// expired by then.
func (s *Sim) checkFunding(e ledger.Entry) {
	st := s.step
	var sum money.Amount
	var prev *ledger.Grant
	for i, f := range e.Funding {
		sum += f.Amount
		if f.Category == ledger.Overdraft {
			if i != len(e.Funding)-1 {
				st.fail("funding", "entry %s: overdraft is not its last funding line: %v", e.ID, e.Funding)
			}
			continue
		}
		g, ok := s.grant(e.AccountID, f.GrantID)
		switch {
		case !ok:
			st.fail("funding", "entry %s is funded by grant %s, which %s does not have", e.ID, f.GrantID, s.nameOf(e.AccountID))
			continue
		case g.Category != f.Category:
			st.fail("funding", "entry %s: line of grant %s says %s, the grant is %s", e.ID, g.ID, f.Category, g.Category)
		}
		expired := g.ExpiredAt(e.CreatedAt)
		if e.Kind == ledger.KindExpiration && (!expired || len(e.Funding) != 1 || g.ID != e.GrantID) {
			st.fail("funding", "expiration %s at %s takes grant %s (expires %s) in %v", e.ID, e.CreatedAt, g.ID, g.ExpiresAt, e.Funding)
		}
		if e.Kind != ledger.KindExpiration && expired {
			st.fail("funding", "entry %s at %s draws on grant %s, which expired at %s", e.ID, e.CreatedAt, g.ID, g.ExpiresAt)
		}
		if prev != nil && spendsBefore(e.Kind, &g, prev) < 0 {
			st.fail("funding", "entry %s takes grant %s after %s, against the spending order", e.ID, g.ID, prev.ID)
		}
		prev = &g
	}
	if sum != -e.Amount {
		st.fail("funding", "entry %s of %s is funded by lines adding up to %s", e.ID, micros(int64(e.Amount)), micros(int64(sum)))
	}
}

// spendsBefore is the spending order of an entry of kind k's grant lines:
// ledger.SpendsBefore, except for a refund or a dispute, which takes its
// top-up's grant first (ledger.Wallet.Claw) and then any order.
func spendsBefore(k ledger.Kind, a, b *ledger.Grant) int {
	if k == ledger.KindRefund || k == ledger.KindDispute {
		return 0
	}
	return ledger.SpendsBefore(a, b)
}
