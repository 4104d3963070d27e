package ledger

import (
	"errors"
	"math"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// AccountState is what Apply needs of an account: loaded, and locked where
// the database has row locks, inside the posting transaction.
type AccountState struct {
	Account
	LastSeq int64
	// Turnover is the sum of the sizes of every entry the account ever
	// had: what bounds every total Topup stores for it (see MaxTurnover).
	Turnover money.Amount
	// Touched is set by Apply when the balance changed and the row must be
	// written back.
	Touched bool
	// Overdraft is the overdraft in the account's row, as loaded; once the
	// account has a Wallet, the wallet's is the one to write back.
	Overdraft money.Amount
	// Wallet is the account's active grants and overdraft, loaded by the
	// store for an account the group may change. With it, a debit records
	// its funding (after expiring what has expired) and a credit makes a
	// grant; without it (nil), Apply only moves the balance.
	Wallet *Wallet
	// HeldUntil is the soonest expires_at among the active holds Held
	// counts, or earlier (zero: none is active): from then on the store
	// counts them again, without those that expired.
	HeldUntil time.Time
	// Holds are the holds the group's captures name, loaded by the store
	// after the account's lock.
	Holds map[string]*Hold
	// HeldChanged is set when a hold was made, captured or released: Held
	// (and HeldUntil) must be written back.
	HeldChanged bool
}

// OverdraftNow is the overdraft to write back: the wallet's, or the one
// loaded when the account has no wallet.
func (a *AccountState) OverdraftNow() money.Amount {
	if a.Wallet != nil {
		return a.Wallet.Overdraft()
	}
	return a.Overdraft
}

// IdemKey identifies one idempotent request.
type IdemKey struct {
	Scope Scope
	Key   string
}

// Stored is a request already answered: the hash of its meaning and its
// first result.
type Stored struct {
	Hash   string
	Result Result
}

// IdemRecord is a new idempotency row to write with the entries.
type IdemRecord struct {
	IdemKey
	Hash   string
	Result Result
}

// Plan is what a group of postings writes: entries to insert, idempotency
// rows to insert, and accounts whose balance changed; the grants its
// credits made (the other grants it changed are each wallet's Changed).
type Plan struct {
	Results []Result
	Entries []Entry
	Records []IdemRecord
	Grants  []*Grant
	// Holds are the holds the group captured, to write back.
	Holds []*Hold
	// Expired are the grants the plan expired with something left, in the
	// order of their expiration entries: each tells its customer
	// (credit.expired).
	Expired []Expiration
}

// ErrConflict is returned inside a Result when a key was used before with a
// different request.
var errConflict = &apperr.Error{
	Code:    apperr.IdempotencyConflict,
	Message: "this idempotency_key was used with a different request",
	Field:   "idempotency_key",
}

// Apply applies postings in order to the loaded accounts, as if each had been
// sent alone: a key seen before (in the store or earlier in the group) with
// the same meaning replays its first result; with another meaning it is a
// conflict. Unknown and closed accounts refuse their postings. Apply changes
// the balances in accounts and returns what to write.
func Apply(now time.Time, newID func(string) string, accounts map[string]*AccountState, stored map[IdemKey]Stored, postings []Posting) Plan {
	plan := Plan{Results: make([]Result, len(postings))}
	var seen map[IdemKey]int // index into plan.Records for keys first seen in this group
	for i := range postings {
		p := &postings[i]
		if p.IsSweep() {
			plan.Results[i] = sweep(now, newID, accounts, &plan, p)
			continue
		}
		key := IdemKey{Scope: p.Scope(), Key: p.IdempotencyKey}
		hash := p.Hash()
		if s, ok := stored[key]; ok {
			plan.Results[i] = replay(s.Hash, hash, s.Result)
			continue
		}
		if j, ok := seen[key]; ok {
			plan.Results[i] = replay(plan.Records[j].Hash, hash, plan.Records[j].Result)
			continue
		}
		acct, ok := accounts[p.AccountID]
		if !ok {
			plan.Results[i] = Result{Err: apperr.NotFoundf("no account %s", p.AccountID)}
			continue
		}
		e, err := acct.apply(now, newID, p, &plan)
		if err != nil {
			plan.Results[i] = Result{Err: err}
			continue
		}
		balance := acct.Balance
		plan.Entries = append(plan.Entries, e)
		res := Result{EntryID: e.ID, Balance: balance, Currency: acct.Currency.Code, Reason: acct.StopReason(), GrantID: e.GrantID, CreatedAt: now,
			Available: acct.Available()}
		res.Spendable = res.Reason == ""
		plan.Results[i] = res
		if seen == nil {
			seen = make(map[IdemKey]int)
		}
		seen[key] = len(plan.Records)
		plan.Records = append(plan.Records, IdemRecord{IdemKey: key, Hash: hash, Result: res})
	}
	return plan
}

// apply books one posting that is not a sweep on a: a void, or a debit or
// a credit, which a closed account refuses.
func (a *AccountState) apply(now time.Time, newID func(string) string, p *Posting, plan *Plan) (Entry, error) {
	if p.Kind == KindVoid {
		return a.void(now, newID, p, plan)
	}
	act := ActCredit
	if p.Amount < 0 {
		act = ActUsage
	}
	if err := a.Account.May(act); err != nil {
		return Entry{}, err
	}
	if p.HoldID != "" {
		return a.capture(now, newID, p, plan)
	}
	return a.post(now, newID, p, true, plan)
}

// Credit applies a balance change that cannot be refused, the credit of a
// top-up already paid for, through the same path as Apply's postings: it
// moves the balance (refused only when a total would no longer fit in
// int64) and returns the entry to write, with the grant it made when the
// account has a wallet. No idempotency row is kept: the entry's top-up id
// allows one credit per top-up.
func Credit(now time.Time, newID func(string) string, acct *AccountState, p Posting) (Entry, *Grant, error) {
	var plan Plan
	e, err := acct.post(now, newID, &p, false, &plan)
	if err != nil || len(plan.Grants) == 0 {
		return e, nil, err
	}
	return e, plan.Grants[0], nil
}

// post books p on a, and with a wallet decides its grants: before a
// debit, the grants whose expiry has come expire (their expiration entries
// go into plan ahead of p's, and stay there whatever becomes of p: they
// happened), then the debit's funding is taken in spending order; a credit
// makes a grant (into plan.Grants), which first pays any overdraft. On
// refusal p changes neither the balance nor the wallet.
func (a *AccountState) post(now time.Time, newID func(string) string, p *Posting, refusable bool, plan *Plan) (Entry, error) {
	if p.Amount < 0 {
		if err := a.expireDue(now, newID, plan); err != nil {
			return Entry{}, err
		}
	}
	before := *a
	e, err := a.book(now, newID, p, refusable)
	if err != nil || a.Wallet == nil {
		return e, err
	}
	if p.Amount < 0 {
		// Move refused what would overflow; Spend checks again before
		// changing anything.
		f, err := a.Wallet.Spend(-p.Amount)
		if err != nil {
			*a = before
			return Entry{}, err
		}
		e.Funding = f
		return e, nil
	}
	g := p.Terms.grant(newID("grt"), &e)
	a.Wallet.Add(g)
	e.GrantID = g.ID
	plan.Grants = append(plan.Grants, g)
	return e, nil
}

// capture books p, the capture of hold p.HoldID, as usage (funding,
// budgets and alerts as for any usage) and releases the rest of the hold:
// the hold must be active at now and cover the amount (Hold.Capture). On
// refusal nothing changes.
func (a *AccountState) capture(now time.Time, newID func(string) string, p *Posting, plan *Plan) (Entry, error) {
	h := a.Holds[p.HoldID]
	if h == nil {
		return Entry{}, apperr.NotFoundf("no hold %s", p.HoldID)
	}
	amount, err := h.Capture(-p.Amount, true, now)
	if err != nil {
		return Entry{}, err
	}
	e, err := a.post(now, newID, p, true, plan)
	if err != nil {
		return Entry{}, err
	}
	e.HoldID = h.ID
	h.Status, h.Captured, h.EntryID = HoldCaptured, amount, e.ID
	a.Held -= h.Amount
	a.HeldChanged = true
	plan.Holds = append(plan.Holds, h)
	return e, nil
}

// expire records x, a grant that expired with something left, as its
// expiration entry: negative, funded by that grant. It cannot be refused.
func (a *AccountState) expire(now time.Time, newID func(string) string, x Expiration) (Entry, error) {
	if err := a.Move(-x.Amount, false); err != nil {
		return Entry{}, err
	}
	return Entry{ID: newID("ent"), AccountID: a.ID, Seq: a.LastSeq, Kind: KindExpiration, Amount: -x.Amount, BalanceAfter: a.Balance,
		GrantID: x.Grant.ID, Funding: []Funding{{GrantID: x.Grant.ID, Category: x.Grant.Category, Amount: x.Amount}}, CreatedAt: now}, nil
}

// book moves acct's balance by p and returns the entry that records it;
// on refusal nothing changes.
func (a *AccountState) book(now time.Time, newID func(string) string, p *Posting, refusable bool) (Entry, error) {
	if err := a.Move(p.Amount, refusable); err != nil {
		return Entry{}, err
	}
	return Entry{
		ID:             newID("ent"),
		AccountID:      p.AccountID,
		Seq:            a.LastSeq,
		Kind:           p.Kind,
		Amount:         p.Amount,
		BalanceAfter:   a.Balance,
		Description:    p.Description,
		Subject:        p.Subject,
		IdempotencyKey: p.IdempotencyKey,
		TopUpID:        p.TopUpID,
		CreatedAt:      now,
	}, nil
}

// MaxTurnover bounds an account's turnover, the sum of the sizes of all its
// entries. Every total Topup stores for an account (its balance, its daily
// usage and credits, a budget's spend, the month's automatic top-ups) is a
// sum over some of those entries, so none can overflow while the turnover
// stays below this bound; the quarter of int64 leaves room for the credits
// that cannot be refused (a top-up already paid for) to land beyond it.
// That is 2.3 trillion units of any currency.
const MaxTurnover money.Amount = math.MaxInt64 / 4

// Move changes the balance by amount and counts it in the turnover. A
// refusable change (a posting) is refused with 400 on amount when the
// turnover would pass MaxTurnover; one that cannot be refused (the credit of
// a paid top-up) only when a total would no longer fit in int64 at all. On
// refusal nothing changes.
func (a *AccountState) Move(amount money.Amount, refusable bool) error {
	size := amount
	if size < 0 {
		var err error
		if size, err = money.Neg(amount); err != nil {
			return apperr.Invalidf("amount", "is too large")
		}
	}
	turnover, err := money.Add(a.Turnover, size)
	if err == nil && refusable && turnover > MaxTurnover {
		err = errors.New("past MaxTurnover")
	}
	if err != nil {
		return apperr.Invalidf("amount", "the account's totals would overflow: it has moved %s in all, and Topup keeps every total exact", a.Turnover.Format(a.Currency))
	}
	balance, err := money.Add(a.Balance, amount)
	if err != nil {
		return apperr.Invalidf("amount", "the balance would overflow")
	}
	a.Balance, a.Turnover = balance, turnover
	a.LastSeq++
	a.Touched = true
	return nil
}

// EachFresh calls fn for every posting that made a new entry, in posting
// order, with that entry, its result and the idempotency record that keeps
// the result: Apply appends one entry and one record per fresh result, in
// order, and before a debit's entry the expiration entries it wrote (which
// answer no posting, and are skipped here, as are sweeps, which answer
// with no entry of their own). A rule applied after Apply
// (budgets) uses it to amend what is answered and what a replay will
// answer alike.
func (p *Plan) EachFresh(fn func(i int, e *Entry, res *Result, rec *IdemRecord)) {
	k, rec := 0, 0
	for i := range p.Results {
		r := &p.Results[i]
		if r.Err != nil || r.Replayed || r.EntryID == "" {
			continue
		}
		for p.Entries[k].ID != r.EntryID {
			k++
		}
		fn(i, &p.Entries[k], r, &p.Records[rec])
		k++
		rec++
	}
}

func replay(storedHash, hash string, first Result) Result {
	if storedHash != hash {
		return Result{Err: errConflict}
	}
	first.Replayed = true
	first.Err = nil
	return first
}

// IsConflict reports whether err is an idempotency conflict.
func IsConflict(err error) bool {
	var e *apperr.Error
	return errors.As(err, &e) && e.Code == apperr.IdempotencyConflict
}
