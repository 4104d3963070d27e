package ledger_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

func TestApply(t *testing.T) {
	t.Parallel()
	usd, _ := money.LookupCurrency("usd")
	n := 0
	newID := func(p string) string { n++; return p + "_" + strconv.Itoa(n) }
	accounts := map[string]*ledger.AccountState{
		"a":      {Account: ledger.Account{ID: "a", Currency: usd, Balance: 1_000_000, Status: ledger.Active}, LastSeq: 3},
		"closed": {Account: ledger.Account{ID: "closed", Currency: usd, Status: ledger.Closed}},
	}
	usage := func(acct, key string, amount money.Amount) ledger.Posting {
		return ledger.Posting{AccountID: acct, Kind: ledger.KindUsage, Amount: -amount, IdempotencyKey: key, Call: ledger.ScopeUsage}
	}
	earlier := ledger.Posting{AccountID: "a", Kind: ledger.KindUsage, Amount: -5, IdempotencyKey: "old", Call: ledger.ScopeUsage}
	stored := map[ledger.IdemKey]ledger.Stored{
		{Scope: earlier.Scope(), Key: "old"}: {Hash: earlier.Hash(), Result: ledger.Result{EntryID: "ent_old", Balance: 42}},
	}
	postings := []ledger.Posting{
		usage("a", "k1", 400_000),               // 0: 1.00 -> 0.60
		usage("a", "k1", 400_000),               // 1: repeated in the group: replay of 0
		usage("a", "k1", 1),                     // 2: same key, other meaning: conflict
		usage("a", "old", 5),                    // 3: stored before: replay
		usage("nobody", "k2", 1),                // 4: unknown account
		usage("closed", "k3", 1),                // 5: closed account
		usage("a", "k4", 700_000),               // 6: may go below zero: 0.60 -> -0.10
		usage("a", "k5", money.Amount(1<<63-1)), // 7: overflow refused
	}
	plan := ledger.Apply(time.Unix(0, 0), newID, accounts, stored, postings)
	r := plan.Results
	if r[0].Err != nil || r[0].Balance != 600_000 || !r[0].Spendable || r[0].Replayed {
		t.Errorf("first debit: %+v", r[0])
	}
	if !r[1].Replayed || r[1].EntryID != r[0].EntryID || r[1].Balance != 600_000 {
		t.Errorf("key repeated in the group: %+v, want a replay of %+v", r[1], r[0])
	}
	if apperr.CodeOf(r[2].Err) != apperr.IdempotencyConflict {
		t.Errorf("same key, other amount: %+v, want idempotency_conflict", r[2])
	}
	if !r[3].Replayed || r[3].EntryID != "ent_old" || r[3].Balance != 42 {
		t.Errorf("stored key: %+v, want the first result", r[3])
	}
	if apperr.CodeOf(r[4].Err) != apperr.NotFound || apperr.CodeOf(r[5].Err) != apperr.AccountClosed {
		t.Errorf("unknown and closed accounts: %v, %v", r[4].Err, r[5].Err)
	}
	if r[6].Err != nil || r[6].Balance != -100_000 || r[6].Spendable {
		t.Errorf("debit below zero: %+v, want balance -0.10 and not spendable", r[6])
	}
	if apperr.CodeOf(r[7].Err) != apperr.Invalid {
		t.Errorf("overflowing debit: %+v, want invalid", r[7])
	}
	if len(plan.Entries) != 2 || plan.Entries[0].Seq != 4 || plan.Entries[1].Seq != 5 || plan.Entries[1].BalanceAfter != -100_000 {
		t.Errorf("entries: %+v; want two, numbered 4 and 5", plan.Entries)
	}
	if len(plan.Records) != 2 {
		t.Errorf("%d idempotency records, want 2 (k1, k4)", len(plan.Records))
	}
	if a := accounts["a"]; a.Balance != -100_000 || a.LastSeq != 5 || !a.Touched || accounts["closed"].Touched {
		t.Errorf("account state after the group: %+v", a)
	}
}
