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
// rows to insert, and accounts whose balance changed.
type Plan struct {
	Results []Result
	Entries []Entry
	Records []IdemRecord
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
		act := ActCredit
		if p.Amount < 0 {
			act = ActUsage
		}
		if err := acct.Account.May(act); err != nil {
			plan.Results[i] = Result{Err: err}
			continue
		}
		e, err := acct.book(now, newID, p, true)
		if err != nil {
			plan.Results[i] = Result{Err: err}
			continue
		}
		balance := acct.Balance
		plan.Entries = append(plan.Entries, e)
		res := Result{EntryID: e.ID, Balance: balance, Currency: acct.Currency.Code, Reason: acct.StopReason(), CreatedAt: now}
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

// Credit applies a balance change that cannot be refused, the credit of a
// top-up already paid for, through the same path as Apply's postings: it
// moves the balance (refused only when a total would no longer fit in
// int64) and returns the entry to write. No idempotency row is kept: the
// entry's top-up id allows one credit per top-up.
func Credit(now time.Time, newID func(string) string, acct *AccountState, p Posting) (Entry, error) {
	return acct.book(now, newID, &p, false)
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
// order. A rule applied after Apply (budgets) uses it to amend what is
// answered and what a replay will answer alike.
func (p *Plan) EachFresh(fn func(i int, e *Entry, res *Result, rec *IdemRecord)) {
	k := 0
	for i := range p.Results {
		r := &p.Results[i]
		if r.Err != nil || r.Replayed {
			continue
		}
		fn(i, &p.Entries[k], r, &p.Records[k])
		k++
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
