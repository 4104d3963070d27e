package storetest

import (
	"database/sql"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/topup"
)

// grantSpec is one credit of a spending-order case: its category,
// priority and expiry (days after Epoch; 0 never).
type grantSpec struct {
	category ledger.Category
	priority int
	days     int
	amount   string
}

// fundingOf renders an entry's funding with each grant named by its index
// in grants ("g0:2.00", "overdraft:1.00"), so a case reads as it is
// written.
func fundingOf(lines []ledger.Funding, grants []string) string {
	var parts []string
	for _, l := range lines {
		name := "overdraft"
		for i, id := range grants {
			if id == l.GrantID && id != "" {
				name = fmt.Sprintf("g%d", i)
			}
		}
		parts = append(parts, name+":"+l.Amount.Format(usd))
	}
	return strings.Join(parts, " ")
}

// testSpendingOrder: usage takes money from the grants by lowest priority,
// then soonest expiry (never last), then age, and what they cannot cover
// from overdraft; each usage entry records that funding, and verify agrees.
func testSpendingOrder(t *testing.T, f *fixture) {
	cases := []struct {
		name   string
		grants []grantSpec
		debits []string
		want   []string // funding of each debit
	}{
		{"lower priority first", []grantSpec{{ledger.Paid, 50, 0, "5.00"}, {ledger.Promotional, 10, 0, "5.00"}},
			[]string{"7.00"}, []string{"g1:5.00 g0:2.00"}},
		{"operator's priority beats category", []grantSpec{{ledger.Promotional, 60, 0, "5.00"}, {ledger.Paid, 20, 0, "5.00"}},
			[]string{"1.00"}, []string{"g1:1.00"}},
		{"soonest expiry first, never last", []grantSpec{{ledger.Paid, 50, 0, "3.00"}, {ledger.Paid, 50, 30, "3.00"}, {ledger.Paid, 50, 7, "3.00"}},
			[]string{"4.00", "4.00"}, []string{"g2:3.00 g1:1.00", "g1:2.00 g0:2.00"}},
		{"oldest first", []grantSpec{{ledger.Paid, 50, 0, "2.00"}, {ledger.Paid, 50, 0, "2.00"}},
			[]string{"3.00"}, []string{"g0:2.00 g1:1.00"}},
		{"overdraft when grants run out", []grantSpec{{ledger.Promotional, 10, 0, "1.00"}},
			[]string{"2.50", "1.00"}, []string{"g0:1.00 overdraft:1.50", "overdraft:1.00"}},
		{"no grant at all", nil, []string{"1.00"}, []string{"overdraft:1.00"}},
	}
	for i, tc := range cases {
		a := f.account(fmt.Sprintf("order%d@example.com", i))
		var grants []string
		for j, g := range tc.grants {
			p := credit(a.ID, amt(t, g.amount), fmt.Sprintf("c%d", j))
			p.Terms = ledger.GrantTerms{Category: g.category, Priority: g.priority}
			if g.days > 0 {
				p.Terms.ExpiresAt = Epoch.Truncate(time.Microsecond).AddDate(0, 0, g.days)
			}
			grants = append(grants, f.postOK(p).GrantID)
		}
		for j, d := range tc.debits {
			r := f.postOK(usage(a.ID, amt(t, d), fmt.Sprintf("u%d", j)))
			if got := fundingOf(f.entry(a.ID, r.EntryID).Funding, grants); got != tc.want[j] {
				t.Errorf("%s: debit %d funded by %q, want %q", tc.name, j, got, tc.want[j])
			}
		}
	}
	f.verifyClean()
}

