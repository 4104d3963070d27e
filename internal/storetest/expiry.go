package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/expiry"
	"github.com/topup/topup/internal/ledger"
)

// advance moves the store's clock (a *clock.Manual, as Run requires).
func (f *fixture) advance(d time.Duration) {
	f.t.Helper()
	c, ok := f.s.Clock().(*clock.Manual)
	if !ok {
		f.t.Fatalf("the store's clock is a %T, not the manual clock Run requires", f.s.Clock())
	}
	c.Advance(d)
}

// grantOn credits amount to acct as a grant of category c and priority
// that expires in (0: never), and returns the grant's id.
func (f *fixture) grantOn(acct string, amount string, c ledger.Category, priority int, in time.Duration, key string) string {
	f.t.Helper()
	p := credit(acct, amt(f.t, amount), key)
	p.Terms = ledger.GrantTerms{Category: c, Priority: priority}
	if in != 0 {
		p.Terms.ExpiresAt = f.s.Clock().Now().UTC().Truncate(time.Microsecond).Add(in)
	}
	return f.postOK(p).GrantID
}

// worker is an expiry worker over the store, posting directly.
func (f *fixture) worker(cfg expiry.Config) *expiry.Worker {
	cfg.Clock = f.s.Clock()
	return expiry.New(f.s.Ledger, f.s.Ledger.Post, cfg)
}

// pass runs one pass of w and fails the test on an error.
func (f *fixture) pass(w *expiry.Worker) expiry.Pass {
	f.t.Helper()
	p, err := w.RunOnce(ctx(f.t))
	if err != nil {
		f.t.Fatalf("expiry pass: %v", err)
	}
	return p
}

