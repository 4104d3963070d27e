package ledger

import (
	"fmt"
	"slices"
	"time"

	"github.com/topup/topup/internal/money"
)

// Returns is what the refunds and disputes of the top-up that made a grant
// have accounted for so far, slice by slice (PRODUCT.md "Refunds,
// disputes, receipts and statements"). A grant's amount is, at any time,
// what remains of it, what was spent of it (usage, and what it paid of an
// overdraft when it was made), what left the balance when it expired or was
// voided (Lost), and what refunds took back from its remaining
// (Reclaimed). A refund is accounted to those slices in that order: what
// remains is taken back from the grant itself; for the part already spent
// the money is taken from the other grants in spending order, then
// overdraft (FromSpent); the part that had expired or been voided has left
// the balance already and is taken from nobody (FromLost).
type Returns struct {
	Lost      money.Amount
	Reclaimed money.Amount
	FromSpent money.Amount
	FromLost  money.Amount
}

// Accounted is how much of the grant's amount refunds and disputes have
// accounted for: what may still be refunded or disputed is the rest.
func (r Returns) Accounted() money.Amount { return r.Reclaimed + r.FromSpent + r.FromLost }

// Clawback is what a refund (or a dispute whose funds were withdrawn) does
// to the ledger: one negative entry of Taken, funded by Funding (the grant's
// own line first, then the other grants in spending order, then
// overdraft), and the grant's Returns afterwards. Taken is less than the
// amount refunded by what had expired or been voided.
type Clawback struct {
	Funding []Funding
	Taken   money.Amount
	Returns Returns
}

// Claw accounts amount (positive), refunded or disputed of the top-up that
// made g, to g's slices in order and takes the money from the wallet. g is
// the grant as loaded, active in w or not (used, expired, voided); r is its
// Returns so far. Refusing more than the grant's amount not yet accounted
// for is the caller's rule too (400 at the edge); here it is an error, and
// nothing changes.
func (w *Wallet) Claw(g *Grant, r Returns, amount money.Amount) (Clawback, error) {
	if amount <= 0 {
		return Clawback{}, fmt.Errorf("ledger: claw back %d: not positive", amount)
	}
	if left := g.Amount - r.Accounted(); amount > left {
		return Clawback{}, fmt.Errorf("ledger: claw back %d of grant %s: only %d is not yet refunded or disputed", amount, g.ID, left)
	}
	spent := g.Amount - g.Remaining - r.Lost - r.Reclaimed
	fromRemaining := min(amount, g.Remaining)
	fromSpent := min(amount-fromRemaining, spent-r.FromSpent)
	fromLost := amount - fromRemaining - fromSpent
	if fromLost > r.Lost-r.FromLost {
		return Clawback{}, fmt.Errorf("ledger: grant %s does not add up: amount %d, remaining %d, %+v", g.ID, g.Amount, g.Remaining, r)
	}
	var out Clawback
	if fromRemaining > 0 {
		w.reclaim(g, fromRemaining)
		out.Funding = append(out.Funding, Funding{GrantID: g.ID, Category: g.Category, Amount: fromRemaining})
	}
	if fromSpent > 0 {
		lines, err := w.Spend(fromSpent)
		if err != nil {
			return Clawback{}, err
		}
		out.Funding = append(out.Funding, lines...)
	}
	r.Reclaimed += fromRemaining
	r.FromSpent += fromSpent
	r.FromLost += fromLost
	out.Taken, out.Returns = fromRemaining+fromSpent, r
	return out, nil
}

// reclaim takes amount back out of g's remaining; a grant left with nothing
// is used, and leaves the wallet's active grants.
func (w *Wallet) reclaim(g *Grant, amount money.Amount) {
	if i := slices.IndexFunc(w.grants, func(x *Grant) bool { return x.ID == g.ID }); i >= 0 {
		g = w.grants[i]
		g.Remaining -= amount
		if g.Remaining == 0 {
			g.Status = GrantUsed
			w.grants = slices.Delete(w.grants, i, i+1)
		}
	} else {
		g.Remaining -= amount
	}
	w.touch(g)
}

// ClawBack books on acct (locked, with its wallet) the entry of a refund
// or of a dispute's withdrawal (kind KindRefund or KindDispute; ref, the
// refund's or dispute's id, is kept in the entry's idempotency key, which
// a unique index allows once per kind): amount, refunded or withdrawn of
// the top-up whose grant is g (with its Returns r), taken as Claw says. It
// cannot be refused: the money has left already. The entry is nil when
// nothing is taken (all of it had expired or been voided); the Clawback
// says how it was accounted, for the grant's row and for a reversal.
func ClawBack(now time.Time, newID func(string) string, acct *AccountState, kind Kind, ref string, g *Grant, r Returns, amount money.Amount) (*Entry, Clawback, error) {
	if acct.Wallet == nil {
		return nil, Clawback{}, fmt.Errorf("ledger: claw back from account %s without its wallet", acct.ID)
	}
	c, err := acct.Wallet.Claw(g, r, amount)
	if err != nil || c.Taken == 0 {
		return nil, c, err
	}
	if err := acct.Move(-c.Taken, false); err != nil {
		return nil, Clawback{}, err
	}
	return &Entry{ID: newID("ent"), AccountID: acct.ID, Seq: acct.LastSeq, Kind: kind, Amount: -c.Taken, BalanceAfter: acct.Balance,
		IdempotencyKey: ref, TopUpID: g.SourceID, GrantID: g.ID, Funding: c.Funding, CreatedAt: now}, c, nil
}

// GiveBack books on acct (locked, with its wallet) what a reversal gives
// back: a refund that failed after it succeeded (KindRefundReversal) or a
// dispute won after its funds were withdrawn (KindDisputeReversal), the
// amount the first entry took. The money comes back as a grant like the
// one the refund or dispute was of (its category, priority and expiry;
// source dispute_reversal for a dispute, top_up for a refund), which
// first pays any overdraft; undo is what the first entry's Clawback
// accounted, and the grant's Returns are rolled back by it (what it had
// reclaimed of the grant's remaining counts as spent from now on: the money
// is in the new grant).
func GiveBack(now time.Time, newID func(string) string, acct *AccountState, kind Kind, ref string, of *Grant, r, undo Returns, taken money.Amount) (Entry, *Grant, Returns, error) {
	if acct.Wallet == nil {
		return Entry{}, nil, r, fmt.Errorf("ledger: give back to account %s without its wallet", acct.ID)
	}
	terms := GrantTerms{Category: of.Category, Priority: of.Priority, ExpiresAt: of.ExpiresAt, Source: SourceTopUp, SourceID: of.SourceID}
	if kind == KindDisputeReversal {
		terms.Source = SourceDisputeReversal
	}
	if !terms.ExpiresAt.IsZero() && !terms.ExpiresAt.After(now) {
		// The grant it restores has expired since: what comes back
		// would expire at once, so it does not expire.
		terms.ExpiresAt = time.Time{}
	}
	p := Posting{AccountID: acct.ID, Kind: kind, Amount: taken, IdempotencyKey: ref, Terms: terms, TopUpID: of.SourceID}
	var plan Plan
	e, err := acct.post(now, newID, &p, false, &plan)
	if err != nil {
		return Entry{}, nil, r, err
	}
	r.Reclaimed -= undo.Reclaimed
	r.FromSpent -= undo.FromSpent
	r.FromLost -= undo.FromLost
	return e, plan.Grants[0], r, nil
}
