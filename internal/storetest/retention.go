package storetest

import (
	"database/sql"
	"io/fs"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/retention"
	"github.com/topup/topup/internal/sqlstore"
)

// retainer is a retention worker over the store, on its clock.
func (f *fixture) retainer(cfg retention.Config) *retention.Worker {
	f.t.Helper()
	cfg.Clock = f.s.Clock()
	w, err := retention.New(f.s.Ledger, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// prune runs one pass of w and fails the test on an error.
func (f *fixture) prune(w *retention.Worker) retention.Pass {
	f.t.Helper()
	p, err := w.RunOnce(ctx(f.t))
	if err != nil {
		f.t.Fatalf("retention pass: %v", err)
	}
	return p
}

// idemKeys lists the keys the idempotency table holds in an account's
// scope of call, sorted.
func idemKeys(t testing.TB, db *sql.DB, acct, call string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx(t), `SELECT key FROM idempotency WHERE scope = $1 ORDER BY key`, string(ledger.ScopeOf(acct, call)))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// testUsageKeyRetention: usage keys older than the retention are deleted,
// a chunk at a time; a key exactly as old as the retention, and a newer
// one, still replay their first answer; credit and capture keys are kept
// however old. A pruned usage key debits again (the contract), while the
// first entry keeps its key; the ledger stays clean. One replica prunes at
// a time.
func testUsageKeyRetention(t *testing.T, f *fixture) {
	const day = 24 * time.Hour
	a := f.account("retention@example.com")
	firstCredit := f.postOK(credit(a.ID, amt(t, "100"), "c-old"))
	h := f.mustHold(holdReq(t, a.ID, "4", "h-old"))
	firstCapture := f.postOK(capturePosting(a.ID, h.ID, amt(t, "1"), "cap-old"))
	old := []string{"u-old-1", "u-old-2", "u-old-3", "u-old-4", "u-old-5"}
	var firstOld ledger.Result
	for i, k := range old {
		r := f.postOK(usage(a.ID, amt(t, "1"), k))
		if i == 0 {
			firstOld = r
		}
	}
	f.advance(day / 2)
	young := f.postOK(usage(a.ID, amt(t, "1"), "u-new"))

	one := f.retainer(retention.Config{Retention: day, Batch: 2, Owner: "one"})
	two := f.retainer(retention.Config{Retention: day, Batch: 2, Owner: "two"})
	// Exactly the retention old: still remembered.
	f.advance(day / 2)
	if p := f.prune(one); !p.Leased || p.Pruned != 0 {
		t.Fatalf("a pass when the oldest keys are exactly the retention old: %+v, want nothing pruned", p)
	}
	f.advance(time.Microsecond)
	if p := f.prune(two); p.Leased || p.Pruned != 0 {
		t.Fatalf("a second replica pruned beside the first: %+v", p)
	}
	if p := f.prune(one); !p.Leased || p.Pruned != len(old) || p.Chunks != 3 {
		t.Fatalf("a pass a microsecond later: %+v, want the 5 old usage keys pruned in 3 chunks of at most 2", p)
	}
	db := f.s.DB()
	if got := idemKeys(t, db, a.ID, ledger.ScopeUsage); !slices.Equal(got, []string{"u-new"}) {
		t.Errorf("usage keys left %v, want only u-new", got)
	}
	if got, got2 := idemKeys(t, db, a.ID, ledger.ScopeCredit), idemKeys(t, db, a.ID, ledger.ScopeCapture); !slices.Equal(got, []string{"c-old"}) ||
		!slices.Equal(got2, []string{"cap-old"}) {
		t.Errorf("credit keys %v and capture keys %v left, want c-old and cap-old (kept for ever)", got, got2)
	}

	// Within the retention, and for other kinds of call, a replay.
	balance := f.balance(a.ID)
	for _, c := range []struct {
		p     ledger.Posting
		first ledger.Result
	}{
		{usage(a.ID, amt(t, "1"), "u-new"), young},
		{credit(a.ID, amt(t, "100"), "c-old"), firstCredit},
		{capturePosting(a.ID, h.ID, amt(t, "1"), "cap-old"), firstCapture},
	} {
		r := f.postOK(c.p)
		if !r.Replayed || r.EntryID != c.first.EntryID || r.Balance != c.first.Balance {
			t.Errorf("%s %s again: %+v, want the replay of %+v", c.p.Call, c.p.IdempotencyKey, r, c.first)
		}
	}
	if got := f.balance(a.ID); got != balance {
		t.Fatalf("replays moved the balance: %s, want %s", got.Format(usd), balance.Format(usd))
	}

	// A pruned usage key debits again; the first entry keeps its key.
	again := f.postOK(usage(a.ID, amt(t, "1"), "u-old-1"))
	if again.Replayed || again.EntryID == firstOld.EntryID || again.Balance != balance-amt(t, "1") {
		t.Fatalf("u-old-1 after its key was pruned: %+v, want a new debit of 1.00 from %s", again, balance.Format(usd))
	}
	var n int
	if err := db.QueryRowContext(ctx(t), `SELECT COUNT(*) FROM entries WHERE account_id = $1 AND idempotency_key = 'u-old-1'`, a.ID).Scan(&n); err != nil || n != 2 {
		t.Errorf("entries keyed u-old-1: %d, %v; want the first and the new one", n, err)
	}
	if r := f.postOK(usage(a.ID, amt(t, "1"), "u-old-1")); !r.Replayed || r.EntryID != again.EntryID {
		t.Errorf("u-old-1 once more: %+v, want the replay of its new debit", r)
	}
	if p := f.prune(one); p.Pruned != 0 {
		t.Errorf("a pass right after: %+v, want nothing more pruned (the new key is new)", p)
	}
	f.verifyClean()
}

// UsageKeyRetentionUpgrades builds a database as it was before migration
// 0020, with an old usage key and an old credit key, then opens it as the
// current code does: the usage key written before the upgrade is pruned,
// the credit key kept. old is a connection to the empty database, files
// its full migration list, and reopen opens it with the store (migrating
// it).
func UsageKeyRetentionUpgrades(t *testing.T, old *sql.DB, files fs.FS, reopen func() *sqlstore.DB) {
	t.Helper()
	if err := sqlstore.Migrate(ctx(t), old, Before(files, 20)); err != nil {
		t.Fatalf("migrate to 0019: %v", err)
	}
	at := Epoch.Add(-48 * time.Hour).UnixMicro()
	for _, q := range []string{
		`INSERT INTO idempotency (scope, key, request_hash, result, created_at) VALUES ('acct_1/usage', 'u1', 'h', 'r', $1)`,
		`INSERT INTO idempotency (scope, key, request_hash, result, created_at) VALUES ('acct_1/credit', 'c1', 'h', 'r', $1)`,
	} {
		if _, err := old.ExecContext(ctx(t), q, at); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s := reopen()
	w, err := retention.New(s.Ledger, retention.Config{Retention: retention.MinRetention, Clock: s.Clock()})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := w.RunOnce(ctx(t)); err != nil || p.Pruned != 1 {
		t.Fatalf("the first pass after 0020: %+v, %v; want the old usage key pruned", p, err)
	}
	if u, c := idemKeys(t, s.DB(), "acct_1", ledger.ScopeUsage), idemKeys(t, s.DB(), "acct_1", ledger.ScopeCredit); len(u) != 0 || !slices.Equal(c, []string{"c1"}) {
		t.Errorf("after the pass: usage keys %v, credit keys %v; want none and c1", u, c)
	}
}

// testUsageKeyPruneRace: requests repeating old usage keys while a pass
// deletes them, with no account lock between the two, each either replay
// their first answer or debit once anew; none fails, no key is left with
// two rows, the new rows outlive the pass, and the ledger stays clean.
func testUsageKeyPruneRace(t *testing.T, f *fixture) {
	const keys, clients = 120, 4
	a := f.account("race@example.com")
	f.postOK(credit(a.ID, amt(t, "1000"), "c"))
	first := make([]ledger.Result, keys)
	for i := range keys {
		first[i] = f.postOK(usage(a.ID, amt(t, "1"), "k"+strconv.Itoa(i)))
	}
	start := f.balance(a.ID)
	f.advance(24*time.Hour + time.Second)
	w := f.retainer(retention.Config{Retention: 24 * time.Hour, Batch: 5})

	var wg sync.WaitGroup
	var pass retention.Pass
	var passErr error
	wg.Go(func() { pass, passErr = w.RunOnce(ctx(t)) })
	results := make([]ledger.Result, keys)
	errs := make([]error, keys)
	for c := range clients {
		wg.Go(func() {
			for i := c; i < keys; i += clients {
				res, err := f.s.Post(ctx(t), []ledger.Posting{usage(a.ID, amt(t, "1"), "k"+strconv.Itoa(i))})
				if err == nil {
					results[i], err = res[0], res[0].Err
				}
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if passErr != nil {
		t.Fatalf("the pass: %v", passErr)
	}
	debited := 0
	for i := range keys {
		switch r := results[i]; {
		case errs[i] != nil:
			t.Errorf("k%d during the pass: %v", i, errs[i])
		case r.Replayed && r.EntryID == first[i].EntryID:
		case !r.Replayed && r.EntryID != first[i].EntryID:
			debited++
		default:
			t.Errorf("k%d during the pass: %+v, want a replay of %s or a new debit", i, r, first[i].EntryID)
		}
	}
	t.Logf("during the pass (%d pruned in %d chunks): %d keys debited anew, %d replayed", pass.Pruned, pass.Chunks, debited, keys-debited)
	if got, want := f.balance(a.ID), start-money.Amount(debited)*amt(t, "1"); got != want {
		t.Errorf("balance %s after %d new debits, want %s", got.Format(usd), debited, want.Format(usd))
	}
	// What the pass missed (keys replayed before it reached them) the next
	// one deletes; the rows of the new debits stay.
	rest := f.prune(w)
	if pass.Pruned+rest.Pruned != keys {
		t.Errorf("pruned %d then %d, want the %d old keys once each", pass.Pruned, rest.Pruned, keys)
	}
	if got := idemKeys(t, f.s.DB(), a.ID, ledger.ScopeUsage); len(got) != debited {
		t.Errorf("%d usage keys left, want the %d of the new debits", len(got), debited)
	}
	f.verifyClean()
}
