package ledger

import (
	"fmt"
	"strings"
)

// A usage call's key and first response are kept in the entry it made, not
// in an idempotency row of their own: the entry already holds the request's
// meaning (kind, amount, description, subject) and most of the answer (its
// id, the balance after, the time), so a debit writes its entry and no
// second row at a random place in a second table. Answer keeps the rest.
// Other calls (credits, captures, voids) keep their rows: their answers
// name what the entry does not (a grant, a hold).

// KeptInEntry reports whether the key is kept in the entry it answers:
// usage's, single or batched (a capture's keys are their own scope). An
// IdemRecord has it too.
func (k IdemKey) KeptInEntry() bool { return k.Scope.Call() == ScopeUsage }

// Call is the kind of call of the scope (ScopeUsage, ScopeCredit, …).
func (s Scope) Call() string {
	i := strings.LastIndexByte(string(s), '/')
	return string(s[i+1:])
}

// Account is the account of the scope.
func (s Scope) Account() string {
	i := strings.LastIndexByte(string(s), '/')
	return string(s[:max(i, 0)])
}

// Answer is what a usage entry keeps of its first response beyond the
// entry itself: why it was not spendable and the top-up it triggered,
// "reason|top_up_id", or "" for a spendable debit that triggered none (the
// common case, which costs the entry no byte).
func Answer(r Result) string {
	if r.Reason == "" && r.TopUpID == "" {
		return ""
	}
	return r.Reason + "|" + r.TopUpID
}

// ReplayOf is the first response a usage entry kept by KeptInEntry
// answers with, and the hash of the request that made it, from the entry,
// its account's currency and its Answer.
func ReplayOf(e *Entry, currency, answer string) (Stored, error) {
	var reason, topUp string
	if answer != "" {
		var ok bool
		if reason, topUp, ok = strings.Cut(answer, "|"); !ok {
			return Stored{}, fmt.Errorf("entry %s: answer %q has no |", e.ID, answer)
		}
	}
	p := Posting{Kind: e.Kind, Amount: e.Amount, Description: e.Description, Subject: e.Subject}
	return Stored{Hash: p.Hash(), Result: Result{EntryID: e.ID, Balance: e.BalanceAfter, Currency: currency,
		Spendable: reason == "", Reason: reason, TopUpID: topUp, CreatedAt: e.CreatedAt}}, nil
}

// KeepInEntries writes the Answer of each record KeptInEntry into the
// entry it answers and returns the other records, those an idempotency row
// keeps. Records answer entries in the entries' order (Apply appends both
// as it goes); a record whose entry is missing is an error, as writing it
// nowhere would forget its key.
func KeepInEntries(entries []Entry, recs []IdemRecord) ([]IdemRecord, error) {
	rest := recs[:0:0]
	k := 0
	for i := range recs {
		r := &recs[i]
		if !r.KeptInEntry() {
			rest = append(rest, *r)
			continue
		}
		for k < len(entries) && entries[k].ID != r.Result.EntryID {
			k++
		}
		if k == len(entries) {
			return nil, fmt.Errorf("usage key %s answers entry %s, which is not among the entries written", r.Key, r.Result.EntryID)
		}
		entries[k].Answer = Answer(r.Result)
		k++
	}
	return rest, nil
}