// events returns the types of an account's notifications, oldest first,
// with their data by type (the newest of each).
func (f *fixture) events(acct string) ([]string, map[string]map[string]any) {
	f.t.Helper()
	ns, err := f.s.Notifications(ctx(f.t), acct, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	var types []string
	data := map[string]map[string]any{}
	for i := len(ns) - 1; i >= 0; i-- {
		types = append(types, ns[i].Type)
		var d map[string]any
		if err := json.Unmarshal(ns[i].Data, &d); err != nil {
			f.t.Fatalf("event data %s: %v", ns[i].Data, err)
		}
		data[ns[i].Type] = d
	}
	return types, data
}

// kindCount counts an account's entries of kind.
func (f *fixture) kindCount(acct string, kind ledger.Kind) int {
	f.t.Helper()
	var n int
	if err := f.s.DB().QueryRowContext(ctx(f.t), `SELECT COUNT(*) FROM entries WHERE account_id = $1 AND kind = $2`, acct, string(kind)).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// testExpiryWorker: credit.expiring is written once per grant, seven days
// ahead or at once; when the expiry comes the worker writes one expiration
// entry for what remained and tells credit.expired once; a grant spent to
// zero before it expires writes nothing; later passes find nothing more.
func testExpiryWorker(t *testing.T, f *fixture) {
	a := f.account("expiry-worker@example.com")
	soon := f.grantOn(a.ID, "5.00", ledger.Promotional, 10, time.Hour, "c1")
	spent := f.grantOn(a.ID, "2.00", ledger.Promotional, 0, time.Hour, "c2")
	later := f.grantOn(a.ID, "4.00", ledger.Paid, 50, 30*24*time.Hour, "c3")
	f.grantOn(a.ID, "3.00", ledger.Paid, 60, 0, "c4")
	f.postOK(usage(a.ID, amt(t, "2.00"), "u1")) // spends "spent" to zero
	w := f.worker(expiry.Config{})
	if p := f.pass(w); !p.Leased || p.Warned != 1 || p.Swept != 0 {
		t.Fatalf("first pass %+v; want one warning (the grant that expires within the hour), nothing swept", p)
	}
	if p := f.pass(w); p.Warned != 0 {
		t.Errorf("second pass warned again: %+v", p)
	}
	types, data := f.events(a.ID)
	if fmt.Sprint(types) != "[credit.expiring]" || data["credit.expiring"]["id"] != soon || data["credit.expiring"]["remaining"] != "5.00" ||
		data["credit.expiring"]["expires_at"] == nil {
		t.Fatalf("events %v %v; want one credit.expiring of %s with what will expire and when", types, data, soon)
	}
	f.advance(23 * 24 * time.Hour) // "later" is now seven days from expiring
	f.pass(w)
	f.advance(7*24*time.Hour + time.Second) // everything but the paid grant has expired
	p := f.pass(w)
	if p.Swept != 1 {
		t.Errorf("pass after the expiry %+v; want the account swept", p)
	}
	if f.kindCount(a.ID, ledger.KindExpiration) != 2 {
		t.Fatalf("%d expiration entries; want one each for the two grants that had something left", f.kindCount(a.ID, ledger.KindExpiration))
	}
	if g := f.grant(a.ID, spent); g.Status != ledger.GrantUsed {
		t.Errorf("the grant spent to zero is %s; want used, without an entry", g.Status)
	}
	for _, id := range []string{soon, later} {
		if g := f.grant(a.ID, id); g.Status != ledger.GrantExpired || g.Remaining != 0 {
			t.Errorf("grant %s after its expiry: %+v", id, g)
		}
	}
	if b := f.balance(a.ID); b != amt(t, "3.00") {
		t.Errorf("balance %s; want the never-expiring 3.00", b.Format(usd))
	}
	types, data = f.events(a.ID)
	if fmt.Sprint(types) != "[credit.expiring credit.expiring credit.expired credit.expired]" ||
		data["credit.expired"]["status"] != "expired" || data["credit.expired"]["amount_expired"] == nil {
		t.Errorf("events %v, last credit.expired %v", types, data["credit.expired"])
	}
	if p := f.pass(w); p.Swept != 0 || p.Warned != 0 {
		t.Errorf("a pass after everything expired did %+v", p)
	}
	days, err := f.s.DailyTotals(ctx(t), a.ID, Epoch.AddDate(0, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	var used, removed ledger.Day
	for _, d := range days {
		used.Usage += d.Usage
		removed.Removed += d.Removed
	}
	if used.Usage != amt(t, "2.00") || removed.Removed != amt(t, "9.00") {
		t.Errorf("daily totals: usage %s, removed %s; want only the usage counted as usage, the 9.00 that expired apart",
			used.Usage.Format(usd), removed.Removed.Format(usd))
	}
	f.verifyClean()
}

// testExpiryLease: while one worker's lease runs, another worker does
// nothing; once it is released (or runs out) the other takes over.
func testExpiryLease(t *testing.T, f *fixture) {
	a := f.account("lease@example.com")
	f.grantOn(a.ID, "1.00", ledger.Promotional, 10, time.Minute, "c1")
	one := f.worker(expiry.Config{Owner: "one", Interval: time.Minute})
	two := f.worker(expiry.Config{Owner: "two", Interval: time.Minute})
	if p := f.pass(one); !p.Leased {
		t.Fatalf("the first worker did not get the lease: %+v", p)
	}
	if p := f.pass(two); p.Leased || p.Warned != 0 {
		t.Fatalf("a second worker ran beside the first: %+v", p)
	}
	f.advance(2*time.Minute + time.Second)
	if p := f.pass(two); !p.Leased || p.Swept != 1 {
		t.Fatalf("the second worker after the first's lease ran out: %+v", p)
	}
	if err := f.s.ReleaseLease(ctx(t), expiry.LeaseName, "two"); err != nil {
		t.Fatal(err)
	}
	if p := f.pass(one); !p.Leased {
		t.Errorf("the first worker after the second released the lease: %+v", p)
	}
}

var errKilled = errors.New("killed")

// testExpiryAcrossCrashes: a worker killed between finding the due
// accounts and writing writes nothing; one killed after its sweeps
// committed but before it heard so leaves them committed once; sweeps
// racing each other (two replicas, a debit) expire each grant once; and
// the database itself refuses a second expiration entry for a grant.
func testExpiryAcrossCrashes(t *testing.T, f *fixture) {
	var accts, grants []string
	for i := range 3 {
		a := f.account(fmt.Sprintf("crash%d@example.com", i))
		accts = append(accts, a.ID)
		grants = append(grants, f.grantOn(a.ID, "5.00", ledger.Promotional, 10, time.Minute, "c1"))
		f.grantOn(a.ID, "1.00", ledger.Paid, 50, 0, "c2")
	}
	f.advance(time.Minute)
	before := entryCountAll(t, f.s)
	killed := f.worker(expiry.Config{Owner: "killed", AfterFind: func(ids []string) error {
		if len(ids) != 3 {
			t.Errorf("found %v, want the three accounts", ids)
		}
		return errKilled
	}})
	if _, err := killed.RunOnce(ctx(t)); !errors.Is(err, errKilled) {
		t.Fatalf("the killed pass: %v", err)
	}
	if n := entryCountAll(t, f.s); n != before {
		t.Fatalf("a worker killed before writing wrote %d entries", n-before)
	}
	// Killed right after the commit, before it heard of it: another
	// replica (after the lease) and the restarted worker find nothing.
	deaf := expiry.New(f.s.Ledger, func(c context.Context, ps []ledger.Posting) ([]ledger.Result, error) {
		if _, err := f.s.Post(c, ps); err != nil {
			return nil, err
		}
		return nil, errKilled
	}, expiry.Config{Owner: "killed", Clock: f.s.Clock()})
	if _, err := deaf.RunOnce(ctx(t)); !errors.Is(err, errKilled) {
		t.Fatalf("the deaf pass: %v", err)
	}
	f.advance(5 * time.Minute)
	if p := f.pass(f.worker(expiry.Config{Owner: "restarted"})); p.Swept != 0 {
		t.Errorf("after the crash a pass swept %d accounts again", p.Swept)
	}
	// Replicas and debits racing on grants that expire together.
	for i, a := range accts {
		grants = append(grants, f.grantOn(a, "2.00", ledger.Promotional, 10, time.Second, fmt.Sprint("race", i)))
	}
	f.advance(time.Second)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ps := []ledger.Posting{ledger.Sweep(accts[i%3]), ledger.Sweep(accts[(i+1)%3])}
			if i%4 == 0 {
				ps = append(ps, usage(accts[i%3], 1, fmt.Sprint("u", i)))
			}
			if _, err := f.s.Post(ctx(t), ps); err != nil {
				t.Errorf("racing sweep: %v", err)
			}
		})
	}
	wg.Wait()
	for i, a := range accts {
		if n := f.kindCount(a, ledger.KindExpiration); n != 2 {
			t.Errorf("account %d: %d expiration entries, want one per expired grant", i, n)
		}
		if types, _ := f.events(a); fmt.Sprint(types) != "[credit.expired credit.expired]" {
			t.Errorf("account %d: events %v; want each expired grant told once", i, types)
		}
	}
	f.secondExpirationRefused(accts[0], grants[0], grants[len(grants)-1])
	f.verifyClean()
}

// secondExpirationRefused proves the database's own guard: an expiration
// entry for a grant that has none yet goes in (rolled back), and a second
// one for expired, a grant that has its entry, is refused by the unique
// index.
func (f *fixture) secondExpirationRefused(acct, expired, other string) {
	f.t.Helper()
	insert := `INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, created_at, grant_id)
VALUES ($1, $2, $3, 'expiration', -1, 0, 0, $4)`
	tx, err := f.s.DB().BeginTx(ctx(f.t), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx(f.t), insert, acct, 1000, "ent_first_of_other", other+"_not_expired"); err != nil {
		f.t.Fatalf("an expiration entry of a grant without one was refused: %v", err)
	}
	_, err = tx.ExecContext(ctx(f.t), insert, acct, 1001, "ent_second_expiration", expired)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unique") {
		f.t.Fatalf("a second expiration entry for grant %s: %v; want the unique index to refuse it", expired, err)
	}
}

