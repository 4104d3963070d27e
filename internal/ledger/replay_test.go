package ledger_test

import (
	"testing"
	"time"

	"github.com/topup/topup/internal/ledger"
)

// A usage key kept in its entry replays what the first response said, and
// a replay with another meaning is still a conflict: ReplayOf rebuilds the
// record KeepInEntries folded into the entry.
func TestUsageKeysKeptInEntries(t *testing.T) {
	t.Parallel()
	usd, newID := fixtureIDs()
	accounts := map[string]*ledger.AccountState{
		"a": {Account: ledger.Account{ID: "a", Currency: usd, Balance: 1_000_000, Status: ledger.Active}, LastSeq: 3},
	}
	postings := []ledger.Posting{
		{AccountID: "a", Kind: ledger.KindUsage, Amount: -400_000, IdempotencyKey: "u1", Call: ledger.ScopeUsage, Description: "run", Subject: "s"},
		{AccountID: "a", Kind: ledger.KindCredit, Amount: 5, IdempotencyKey: "c1", Call: ledger.ScopeCredit},
		{AccountID: "a", Kind: ledger.KindUsage, Amount: -700_000, IdempotencyKey: "u2", Call: ledger.ScopeUsage},
	}
	now := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	plan := ledger.Apply(now, newID, accounts, nil, postings)
	// What the plan amends after Apply (a budget's stop, a triggered
	// top-up) is in the record by the time it is written.
	plan.Records[2].Result.TopUpID = "tu_9"
	rest, err := ledger.KeepInEntries(plan.Entries, plan.Records)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || rest[0].Key != "c1" {
		t.Fatalf("records left for the idempotency table: %+v, want only the credit's", rest)
	}
	if plan.Entries[0].Answer != "" || plan.Entries[1].Answer != "" || plan.Entries[2].Answer != "insufficient_balance|tu_9" {
		t.Fatalf("answers %q, %q, %q", plan.Entries[0].Answer, plan.Entries[1].Answer, plan.Entries[2].Answer)
	}
	for _, i := range []int{0, 2} {
		e, rec := &plan.Entries[i], plan.Records[i]
		got, err := ledger.ReplayOf(e, "usd", e.Answer)
		if err != nil {
			t.Fatal(err)
		}
		want := rec.Result
		want.Available = 0 // not kept for replays
		if got.Hash != postings[i].Hash() || got.Result != want {
			t.Errorf("replay of %s: %+v, want hash %s and %+v", rec.Key, got, postings[i].Hash(), want)
		}
		// Applied again: the same request replays, another conflicts.
		stored := map[ledger.IdemKey]ledger.Stored{rec.IdemKey: got}
		again := ledger.Apply(now.Add(time.Hour), newID, accounts, stored, []ledger.Posting{postings[i], {AccountID: "a", Kind: ledger.KindUsage,
			Amount: postings[i].Amount - 1, IdempotencyKey: rec.Key, Call: ledger.ScopeUsage}})
		if r := again.Results[0]; !r.Replayed || r.EntryID != e.ID || r.Balance != e.BalanceAfter || r.TopUpID != rec.Result.TopUpID {
			t.Errorf("%s again: %+v, want the replay of %+v", rec.Key, r, rec.Result)
		}
		if !ledger.IsConflict(again.Results[1].Err) {
			t.Errorf("%s with another amount: %+v, want a conflict", rec.Key, again.Results[1])
		}
	}
	if _, err := ledger.KeepInEntries(plan.Entries[:1], plan.Records); err == nil {
		t.Error("a usage record whose entry is not written: no error")
	}
	if _, err := ledger.ReplayOf(&plan.Entries[0], "usd", "no bar"); err == nil {
		t.Error("an answer without |: no error")
	}
}

func TestScopeParts(t *testing.T) {
	t.Parallel()
	s := ledger.ScopeOf("acct_1", ledger.ScopeUsage)
	if s.Account() != "acct_1" || s.Call() != ledger.ScopeUsage {
		t.Errorf("%s: account %q, call %q", s, s.Account(), s.Call())
	}
}
