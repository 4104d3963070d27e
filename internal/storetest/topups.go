package storetest

import (
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// Top-ups: manual creation under an idempotency key, leases and claims,
// settlement crediting the ledger once, paging, the one open automatic
// top-up per account, and the reads the simulator checks with.

const lease = time.Minute

// manual creates a manual top-up on the account's default card.
func (f *fixture) manual(acct, amount, key string) topup.TopUp {
	f.t.Helper()
	t, _, err := f.s.CreateManual(ctx(f.t), acct, amt(f.t, amount), "", key, "hash-"+key, lease)
	if err != nil {
		f.t.Fatalf("manual top-up %s: %v", key, err)
	}
	return t
}

// testManualTopUpIdempotent: a key replays its top-up; with another
// request it conflicts; without a card nothing is made.
func testManualTopUpIdempotent(t *testing.T, f *fixture) {
	a := f.account("manual@example.com")
	if _, _, err := f.s.CreateManual(ctx(t), a.ID, amt(t, "10.00"), "", "k0", "h", lease); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("a manual top-up without a card: %v; want invalid", err)
	}
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	first, replay, err := f.s.CreateManual(ctx(t), a.ID, amt(t, "10.00"), "", "k1", "h1", lease)
	if err != nil || replay || first.Status != topup.Pending || first.Trigger != topup.TriggerManual || first.PaymentMethod != "pm_1" {
		t.Fatalf("create: %+v, replay %v, %v", first, replay, err)
	}
	again, replay, err := f.s.CreateManual(ctx(t), a.ID, amt(t, "10.00"), "", "k1", "h1", lease)
	if err != nil || !replay || again.ID != first.ID {
		t.Errorf("replay: %s, replay %v, %v; want %s", again.ID, replay, err, first.ID)
	}
	_, _, err = f.s.CreateManual(ctx(t), a.ID, amt(t, "11.00"), "", "k1", "h2", lease)
	wantCode(t, err, apperr.IdempotencyConflict, "idempotency_key")
	if got, err := f.s.TopUp(ctx(t), a.ID, first.ID); err != nil || got.ID != first.ID || *got.Amount != amt(t, "10.00") {
		t.Errorf("read back: %+v, %v", got, err)
	}
	if _, err := f.s.TopUp(ctx(t), f.account("other@example.com").ID, first.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("another account reads the top-up: %v; want not_found", err)
	}
}