// testVoid: a void takes what remains of a grant out of the balance as one
// void entry and names the grant; the same key replays; a new key for a
// grant used up, expired or voided answers 409, for an unknown grant (or
// another account's) 404; a closed account may still void.
func testVoid(t *testing.T, f *fixture) {
	a := f.account("void@example.com")
	other := f.account("void-other@example.com")
	promo := f.grantOn(a.ID, "5.00", ledger.Promotional, 10, 0, "c1")
	paid := f.grantOn(a.ID, "3.00", ledger.Paid, 50, 0, "c2")
	short := f.grantOn(a.ID, "1.00", ledger.Paid, 60, time.Hour, "c3")
	theirs := f.grantOn(other.ID, "1.00", ledger.Paid, 50, 0, "c1")
	f.postOK(usage(a.ID, amt(t, "1.00"), "u1"))
	r := f.postOK(ledger.VoidPosting(a.ID, promo, "v1"))
	if r.GrantID != promo || r.Balance != amt(t, "4.00") || r.Replayed {
		t.Fatalf("void: %+v; want the grant named and 4.00 left", r)
	}
	e := f.entry(a.ID, r.EntryID)
	if e.Kind != ledger.KindVoid || e.Amount != -amt(t, "4.00") || e.GrantID != promo || fundingOf(e.Funding, []string{promo}) != "g0:4.00" {
		t.Errorf("void entry %+v", e)
	}
	if g := f.grant(a.ID, promo); g.Status != ledger.GrantVoided || g.Remaining != 0 {
		t.Errorf("voided grant %+v", g)
	}
	if again := f.postOK(ledger.VoidPosting(a.ID, promo, "v1")); !again.Replayed || again.EntryID != r.EntryID || again.Balance != r.Balance {
		t.Errorf("same key: %+v; want the first answer replayed", again)
	}
	f.postOK(usage(a.ID, amt(t, "3.00"), "u2")) // uses "paid" up
	f.advance(time.Hour)                        // "short" expires
	for _, tc := range []struct {
		acct, grant, key string
		code             apperr.Code
	}{
		{a.ID, promo, "v2", apperr.Conflict},
		{a.ID, paid, "v3", apperr.Conflict},
		{a.ID, short, "v4", apperr.Conflict},
		{a.ID, "grt_nope", "v5", apperr.NotFound},
		{a.ID, theirs, "v6", apperr.NotFound},
		{a.ID, paid, "v1", apperr.IdempotencyConflict},
	} {
		wantCode(t, f.post(ledger.VoidPosting(tc.acct, tc.grant, tc.key))[0].Err, tc.code, "")
	}
	if f.kindCount(a.ID, ledger.KindExpiration) != 1 || f.kindCount(a.ID, ledger.KindVoid) != 1 {
		t.Errorf("entries: %d expirations, %d voids; want the expired grant's one and the one void",
			f.kindCount(a.ID, ledger.KindExpiration), f.kindCount(a.ID, ledger.KindVoid))
	}
	closed := ledger.Closed
	if _, err := f.s.UpdateAccount(ctx(t), other.ID, ledger.AccountUpdate{Status: &closed}); err != nil {
		t.Fatal(err)
	}
	if r := f.postOK(ledger.VoidPosting(other.ID, theirs, "v1")); r.Balance != 0 {
		t.Errorf("void on a closed account: %+v", r)
	}
	f.verifyClean()
}

