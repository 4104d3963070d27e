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

// testUsageKeyRetention: a usage key is kept in its entry and remembered
// for the retention: exactly as old as the retention it still replays its
// first answer, a microsecond older it debits again (the contract), while
// the first entry keeps its key and the key's newest entry answers it from
// then on. Credit and capture keys are kept however old. The retention
// worker, which prunes the usage rows written before migration 0022, finds
// none to prune, one replica at a time; the ledger stays clean.
func testUsageKeyRetention(t *testing.T, f *fixture) {
	const day = 24 * time.Hour
	f.s.SetUsageKeyRetention(day)
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
	db := f.s.DB()
	if got := idemKeys(t, db, a.ID, ledger.ScopeUsage); len(got) != 0 {
		t.Errorf("usage keys in the idempotency table: %v, want none (kept in their entries)", got)
	}

	one := f.retainer(retention.Config{Retention: day, Batch: 2, Owner: "one"})
	two := f.retainer(retention.Config{Retention: day, Batch: 2, Owner: "two"})
	// Exactly the retention old: still remembered.
	f.advance(day / 2)
	balance := f.balance(a.ID)
	if r := f.postOK(usage(a.ID, amt(t, "1"), "u-old-2")); !r.Replayed || r.Balance != firstOld.Balance-amt(t, "1") {
		t.Errorf("u-old-2 exactly the retention old: %+v, want the replay of its first debit", r)
	}
	f.advance(time.Microsecond)
	if p := f.prune(one); !p.Leased || p.Pruned != 0 {
		t.Fatalf("a pass a microsecond later: %+v, want nothing pruned (no usage key has a row)", p)
	}
	if p := f.prune(two); p.Leased || p.Pruned != 0 {
		t.Fatalf("a second replica pruned beside the first: %+v", p)
	}
	if got, got2 := idemKeys(t, db, a.ID, ledger.ScopeCredit), idemKeys(t, db, a.ID, ledger.ScopeCapture); !slices.Equal(got, []string{"c-old"}) ||
		!slices.Equal(got2, []string{"cap-old"}) {
		t.Errorf("credit keys %v and capture keys %v left, want c-old and cap-old (kept for ever)", got, got2)
	}

	// Within the retention, and for other kinds of call, a replay.
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

	// A forgotten usage key debits again; the first entry keeps its key.
	again := f.postOK(usage(a.ID, amt(t, "1"), "u-old-1"))
	if again.Replayed || again.EntryID == firstOld.EntryID || again.Balance != balance-amt(t, "1") {
		t.Fatalf("u-old-1 after the retention: %+v, want a new debit of 1.00 from %s", again, balance.Format(usd))
	}
	var n int
	if err := db.QueryRowContext(ctx(t), `SELECT COUNT(*) FROM entries WHERE account_id = $1 AND idempotency_key = 'u-old-1'`, a.ID).Scan(&n); err != nil || n != 2 {
		t.Errorf("entries keyed u-old-1: %d, %v; want the first and the new one", n, err)
	}
	if r := f.postOK(usage(a.ID, amt(t, "1"), "u-old-1")); !r.Replayed || r.EntryID != again.EntryID {
		t.Errorf("u-old-1 once more: %+v, want the replay of its new debit", r)
	}
	f.verifyClean()
}

// testUsageKeyRowWins: a usage key written before migration 0022 has an
// idempotency row beside its entry, whose answer (here a budget's stop and
// a triggered top-up) the entry did not keep: the row answers its replays.
func testUsageKeyRowWins(t *testing.T, f *fixture) {
	a := f.account("legacy@example.com")
	f.postOK(credit(a.ID, amt(t, "10"), "c"))
	p := usage(a.ID, amt(t, "1"), "u-legacy")
	first := f.postOK(p)
	legacy := first
	legacy.Spendable, legacy.Reason, legacy.TopUpID = false, ledger.ReasonBudgetExhausted, "tu_legacy"
	f.legacyUsageRow(p, legacy)
	r := f.postOK(p)
	if !r.Replayed || r.EntryID != first.EntryID || r.Reason != ledger.ReasonBudgetExhausted || r.TopUpID != "tu_legacy" {
		t.Errorf("replay of a key with a row: %+v, want the row's answer %+v", r, legacy)
	}
	other := p
	other.Amount--
	if r := f.post(other)[0]; !ledger.IsConflict(r.Err) {
		t.Errorf("the key with another amount: %+v, want a conflict", r)
	}
	f.verifyClean()
}

// legacyUsageRow writes the idempotency row a usage posting's first
// answer had before migration 0022, as the code of then wrote it.
func (f *fixture) legacyUsageRow(p ledger.Posting, first ledger.Result) {
	f.t.Helper()
	_, err := f.s.DB().ExecContext(ctx(f.t), `INSERT INTO idempotency (scope, key, request_hash, result, created_at) VALUES ($1, $2, $3, $4, $5)`,
		string(p.Scope()), p.IdempotencyKey, p.Hash(), sqlstore.EncodeResult(first), first.CreatedAt.UnixMicro())
	if err != nil {
		f.t.Fatal(err)
	}
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

// testUsageKeyPruneRace: requests repeating old usage keys whose rows
// were written before migration 0022, while a pass deletes them, with no
// account lock between the two, each either replay their first answer or
// debit once anew; none fails, the new debits write no rows (their keys are
// in their entries), and the ledger stays clean.
func testUsageKeyPruneRace(t *testing.T, f *fixture) {
	const keys, clients = 120, 4
	f.s.SetUsageKeyRetention(24 * time.Hour)
	a := f.account("race@example.com")
	f.postOK(credit(a.ID, amt(t, "1000"), "c"))
	first := make([]ledger.Result, keys)
	for i := range keys {
		p := usage(a.ID, amt(t, "1"), "k"+strconv.Itoa(i))
		first[i] = f.postOK(p)
		f.legacyUsageRow(p, first[i])
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
	// one deletes; the new debits wrote no rows.
	rest := f.prune(w)
	if pass.Pruned+rest.Pruned != keys {
		t.Errorf("pruned %d then %d, want the %d old keys once each", pass.Pruned, rest.Pruned, keys)
	}
	if got := idemKeys(t, f.s.DB(), a.ID, ledger.ScopeUsage); len(got) != 0 {
		t.Errorf("%d usage keys left in the idempotency table, want none", len(got))
	}
	// A key debited anew during the pass answers from its new entry; one
	// replayed from its row, now pruned, is older than the retention and
	// debits again.
	for i := range keys {
		r := f.postOK(usage(a.ID, amt(t, "1"), "k"+strconv.Itoa(i)))
		if fresh := !results[i].Replayed; r.Replayed != fresh || (fresh && r.EntryID != results[i].EntryID) {
			t.Errorf("k%d after the passes (debited anew during the pass: %v): %+v", i, fresh, r)
		}
	}
	f.verifyClean()
}