// testTopUpLeaseAndClaim: a manual top-up is leased to its creator; the
// worker claims it only when the lease ran out, once, or after a release.
func testTopUpLeaseAndClaim(t *testing.T, f *fixture) {
	a := f.account("claim@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.manual(a.ID, "10.00", "k1")
	if ids, err := f.s.Claim(ctx(t), Epoch, lease, 10); err != nil || len(ids) != 0 {
		t.Errorf("claim under the creator's lease: %v, %v; want none", ids, err)
	}
	later := Epoch.Add(2 * lease)
	if ids, err := f.s.Claim(ctx(t), later, lease, 10); err != nil || len(ids) != 1 || ids[0] != tu.ID {
		t.Errorf("claim after the lease: %v, %v; want %s", ids, err, tu.ID)
	}
	if ids, err := f.s.Claim(ctx(t), later, lease, 10); err != nil || len(ids) != 0 {
		t.Errorf("a second claim: %v, %v; want none", ids, err)
	}
	if err := f.s.ReleaseLeases(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if ids, err := f.s.Claim(ctx(t), later, lease, 10); err != nil || len(ids) != 1 {
		t.Errorf("claim after a release: %v, %v; want the top-up", ids, err)
	}
}

// testTopUpRenew: a claim is renewed only by its holder (fenced on the
// end it set), never after another worker claimed the top-up once the
// claim ran out, and never once the top-up is settled; a zero held takes
// the claim whatever it is (the maker of a manual top-up).
func testTopUpRenew(t *testing.T, f *fixture) {
	a := f.account("renew@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.manual(a.ID, "10.00", "k1")
	renew := func(held, until time.Time, want bool, what string) {
		t.Helper()
		if ok, err := f.s.Renew(ctx(t), tu.ID, held, until); err != nil || ok != want {
			t.Errorf("%s: renewed %v, %v; want %v", what, ok, err, want)
		}
	}
	claimed := func(at time.Time, want int, what string) {
		t.Helper()
		if ids, err := f.s.Claim(ctx(t), at, lease, 10); err != nil || len(ids) != want {
			t.Errorf("%s: claimed %v, %v; want %d", what, ids, err, want)
		}
	}
	t1 := Epoch.Add(2 * lease)
	claimed(t1, 1, "claim after the maker's lease")
	held := t1.Add(lease)
	renew(held.Add(time.Microsecond), t1.Add(2*lease), false, "renew with another end than the claim's")
	renew(held, t1.Add(3*lease), true, "renew by the holder")
	held = t1.Add(3 * lease)
	claimed(t1.Add(2*lease), 0, "claim while renewed past the first end")
	// The holder stalls: its claim runs out and another worker claims.
	t2 := held.Add(time.Second)
	claimed(t2, 1, "claim after the renewed claim ran out")
	renew(held, t2.Add(2*lease), false, "renew by the stalled holder")
	renew(t2.Add(lease), t2.Add(2*lease), true, "renew by the new holder")
	renew(time.Time{}, t2.Add(3*lease), true, "take the claim whatever it is")
	if _, err := f.s.Settle(ctx(t), tu.ID, topup.Outcome{Status: topup.Failed, FailureCode: "card_declined"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	renew(t2.Add(3*lease), t2.Add(4*lease), false, "renew a settled top-up")
	renew(time.Time{}, t2.Add(4*lease), false, "take a settled top-up")
}

// testTopUpSettleCreditsOnce: a success credits the ledger once, however
// often it is reported; the top-up then leaves the open lists.
func testTopUpSettleCreditsOnce(t *testing.T, f *fixture) {
	a := f.account("settle@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.manual(a.ID, "25.00", "k1")
	if _, ok, err := f.s.Begin(ctx(t), tu.ID); err != nil || !ok {
		t.Fatalf("begin: %v, %v", ok, err)
	}
	if ids, err := f.s.TopUpIDs(ctx(t), topup.Pending, topup.Processing); err != nil || len(ids) != 1 {
		t.Errorf("open top-ups before settling: %v, %v", ids, err)
	}
	for i := range 2 {
		res, err := f.s.Settle(ctx(t), tu.ID, topup.Outcome{Status: topup.Succeeded, ChargeID: "ch_1"}, time.Minute)
		if err != nil || res.TopUp.Status != topup.Succeeded || res.Credited != (i == 0) {
			t.Fatalf("settle #%d: %+v, %v", i+1, res, err)
		}
	}
	f.wantOneCredit(a.ID, tu.ID, amt(t, "25.00"))
	if n, err := f.s.CountTopUps(ctx(t), topup.Pending, topup.Processing, topup.RequiresAction); err != nil || n != 0 {
		t.Errorf("%d open top-ups (%v) after the success; want 0", n, err)
	}
	f.verifyClean()
}

// wantOneCredit checks that the account holds amount, credited by one
// entry of the top-up.
func (f *fixture) wantOneCredit(acct, topUpID string, amount money.Amount) {
	t := f.t
	t.Helper()
	if b := f.balance(acct); b != amount {
		t.Errorf("balance %s after the top-up; want %s", b.Format(usd), amount.Format(usd))
	}
	entries, _, err := f.s.Entries(ctx(t), acct, ledger.Page{Limit: 10})
	if err != nil || len(entries) != 1 || entries[0].Kind != ledger.KindTopUp || entries[0].TopUpID != topUpID {
		t.Fatalf("entries %+v, %v; want the one top-up credit", entries, err)
	}
}

// testTopUpPaging: an account's top-ups list newest first, a page at a
// time, and only its own.
func testTopUpPaging(t *testing.T, f *fixture) {
	a, b := f.account("pages@example.com"), f.account("b@example.com")
	f.cards(a.ID, b.ID)
	var made []string
	for _, k := range []string{"k1", "k2", "k3"} {
		made = append(made, f.manual(a.ID, "5.00", k).ID)
	}
	f.manual(b.ID, "5.00", "k1")
	page, more, err := f.s.TopUps(ctx(t), a.ID, ledger.Page{Limit: 2})
	if err != nil || !more || len(page) != 2 || page[0].ID != made[2] || page[1].ID != made[1] {
		t.Fatalf("first page %v, more %v, %v", topUpIDs(page), more, err)
	}
	page, more, err = f.s.TopUps(ctx(t), a.ID, ledger.Page{Limit: 2, StartingAfter: page[1].ID})
	if err != nil || more || len(page) != 1 || page[0].ID != made[0] {
		t.Fatalf("second page %v, more %v, %v", topUpIDs(page), more, err)
	}
	if _, _, err := f.s.TopUps(ctx(t), "acct_nobody", ledger.Page{Limit: 2}); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("an unknown account's top-ups: %v; want not_found", err)
	}
	all, err := f.s.AllTopUps(ctx(t))
	if err != nil || len(all) != 4 {
		t.Errorf("all top-ups: %d, %v; want 4", len(all), err)
	}
}

// cards gives each account a card.
func (f *fixture) cards(accts ...string) {
	f.t.Helper()
	for _, acct := range accts {
		if _, err := f.card(acct, "pm_"+acct); err != nil {
			f.t.Fatal(err)
		}
	}
}

func topUpIDs(ts []topup.TopUp) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// testOneOpenAutomaticTopUp: saving settings below the balance starts an
// automatic top-up; while it is open, more usage starts no other.
func testOneOpenAutomaticTopUp(t *testing.T, f *fixture) {
	a := f.account("auto@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	f.postOK(credit(a.ID, amt(t, "8.00"), "c1"))
	on := true
	_, started, err := f.s.SaveSettings(ctx(t), a.ID, "test", topup.Input{Enabled: &on, Threshold: ptr(amt(t, "10.00")), Target: ptr(amt(t, "50.00"))}, amt(t, "10000.00"))
	if err != nil || started == nil || started.Trigger != topup.TriggerSettings {
		t.Fatalf("save settings below the threshold: %+v, %v; want a top-up started", started, err)
	}
	f.postOK(usage(a.ID, amt(t, "1.00"), "u1"))
	f.postOK(usage(a.ID, amt(t, "1.00"), "u2"))
	ids, err := f.s.TopUpIDs(ctx(t), topup.Pending, topup.Processing, topup.RequiresAction)
	if err != nil || len(ids) != 1 || ids[0] != started.ID {
		t.Errorf("open top-ups %v, %v; want only %s", ids, err, started.ID)
	}
	if _, ok, err := f.s.Begin(ctx(t), started.ID); err != nil || !ok {
		t.Fatalf("begin: %v, %v", ok, err)
	}
	fixed, err := f.s.TopUpByID(ctx(t), started.ID)
	if err != nil || fixed.Amount == nil || *fixed.Amount != amt(t, "44.00") {
		t.Fatalf("the automatic top-up's amount: %+v, %v; want 44.00 (target - balance)", fixed.Amount, err)
	}
	f.wantAutomaticTotals(a.ID, started.ID, amt(t, "44.00"))
}

// wantAutomaticTotals checks what AutomaticTopUpTotal adds up for an
// account whose one automatic top-up id, of amount, is open this month.
func (f *fixture) wantAutomaticTotals(acct, id string, amount money.Amount) {
	t := f.t
	t.Helper()
	for _, c := range []struct {
		month  time.Time
		except string
		want   money.Amount
	}{{Epoch, "", amount}, {Epoch, id, 0}, {Epoch.AddDate(0, 1, 0), "", 0}} {
		sum, err := f.s.AutomaticTopUpTotal(ctx(t), acct, c.month, c.except, topup.Pending, topup.Processing)
		if err != nil || sum != c.want {
			t.Errorf("automatic top-ups of %s except %q: %s, %v; want %s", topup.Month(c.month), c.except, sum.Format(usd), err, c.want.Format(usd))
		}
	}
}

// testLedgerReads: the reads a checker uses to follow the ledger from
// outside: every account's last entry number, the entries after one, and
// a mark that moves with every write.
func testLedgerReads(t *testing.T, f *fixture) {
	a, b := f.account("r1@example.com"), f.account("r2@example.com")
	mark := f.s.WriteMark(ctx(t))
	f.postOK(credit(a.ID, amt(t, "3.00"), "c1"))
	f.postOK(usage(a.ID, amt(t, "1.00"), "u1"))
	if m := f.s.WriteMark(ctx(t)); m == "" || m == mark {
		t.Errorf("write mark %q after posting, %q before; want it to move", m, mark)
	}
	f.wantSeqs(map[string]int64{a.ID: 2, b.ID: 0})
	after, err := f.s.EntriesAfter(ctx(t), a.ID, 1)
	if err != nil || len(after) != 1 || after[0].Seq != 2 || after[0].Amount != -amt(t, "1.00") || after[0].IdempotencyKey != "u1" {
		t.Errorf("entries after 1: %+v, %v; want the usage", after, err)
	}
	if all, err := f.s.EntriesAfter(ctx(t), a.ID, 0); err != nil || len(all) != 2 || all[0].Seq != 1 {
		t.Errorf("entries after 0: %+v, %v; want both, oldest first", all, err)
	}
}

// wantSeqs checks AccountSeqs against every account's last entry number.
func (f *fixture) wantSeqs(want map[string]int64) {
	t := f.t
	t.Helper()
	seqs, err := f.s.AccountSeqs(ctx(t))
	if err != nil || len(seqs) != len(want) {
		t.Fatalf("account seqs %+v, %v; want %v", seqs, err, want)
	}
	for i, s := range seqs {
		if want[s.AccountID] != s.LastSeq || i > 0 && seqs[i-1].AccountID >= s.AccountID {
			t.Errorf("account seqs %+v; want %v in id order", seqs, want)
		}
	}
}
