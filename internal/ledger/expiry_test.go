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

// walletAccount is account "a" with these grants (remaining as given) and
// a balance that agrees with them.
func walletAccount(status ledger.Status, grants ...*ledger.Grant) *ledger.AccountState {
	usd, _ := money.LookupCurrency("usd")
	w := ledger.NewWallet(grants, 0)
	return &ledger.AccountState{Account: ledger.Account{ID: "a", Currency: usd, Balance: w.Balance(), Status: status}, Wallet: w}
}

func counter() func(string) string {
	n := 0
	return func(p string) string { n++; return p + "_" + strconv.Itoa(n) }
}

// TestSweep: a sweep expires every grant whose expires_at has come, with
// one expiration entry each for those with something left and none for a
// grant already spent to zero (it becomes used); it answers the balance
// after them with no entry or idempotency row of its own, and a second
// sweep finds nothing more. A closed account's grants expire too.
func TestSweep(t *testing.T) {
	t.Parallel()
	for _, status := range []ledger.Status{ledger.Active, ledger.Closed} {
		due := g("due", ledger.Promotional, 5, 10, -1, 5)
		empty := g("empty", ledger.Promotional, 2, 10, -1, 5)
		empty.Remaining = 0
		edge := g("edge", ledger.Paid, 3, 50, 0, 5)
		edge.ExpiresAt = t0 // expires at exactly now
		live := g("live", ledger.Paid, 4, 50, 24, 5)
		a := walletAccount(status, due, empty, edge, live)
		plan := ledger.Apply(t0, counter(), map[string]*ledger.AccountState{"a": a}, nil,
			[]ledger.Posting{ledger.Sweep("a"), ledger.Sweep("a"), ledger.Sweep("nobody")})
		if got := kindsOf(plan.Entries); got != "expiration expiration" {
			t.Fatalf("%s: entries %q, want two expirations", status, got)
		}
		if len(plan.Expired) != 2 || plan.Expired[0].Grant.ID != plan.Entries[0].GrantID || plan.Expired[1].Grant.ID != plan.Entries[1].GrantID {
			t.Errorf("%s: expired %+v, want the entries' grants in order", status, plan.Expired)
		}
		if len(plan.Records) != 0 || plan.Results[0].EntryID != "" || plan.Results[0].Err != nil || plan.Results[0].Balance != units(4) {
			t.Errorf("%s: sweep answered %+v with %d records; want balance 4.00, no entry, no record", status, plan.Results[0], len(plan.Records))
		}
		if r := plan.Results[1]; r.Err != nil || r.Balance != units(4) {
			t.Errorf("%s: second sweep %+v", status, r)
		}
		if apperr.CodeOf(plan.Results[2].Err) != apperr.NotFound {
			t.Errorf("%s: sweep of an unknown account: %v", status, plan.Results[2].Err)
		}
		if empty.Status != ledger.GrantUsed || due.Status != ledger.GrantExpired || edge.Status != ledger.GrantExpired || live.Status != ledger.GrantActive {
			t.Errorf("%s: statuses empty %s due %s edge %s live %s", status, empty.Status, due.Status, edge.Status, live.Status)
		}
		if a.Balance != units(4) || a.Wallet.Balance() != units(4) || !a.Touched {
			t.Errorf("%s: balance %s wallet %s", status, a.Balance, a.Wallet.Balance())
		}
	}
}

// TestVoidPosting: a void takes what remains of an active grant as one
// void entry funded by it and names the grant in its result; the same key
// replays; a new key for a grant no longer active answers 409, for one the
// account does not have 404; a grant whose expiry has come is expired
// first (its entry stays) and so cannot be voided; a closed account may
// void.
func TestVoidPosting(t *testing.T) {
	t.Parallel()
	a := g("a", ledger.Promotional, 5, 10, 0, 5)
	old := g("old", ledger.Paid, 3, 50, -1, 5)
	b := g("b", ledger.Paid, 4, 50, 0, 5)
	acct := walletAccount(ledger.Closed, a, old, b)
	used := g("used", ledger.Paid, 1, 50, 0, 9)
	used.Remaining, used.Status = 0, ledger.GrantUsed
	acct.Wallet.Remember(used)
	postings := []ledger.Posting{
		ledger.VoidPosting("a", "a", "k1"),
		ledger.VoidPosting("a", "a", "k1"),
		ledger.VoidPosting("a", "a", "k2"),
		ledger.VoidPosting("a", "used", "k3"),
		ledger.VoidPosting("a", "nope", "k4"),
		ledger.VoidPosting("a", "old", "k5"),
		ledger.VoidPosting("a", "b", "k1"),
	}
	plan := ledger.Apply(t0, counter(), map[string]*ledger.AccountState{"a": acct}, nil, postings)
	r := plan.Results
	if r[0].Err != nil || r[0].GrantID != "a" || r[0].Balance != units(4) || r[0].EntryID == "" {
		t.Fatalf("void: %+v", r[0])
	}
	if !r[1].Replayed || r[1].EntryID != r[0].EntryID {
		t.Errorf("same key: %+v, want the replay", r[1])
	}
	for i, code := range map[int]apperr.Code{2: apperr.Conflict, 3: apperr.Conflict, 4: apperr.NotFound, 5: apperr.Conflict, 6: apperr.IdempotencyConflict} {
		if apperr.CodeOf(r[i].Err) != code {
			t.Errorf("posting %d (%s, %s): %v, want %s", i, postings[i].GrantID, postings[i].IdempotencyKey, r[i].Err, code)
		}
	}
	if got := kindsOf(plan.Entries); got != "expiration void" {
		t.Fatalf("entries %q; want the expiration of \"old\", met by the first void, before it", got)
	}
	v := plan.Entries[1]
	if v.Amount != -units(5) || v.GrantID != "a" || ledger.EncodeFunding(v.Funding) != "a:g:5000000" || v.IdempotencyKey != "k1" {
		t.Errorf("void entry %+v", v)
	}
	if a.Status != ledger.GrantVoided || a.Remaining != 0 || old.Status != ledger.GrantExpired || acct.Balance != units(4) {
		t.Errorf("after: a %s %s, old %s, balance %s", a.Status, a.Remaining, old.Status, acct.Balance)
	}
}