// testVerifyCatchesExpiry: verify names a grant still active with
// something left behind a later debit, and one expired without its entry.
func testVerifyCatchesExpiry(t *testing.T, f *fixture) {
	a := f.account("verify-expiry@example.com")
	g := f.grantOn(a.ID, "5.00", ledger.Promotional, 10, time.Minute, "c1")
	f.advance(time.Minute)
	f.postOK(usage(a.ID, amt(t, "1.00"), "u1"))
	f.verifyClean()
	// Undo the expiry behind the store's back: active again, with what it had.
	if _, err := f.s.DB().ExecContext(ctx(t), `UPDATE grants SET status = 'active', remaining = 5000000 WHERE id = $1`, g); err != nil {
		t.Fatal(err)
	}
	v, err := f.s.Verify(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range v {
		found = found || x.Problem == fmt.Sprintf("grant %s still has remaining after its expires_at, behind a later negative entry", g)
	}
	if !found {
		t.Errorf("verify %+v; want the grant still active after its expiry named", v)
	}
}

// killExpirations makes the database fail any transaction that writes an
// expiration entry, after it has already written the grants it changed
// (the store writes grants before entries): a process killed in the middle
// of writing. The returned function heals it.
func (f *fixture) killExpirations() func() {
	f.t.Helper()
	stmts := []string{`CREATE TRIGGER kill_expirations BEFORE INSERT ON entries WHEN NEW.kind = 'expiration'
BEGIN SELECT RAISE(ABORT, 'killed while writing'); END`}
	heal := []string{`DROP TRIGGER kill_expirations`}
	if f.s.DialectName() != "sqlite" {
		stmts = []string{`CREATE FUNCTION kill_expirations() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'killed while writing'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER kill_expirations BEFORE INSERT ON entries FOR EACH ROW WHEN (NEW.kind = 'expiration') EXECUTE FUNCTION kill_expirations()`}
		heal = []string{`DROP TRIGGER kill_expirations ON entries`, `DROP FUNCTION kill_expirations()`}
	}
	for _, q := range stmts {
		if _, err := f.s.DB().ExecContext(ctx(f.t), q); err != nil {
			f.t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		for _, q := range heal {
			if _, err := f.s.DB().ExecContext(ctx(f.t), q); err != nil {
				f.t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

// testExpiryKilledWhileWriting: a sweep whose transaction dies while it
// writes leaves nothing behind (grants still active, no entry, no event,
// the balance as it was), and the next pass expires each grant once.
func testExpiryKilledWhileWriting(t *testing.T, f *fixture) {
	a := f.account("killed-writing@example.com")
	g := f.grantOn(a.ID, "5.00", ledger.Promotional, 10, time.Minute, "c1")
	f.grantOn(a.ID, "1.00", ledger.Paid, 50, 0, "c2")
	f.advance(time.Minute)
	heal := f.killExpirations()
	w := f.worker(expiry.Config{Owner: "one"})
	if _, err := w.RunOnce(ctx(t)); err == nil || !strings.Contains(err.Error(), "killed while writing") {
		t.Fatalf("a pass whose write died: %v", err)
	}
	if gr := f.grant(a.ID, g); gr.Status != ledger.GrantActive || gr.Remaining != amt(t, "5.00") || f.balance(a.ID) != amt(t, "6.00") ||
		f.kindCount(a.ID, ledger.KindExpiration) != 0 {
		t.Fatalf("after the failed write: grant %+v, balance %s", gr, f.balance(a.ID).Format(usd))
	}
	if types, _ := f.events(a.ID); len(types) != 0 {
		t.Errorf("events %v after a write that died", types)
	}
	heal()
	for range 2 {
		f.pass(w)
	}
	if f.kindCount(a.ID, ledger.KindExpiration) != 1 || f.balance(a.ID) != amt(t, "1.00") {
		t.Errorf("after the restart: %d expirations, balance %s; want one, 1.00", f.kindCount(a.ID, ledger.KindExpiration), f.balance(a.ID).Format(usd))
	}
	if types, _ := f.events(a.ID); fmt.Sprint(types) != "[credit.expired]" {
		t.Errorf("events %v; want credit.expired once", types)
	}
	f.verifyClean()
}