// entry returns one of an account's entries as the store lists it.
func (f *fixture) entry(acct, id string) ledger.Entry {
	f.t.Helper()
	es, _, err := f.s.Entries(ctx(f.t), acct, ledger.Page{Limit: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range es {
		if e.ID == id {
			return e
		}
	}
	f.t.Fatalf("no entry %s on %s", id, acct)
	return ledger.Entry{}
}

// grant returns one of an account's grants as the store lists it.
func (f *fixture) grant(acct, id string) ledger.Grant {
	f.t.Helper()
	gs, _, err := f.s.Grants(ctx(f.t), acct, "", ledger.Page{Limit: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, g := range gs {
		if g.ID == id {
			return g
		}
	}
	f.t.Fatalf("no grant %s on %s", id, acct)
	return ledger.Grant{}
}

// testOverdraftPayback: a grant made while the account is in overdraft
// first pays it: its remaining starts at its amount less the overdraft, at
// least zero, and a grant left with nothing is used at once.
func testOverdraftPayback(t *testing.T, f *fixture) {
	a := f.account("payback@example.com")
	f.postOK(usage(a.ID, amt(t, "3.00"), "u1"))
	small := f.postOK(credit(a.ID, amt(t, "2.00"), "c1"))
	if g := f.grant(a.ID, small.GrantID); g.Remaining != 0 || g.Status != ledger.GrantUsed || g.PaidBack != amt(t, "2.00") {
		t.Errorf("a 2.00 grant into a 3.00 overdraft: %+v, want used, nothing left, 2.00 paid back", g)
	}
	big := f.postOK(credit(a.ID, amt(t, "5.00"), "c2"))
	if g := f.grant(a.ID, big.GrantID); g.Remaining != amt(t, "4.00") || g.Status != ledger.GrantActive || g.PaidBack != amt(t, "1.00") {
		t.Errorf("a 5.00 grant into a 1.00 overdraft: %+v, want 4.00 left", g)
	}
	if b := f.balance(a.ID); b != amt(t, "4.00") {
		t.Errorf("balance %s, want 4.00", b.Format(usd))
	}
	r := f.postOK(usage(a.ID, amt(t, "1.00"), "u2"))
	if got := fundingOf(f.entry(a.ID, r.EntryID).Funding, []string{big.GrantID}); got != "g0:1.00" {
		t.Errorf("usage after the payback funded by %q, want the new grant", got)
	}
	f.verifyClean()
}

// testExpiredGrantMetByDebit: usage never draws on a grant whose expires_at
// has passed; the transaction that would writes that grant's expiration
// entry first, once.
func testExpiredGrantMetByDebit(t *testing.T, f *fixture) {
	a := f.account("expiry@example.com")
	p := credit(a.ID, amt(t, "5.00"), "c1")
	// Expiring at the store's now: the next debit finds it expired.
	p.Terms = ledger.GrantTerms{Category: ledger.Promotional, Priority: 10, ExpiresAt: Epoch.Truncate(time.Microsecond)}
	old := f.postOK(p).GrantID
	keep := f.postOK(credit(a.ID, amt(t, "2.00"), "c2")).GrantID
	r := f.post(usage(a.ID, amt(t, "1.00"), "u1"), usage(a.ID, amt(t, "1.00"), "u2"))
	es, _, err := f.s.Entries(ctx(t), a.ID, ledger.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i := len(es) - 1; i >= 0; i-- {
		kinds = append(kinds, string(es[i].Kind))
	}
	if got := strings.Join(kinds, " "); got != "credit credit expiration usage usage" {
		t.Fatalf("entries %q, want the expiration written once, before the first usage", got)
	}
	x := es[2]
	if x.GrantID != old || x.Amount != -amt(t, "5.00") || fundingOf(x.Funding, []string{old}) != "g0:5.00" {
		t.Errorf("expiration entry %+v, want -5.00 of the expired grant", x)
	}
	for _, res := range r {
		if got := fundingOf(f.entry(a.ID, res.EntryID).Funding, []string{old, keep}); got != "g1:1.00" {
			t.Errorf("usage funded by %q, want only the grant still valid", got)
		}
	}
	if g := f.grant(a.ID, old); g.Status != ledger.GrantExpired || g.Remaining != 0 {
		t.Errorf("expired grant %+v", g)
	}
	if types, data := f.events(a.ID); fmt.Sprint(types) != "[credit.expired]" || data["credit.expired"]["id"] != old || data["credit.expired"]["amount_expired"] != "5.00" {
		t.Errorf("events %v %v; want the customer told once of what expired", types, data)
	}
	if b := f.balance(a.ID); b != 0 {
		t.Errorf("balance %s, want 0.00", b.Format(usd))
	}
	f.verifyClean()
}

// testTopUpMakesPaidGrant: a succeeded top-up's credit is a paid grant of
// source top_up, and pays any overdraft first; with
// TOPUP_PAID_CREDIT_EXPIRY it expires that long after the credit.
func testTopUpMakesPaidGrant(t *testing.T, f *fixture) {
	a := f.account("paidgrant@example.com")
	f.postOK(usage(a.ID, amt(t, "1.00"), "u1"))
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.settled(a.ID, "25.00", "k1")
	g := f.newestActiveGrant(a.ID)
	if g.Category != ledger.Paid || g.Source != ledger.SourceTopUp || g.SourceID != tu.ID || g.Priority != 50 || !g.ExpiresAt.IsZero() ||
		g.Remaining != amt(t, "24.00") || g.PaidBack != amt(t, "1.00") {
		t.Errorf("the top-up's grant %+v", g)
	}
	f.s.SetPaidCreditExpiry(24 * time.Hour)
	tu = f.settled(a.ID, "10.00", "k2")
	want := Epoch.Truncate(time.Microsecond).Add(24 * time.Hour)
	if g := f.newestActiveGrant(a.ID); g.SourceID != tu.ID || !g.ExpiresAt.Equal(want) {
		t.Errorf("the second top-up's grant %+v; want it to expire at %s", g, want)
	}
	f.verifyClean()
}

// settled makes a manual top-up of amount and settles it as succeeded.
func (f *fixture) settled(acct, amount, key string) topup.TopUp {
	f.t.Helper()
	tu := f.manual(acct, amount, key)
	if _, ok, err := f.s.Begin(ctx(f.t), tu.ID); err != nil || !ok {
		f.t.Fatalf("begin: %v, %v", ok, err)
	}
	if _, err := f.s.Settle(ctx(f.t), tu.ID, topup.Outcome{Status: topup.Succeeded, ChargeID: "ch_" + key}, time.Minute); err != nil {
		f.t.Fatal(err)
	}
	return tu
}

// newestActiveGrant returns the account's newest active grant.
func (f *fixture) newestActiveGrant(acct string) ledger.Grant {
	f.t.Helper()
	gs, _, err := f.s.Grants(ctx(f.t), acct, ledger.GrantActive, ledger.Page{Limit: 1})
	if err != nil || len(gs) != 1 {
		f.t.Fatalf("active grants of %s: %+v, %v", acct, gs, err)
	}
	return gs[0]
}

// GrantsMigrationUpgrades builds a database at migration 0011 with
// accounts, credits, usage and a negative balance, as the code before
// grants wrote them, then opens it as the current code does: each positive
// balance is one paid migration grant that never expires, a negative one is
// overdraft, verify is clean, and debits and credits go on through grants.
func GrantsMigrationUpgrades(t *testing.T, old *sql.DB, files fs.FS, reopen func() *sqlstore.DB) {
	t.Helper()
	if err := sqlstore.Migrate(ctx(t), old, Before(files, 12)); err != nil {
		t.Fatalf("migrate to 0011: %v", err)
	}
	const day = int64(1_795_132_800_000_000) // 2026-11-20T00:00:00Z in microseconds
	for _, q := range []string{
		`INSERT INTO accounts (id, email, currency, balance, last_seq, turnover, api_key_hash, created_at, updated_at) VALUES ('acct_1', 'a@example.com', 'usd', 40000000, 2, 60000000, 'h1', 0, 7)`,
		`INSERT INTO accounts (id, email, currency, balance, last_seq, turnover, api_key_hash, created_at, updated_at) VALUES ('acct_2', 'b@example.com', 'usd', -7000000, 2, 17000000, 'h2', 0, 8)`,
		`INSERT INTO accounts (id, email, currency, balance, last_seq, turnover, api_key_hash, created_at, updated_at) VALUES ('acct_3', 'c@example.com', 'usd', 0, 0, 0, 'h3', 0, 0)`,
		fmt.Sprintf(`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_1', 1, 'ent_1', 'credit', 50000000, 50000000, %d)`, day),
		fmt.Sprintf(`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_1', 2, 'ent_2', 'usage', -10000000, 40000000, %d)`, day+1),
		fmt.Sprintf(`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_2', 1, 'ent_3', 'adjustment', 5000000, 5000000, %d)`, day),
		fmt.Sprintf(`INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at) VALUES ('acct_2', 2, 'ent_4', 'usage', -12000000, -7000000, %d)`, day+1),
		`INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, closing_balance, min_balance) VALUES ('acct_1', '2026-11-20', 10000000, 50000000, 0, 40000000, 40000000)`,
		`INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, closing_balance, min_balance) VALUES ('acct_2', '2026-11-20', 12000000, 5000000, 0, -7000000, -7000000)`,
	} {
		if _, err := old.ExecContext(ctx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s := reopen()
	f := &fixture{t: t, s: s}
	f.verifyClean()
	g := f.wantMigrated()
	r := f.postOK(usage("acct_1", amt(t, "5.00"), "after"))
	if got := fundingOf(f.entry("acct_1", r.EntryID).Funding, []string{g.ID}); got != "g0:5.00" {
		t.Errorf("usage after the upgrade funded by %q, want the migration grant", got)
	}
	c := f.postOK(credit("acct_2", money.Amount(10_000_000), "after"))
	if ng := f.grant("acct_2", c.GrantID); ng.Remaining != 3_000_000 || ng.PaidBack != 7_000_000 {
		t.Errorf("acct_2's first grant %+v, want 3.00 left after paying the 7.00 overdraft", ng)
	}
	f.verifyClean()
}

// wantMigrated checks what migration 0012 made of the accounts
// GrantsMigrationUpgrades wrote, and returns acct_1's grant.
func (f *fixture) wantMigrated() ledger.Grant {
	t, s := f.t, f.s
	t.Helper()
	gs, _, err := s.Grants(ctx(t), "acct_1", "", ledger.Page{Limit: 10})
	if err != nil || len(gs) != 1 {
		t.Fatalf("acct_1's grants after the upgrade: %+v, %v; want one", gs, err)
	}
	g := gs[0]
	if g.ID != "grt_00acct_1" || g.Category != ledger.Paid || g.Source != ledger.SourceMigration || g.Amount != 40_000_000 ||
		g.Remaining != 40_000_000 || g.Priority != 50 || !g.ExpiresAt.IsZero() || g.Status != ledger.GrantActive {
		t.Errorf("acct_1's migration grant %+v", g)
	}
	for _, id := range []string{"acct_2", "acct_3"} {
		if gs, _, _ := s.Grants(ctx(t), id, "", ledger.Page{Limit: 10}); len(gs) != 0 {
			t.Errorf("%s has grants %+v; want none", id, gs)
		}
	}
	var overdraft int64
	if err := s.DB().QueryRowContext(ctx(t), `SELECT overdraft FROM accounts WHERE id = 'acct_2'`).Scan(&overdraft); err != nil || overdraft != 7_000_000 {
		t.Errorf("acct_2's overdraft %d, %v; want 7.00", overdraft, err)
	}
	return g
}