// TestVoidHash: a void's grant is part of its meaning; other postings hash
// as they did before voids existed.
func TestVoidHash(t *testing.T) {
	t.Parallel()
	x, y := ledger.VoidPosting("a", "g1", "k"), ledger.VoidPosting("a", "g2", "k")
	if x.Hash() == y.Hash() {
		t.Error("voids of two grants hash alike")
	}
	if z := ledger.VoidPosting("a", "g1", "k"); z.Hash() != x.Hash() {
		t.Error("the same void hashes differently")
	}
}

// TestEachEntry: every entry is visited in order, the expirations with no
// result or record, the others with their own.
func TestEachEntry(t *testing.T) {
	t.Parallel()
	acct := walletAccount(ledger.Active, g("old", ledger.Promotional, 5, 10, -1, 5), g("b", ledger.Paid, 4, 50, 0, 5))
	postings := []ledger.Posting{
		{AccountID: "a", Kind: ledger.KindUsage, Amount: -1, IdempotencyKey: "u", Call: ledger.ScopeUsage},
		ledger.Sweep("a"),
		{AccountID: "a", Kind: ledger.KindUsage, Amount: -1, IdempotencyKey: "v", Call: ledger.ScopeUsage},
	}
	plan := ledger.Apply(t0, counter(), map[string]*ledger.AccountState{"a": acct}, nil, postings)
	var got []string
	plan.EachEntry(func(e *ledger.Entry, res *ledger.Result, rec *ledger.IdemRecord) {
		s := string(e.Kind)
		if res != nil {
			if res.EntryID != e.ID || rec.Result.EntryID != e.ID {
				t.Errorf("entry %s given result %s, record %s", e.ID, res.EntryID, rec.Result.EntryID)
			}
			s += "+" + rec.Key
		}
		got = append(got, s)
	})
	if got, want := strings.Join(got, " "), "expiration usage+u usage+v"; got != want {
		t.Errorf("visited %q, want %q", got, want)
	}
}

// TestWarnDue: credit.expiring is due within seven days of expires_at,
// not before, not once it has expired, never for a grant that never
// expires or has nothing left.
func TestWarnDue(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) *ledger.Grant {
		gr := g("x", ledger.Paid, 1, 50, 0, 1)
		gr.ExpiresAt = t0.Add(d)
		return gr
	}
	empty := at(time.Hour)
	empty.Remaining = 0
	for name, tc := range map[string]struct {
		g    *ledger.Grant
		want bool
	}{
		"in seven days":          {at(ledger.ExpiringNotice), true},
		"in an hour":             {at(time.Hour), true},
		"in eight days":          {at(ledger.ExpiringNotice + time.Second), false},
		"expired":                {at(0), false},
		"never expires":          {g("n", ledger.Paid, 1, 50, 0, 1), false},
		"nothing left":           {empty, false},
		"voided, within the day": {func() *ledger.Grant { x := at(time.Hour); x.Status = ledger.GrantVoided; return x }(), false},
	} {
		if got := tc.g.WarnDue(t0); got != tc.want {
			t.Errorf("%s: WarnDue = %v, want %v", name, got, tc.want)
		}
	}
}

// TestExpiredEvent: credit.expired carries the grant, now expired, and
// what left the balance with it.
func TestExpiredEvent(t *testing.T) {
	t.Parallel()
	usd, _ := money.LookupCurrency("usd")
	gr := g("g1", ledger.Promotional, 5, 10, -1, 1)
	gr.AccountID, gr.Source, gr.SourceID = "a", ledger.SourceCredit, "ent_1"
	w := ledger.NewWallet([]*ledger.Grant{gr}, 0)
	x := w.Expire(t0)
	if len(x) != 1 {
		t.Fatalf("expired %+v", x)
	}
	e := x[0].Event("evt_1", usd)
	d, ok := e.Data.(ledger.ExpiredView)
	if !ok || e.Type != ledger.EventCreditExpired || e.AccountID != "a" || d.ID != "g1" || d.Status != "expired" ||
		d.Remaining != "0.00" || d.AmountExpired != "5.00" || d.Amount != "5.00" || d.ExpiresAt == nil {
		t.Errorf("event %+v", e)
	}
}
