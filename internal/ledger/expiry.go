package ledger

import (
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// Expiry and void (PRODUCT.md "Credit grants and holds"): both take what
// remains of a grant out of the balance, through the same lock and plan as
// a debit, so that neither can race a debit or a capture.

// ScopeVoid is the idempotency scope of voids.
const ScopeVoid = "void"

// ExpiringNotice is how long before a grant expires its customer is told
// (credit.expiring); a grant that expires sooner is announced at once.
const ExpiringNotice = 7 * 24 * time.Hour

// Event types of grants.
const (
	EventCreditExpiring = "credit.expiring"
	EventCreditExpired  = "credit.expired"
)

// Sweep is the posting that expires an account's grants whose expiry has
// come. It has no amount, key or entry of its own: it writes one
// expiration entry per grant that expired with something left, and its
// result is the account's balance after them. A closed account's grants
// expire too.
func Sweep(accountID string) Posting { return Posting{AccountID: accountID, Kind: KindExpiration} }

// IsSweep reports whether p is a Sweep.
func (p *Posting) IsSweep() bool { return p.Kind == KindExpiration }

// VoidPosting is the operator's void of grantID under key.
func VoidPosting(accountID, grantID, key string) Posting {
	return Posting{AccountID: accountID, Kind: KindVoid, GrantID: grantID, IdempotencyKey: key, Call: ScopeVoid}
}

// sweep applies a sweep posting: no idempotency, no entry of its own.
func sweep(now time.Time, newID func(string) string, accounts map[string]*AccountState, plan *Plan, p *Posting) Result {
	a, ok := accounts[p.AccountID]
	if !ok {
		return Result{Err: apperr.NotFoundf("no account %s", p.AccountID)}
	}
	if err := a.expireDue(now, newID, plan); err != nil {
		return Result{Err: err}
	}
	res := Result{Balance: a.Balance, Currency: a.Currency.Code, Reason: a.StopReason(), CreatedAt: now}
	res.Spendable = res.Reason == ""
	return res
}

// expireDue expires the wallet's grants whose expiry has come by now: each
// that had something left writes its expiration entry into plan (and is
// listed in plan.Expired); one with nothing left just becomes used.
func (a *AccountState) expireDue(now time.Time, newID func(string) string, plan *Plan) error {
	if a.Wallet == nil {
		return nil
	}
	for _, x := range a.Wallet.Expire(now) {
		e, err := a.expire(now, newID, x)
		if err != nil {
			return err
		}
		plan.Entries = append(plan.Entries, e)
		plan.Expired = append(plan.Expired, x)
	}
	return nil
}

// void takes what remains of the grant p names out of the balance as one
// void entry funded by that grant, after expiring what has expired (a
// grant whose expiry has come is expired, not voided: 409). A grant that
// is not active answers 409 conflict; one the account does not have, 404.
// A closed account may still void: it winds the account down.
func (a *AccountState) void(now time.Time, newID func(string) string, p *Posting, plan *Plan) (Entry, error) {
	if a.Wallet == nil {
		return Entry{}, apperr.NotFoundf("no grant %s", p.GrantID)
	}
	if err := a.expireDue(now, newID, plan); err != nil {
		return Entry{}, err
	}
	g := a.Wallet.Active(p.GrantID)
	if g == nil {
		_, _, err := a.Wallet.Void(p.GrantID)
		return Entry{}, err
	}
	if g.Remaining == 0 {
		return Entry{}, apperr.New(apperr.Conflict, "grant %s has nothing left", g.ID)
	}
	amount := g.Remaining
	if err := a.Move(-amount, false); err != nil {
		return Entry{}, err
	}
	if _, _, err := a.Wallet.Void(g.ID); err != nil {
		return Entry{}, err
	}
	return Entry{ID: newID("ent"), AccountID: a.ID, Seq: a.LastSeq, Kind: KindVoid, Amount: -amount, BalanceAfter: a.Balance,
		Description: p.Description, IdempotencyKey: p.IdempotencyKey, GrantID: g.ID,
		Funding: []Funding{{GrantID: g.ID, Category: g.Category, Amount: amount}}, CreatedAt: now}, nil
}

// EachEntry calls fn for every entry of the plan, in order, with the
// result and idempotency record of the posting it answers; both are nil
// for an entry that answers no posting (an expiration written before a
// debit, or by a sweep). A rule that watches the balance (low balance
// alerts) sees every change this way, where it happened.
func (p *Plan) EachEntry(fn func(e *Entry, res *Result, rec *IdemRecord)) {
	k, rec := 0, 0
	for i := range p.Results {
		r := &p.Results[i]
		if r.Err != nil || r.Replayed || r.EntryID == "" {
			continue
		}
		for p.Entries[k].ID != r.EntryID {
			fn(&p.Entries[k], nil, nil)
			k++
		}
		fn(&p.Entries[k], r, &p.Records[rec])
		k++
		rec++
	}
	for ; k < len(p.Entries); k++ {
		fn(&p.Entries[k], nil, nil)
	}
}

// GrantView is a grant as the API and event data show it.
type GrantView struct {
	ID        string  `json:"id"`
	Category  string  `json:"category"`
	Source    string  `json:"source"`
	SourceID  *string `json:"source_id"`
	Amount    string  `json:"amount"`
	Remaining string  `json:"remaining"`
	Priority  int     `json:"priority"`
	ExpiresAt *string `json:"expires_at"`
	Status    string  `json:"status"`
	CreatedAt string  `json:"created_at"`
}

// View is g as the wire shows it, its amounts in currency c.
func (g *Grant) View(c money.Currency) GrantView {
	out := GrantView{ID: g.ID, Category: string(g.Category), Source: string(g.Source), Amount: g.Amount.Format(c),
		Remaining: g.Remaining.Format(c), Priority: g.Priority, Status: string(g.Status), CreatedAt: FormatTime(g.CreatedAt)}
	if g.SourceID != "" {
		id := g.SourceID
		out.SourceID = &id
	}
	if !g.ExpiresAt.IsZero() {
		at := FormatTime(g.ExpiresAt)
		out.ExpiresAt = &at
	}
	return out
}

// ExpiredView is the data of credit.expired: the grant, now expired, and
// the amount that left the balance with it.
type ExpiredView struct {
	GrantView
	AmountExpired string `json:"amount_expired"`
}

// Event is the credit.expired event of x, with id, its amounts in c.
func (x Expiration) Event(id string, c money.Currency) Event {
	return Event{ID: id, AccountID: x.Grant.AccountID, Type: EventCreditExpired,
		Data: ExpiredView{GrantView: x.Grant.View(c), AmountExpired: x.Amount.Format(c)}}
}

// ExpiringEvent is the credit.expiring event of g, what will expire and
// when, with id, its amounts in c.
func ExpiringEvent(id string, g *Grant, c money.Currency) Event {
	return Event{ID: id, AccountID: g.AccountID, Type: EventCreditExpiring, Data: g.View(c)}
}

// WarnDue reports whether g's customer should be told now that it will
// expire: it is active with something left, expires within
// ExpiringNotice of now and has not expired yet (an expired grant is told
// credit.expired instead).
func (g *Grant) WarnDue(now time.Time) bool {
	return g.Status == GrantActive && g.Remaining > 0 && !g.ExpiresAt.IsZero() && now.Before(g.ExpiresAt) &&
		g.ExpiresAt.Sub(now) <= ExpiringNotice
}
