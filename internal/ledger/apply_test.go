package ledger_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// fixtureIDs returns the dollar and an id maker that numbers ids in turn
// (ent_1, ent_2, …).
func fixtureIDs() (money.Currency, func(string) string) {
	usd, _ := money.LookupCurrency("usd")
	n := 0
	return usd, func(p string) string { n++; return p + "_" + strconv.Itoa(n) }
}

func TestApply(t *testing.T) {
	t.Parallel()
	usd, newID := fixtureIDs()
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

// TestApplyWithWallet: with a wallet, a debit first expires what has
// expired (an expiration entry that answers no posting, skipped by
// EachFresh), then records its funding; a credit makes a grant that pays
// the overdraft first, and its result names the grant.
func TestApplyWithWallet(t *testing.T) {
	t.Parallel()
	usd, _ := money.LookupCurrency("usd")
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	newID := func(p string) string { n++; return p + "_" + strconv.Itoa(n) }
	old := &ledger.Grant{ID: "g_old", Category: ledger.Promotional, Priority: 10, Remaining: 300, Status: ledger.GrantActive, ExpiresAt: now}
	paid := &ledger.Grant{ID: "g_paid", Category: ledger.Paid, Priority: 50, Remaining: 500, Status: ledger.GrantActive}
	a := &ledger.AccountState{Account: ledger.Account{ID: "a", Currency: usd, Balance: 800, Status: ledger.Active},
		Wallet: ledger.NewWallet([]*ledger.Grant{old, paid}, 0)}
	postings := []ledger.Posting{
		{AccountID: "a", Kind: ledger.KindUsage, Amount: -600, IdempotencyKey: "u", Call: ledger.ScopeUsage},
		{AccountID: "a", Kind: ledger.KindCredit, Amount: 1000, IdempotencyKey: "c", Call: ledger.ScopeCredit},
	}
	plan := ledger.Apply(now, newID, map[string]*ledger.AccountState{"a": a}, nil, postings)
	if got := kindsOf(plan.Entries); got != "expiration usage credit" {
		t.Fatalf("entries %q, want expiration, usage, credit", got)
	}
	if x := plan.Entries[0]; x.Amount != -300 || x.GrantID != "g_old" || ledger.EncodeFunding(x.Funding) != "g_old:g:300" {
		t.Errorf("expiration %+v", x)
	}
	if u := plan.Entries[1]; ledger.EncodeFunding(u.Funding) != "g_paid:p:500;-:o:100" || u.BalanceAfter != -100 {
		t.Errorf("usage %+v, want the paid grant then 1.00 of overdraft", u)
	}
	wantCreditGrant(t, plan)
	var fresh []ledger.Entry
	plan.EachFresh(func(_ int, e *ledger.Entry, _ *ledger.Result, _ *ledger.IdemRecord) { fresh = append(fresh, *e) })
	if got := kindsOf(fresh); got != "usage credit" {
		t.Errorf("EachFresh visited %q, want the usage and the credit", got)
	}
	if a.Balance != 900 || a.OverdraftNow() != 0 || a.Wallet.Balance() != 900 {
		t.Errorf("account after the group: balance %d, overdraft %d, wallet %d", a.Balance, a.OverdraftNow(), a.Wallet.Balance())
	}
}

func kindsOf(entries []ledger.Entry) string {
	var out []string
	for _, e := range entries {
		out = append(out, string(e.Kind))
	}
	return strings.Join(out, " ")
}

// wantCreditGrant checks the grant TestApplyWithWallet's credit made: 10.00
// less the 1.00 of overdraft it paid, named by its entry and result.
func wantCreditGrant(t *testing.T, plan ledger.Plan) {
	t.Helper()
	if len(plan.Grants) != 1 {
		t.Fatalf("grants made: %+v, want one", plan.Grants)
	}
	g := plan.Grants[0]
	if plan.Results[1].GrantID != g.ID || plan.Entries[2].GrantID != g.ID || g.Remaining != 900 || g.PaidBack != 100 ||
		g.Source != ledger.SourceCredit || g.SourceID != plan.Entries[2].ID {
		t.Errorf("credit's grant %+v, result %+v", g, plan.Results[1])
	}
}
