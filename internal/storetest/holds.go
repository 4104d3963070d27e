package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// holdReq asks for a hold of amount on acct with key, lasting 15 minutes.
func holdReq(t testing.TB, acct, amount, key string) ledger.HoldRequest {
	return ledger.HoldRequest{AccountID: acct, Amount: amt(t, amount), IdempotencyKey: key, Lifetime: 15 * time.Minute}
}

// capturePosting is the usage posting that captures amount of hold.
func capturePosting(acct, hold string, amount money.Amount, key string) ledger.Posting {
	return ledger.Posting{AccountID: acct, Kind: ledger.KindUsage, Amount: -amount, IdempotencyKey: key, Call: ledger.ScopeCapture, HoldID: hold}
}

// mustHold creates a hold that must be made fresh.
func (f *fixture) mustHold(r ledger.HoldRequest) ledger.Hold {
	f.t.Helper()
	h, replayed, err := f.s.CreateHold(ctx(f.t), r)
	if err != nil || replayed {
		f.t.Fatalf("hold %s: %+v, replayed %v, %v", r.IdempotencyKey, h, replayed, err)
	}
	return h
}

// wantHeld checks what the account answers of its held and available
// credit.
func (f *fixture) wantHeld(acct, held, available string) {
	f.t.Helper()
	a, err := f.s.Account(ctx(f.t), acct)
	if err != nil {
		f.t.Fatal(err)
	}
	if a.Held != amt(f.t, held) || a.Available() != amt(f.t, available) {
		f.t.Fatalf("held %s, available %s; want %s and %s", a.Held.Format(usd), a.Available().Format(usd), held, available)
	}
}

// testHoldLifecycle: a hold reserves credit (402 when available is short,
// nothing held), replays with its key and conflicts with another request;
// a capture records usage with the hold's id and releases the rest, once;
// a release frees it, and again answers it unchanged; verify agrees.
func testHoldLifecycle(t *testing.T, f *fixture) {
	a := f.account("holds@example.com")
	f.postOK(credit(a.ID, amt(t, "10.00"), "c1"))
	h := f.mustHold(holdReq(t, a.ID, "4.00", "h1"))
	if h.Status != ledger.HoldActive || h.Amount != amt(t, "4.00") || !h.ExpiresAt.Equal(h.CreatedAt.Add(15*time.Minute)) {
		t.Fatalf("hold %+v", h)
	}
	f.wantHeld(a.ID, "4.00", "6.00")
	again, replayed, err := f.s.CreateHold(ctx(t), holdReq(t, a.ID, "4.00", "h1"))
	if err != nil || !replayed || again.ID != h.ID {
		t.Fatalf("the same key again: %+v, %v, %v; want the first hold replayed", again, replayed, err)
	}
	if _, _, err := f.s.CreateHold(ctx(t), holdReq(t, a.ID, "5.00", "h1")); apperr.CodeOf(err) != apperr.IdempotencyConflict {
		t.Fatalf("the same key, another amount: %v", err)
	}
	if _, _, err := f.s.CreateHold(ctx(t), holdReq(t, a.ID, "6.01", "h2")); apperr.CodeOf(err) != apperr.InsufficientBalance {
		t.Fatalf("a hold beyond available: %v; want insufficient_balance", err)
	}
	f.wantHeld(a.ID, "4.00", "6.00")

	r := f.postOK(capturePosting(a.ID, h.ID, amt(t, "2.50"), "cap1"))
	if r.Balance != amt(t, "7.50") || !r.Spendable {
		t.Fatalf("capture result %+v", r)
	}
	f.wantHeld(a.ID, "0.00", "7.50")
	got, err := f.s.Hold(ctx(t), a.ID, h.ID)
	if err != nil || got.Status != ledger.HoldCaptured || got.Captured != amt(t, "2.50") || got.EntryID != r.EntryID {
		t.Fatalf("captured hold %+v, %v", got, err)
	}
	if e := f.entry(a.ID, r.EntryID); e.Kind != ledger.KindUsage || e.HoldID != h.ID || e.Amount != -amt(t, "2.50") || len(e.Funding) != 1 {
		t.Fatalf("capture entry %+v", e)
	}
	if rr := f.postOK(capturePosting(a.ID, h.ID, amt(t, "2.50"), "cap1")); !rr.Replayed || rr.EntryID != r.EntryID {
		t.Fatalf("capture replay %+v", rr)
	}
	if rr := f.post(capturePosting(a.ID, h.ID, amt(t, "1.00"), "cap2"))[0]; apperr.CodeOf(rr.Err) != apperr.Conflict {
		t.Fatalf("a new key on a captured hold: %v; want conflict", rr.Err)
	}
	if _, err := f.s.ReleaseHold(ctx(t), a.ID, h.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("releasing a captured hold: %v; want conflict", err)
	}

	h2 := f.mustHold(holdReq(t, a.ID, "7.50", "h3"))
	f.wantHeld(a.ID, "7.50", "0.00")
	if rr := f.post(capturePosting(a.ID, h2.ID, amt(t, "7.51"), "cap3"))[0]; apperr.CodeOf(rr.Err) != apperr.Invalid {
		t.Fatalf("capturing more than the hold: %v; want invalid", rr.Err)
	}
	for i := range 2 {
		rel, err := f.s.ReleaseHold(ctx(t), a.ID, h2.ID)
		if err != nil || rel.Status != ledger.HoldReleased {
			t.Fatalf("release %d: %+v, %v", i, rel, err)
		}
	}
	f.wantHeld(a.ID, "0.00", "7.50")
	if _, err := f.s.ReleaseHold(ctx(t), a.ID, "hld_nope"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("an unknown hold: %v", err)
	}
	other := f.account("other@example.com")
	if _, err := f.s.Hold(ctx(t), other.ID, h2.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("another account's hold: %v", err)
	}
	list, _, err := f.s.Holds(ctx(t), a.ID, ledger.HoldReleased, ledger.Page{Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != h2.ID {
		t.Fatalf("released holds %+v, %v", list, err)
	}
	f.verifyClean()
}

// testHoldExpiry: once the time is past expires_at a hold is expired,
// whatever its row says: it is read and listed so, no longer counts in
// held, and capture and release answer conflict; the next transaction on
// the account writes its status, and verify is clean before and after.
func testHoldExpiry(t *testing.T, f *fixture) {
	clk := f.s.Clock().(*clock.Manual)
	a := f.account("expiry@example.com")
	f.postOK(credit(a.ID, amt(t, "10.00"), "c1"))
	short := holdReq(t, a.ID, "3.00", "short")
	short.Lifetime = time.Minute
	h := f.mustHold(short)
	long := f.mustHold(holdReq(t, a.ID, "2.00", "long"))
	f.wantHeld(a.ID, "5.00", "5.00")
	clk.Advance(time.Minute)
	f.wantHeld(a.ID, "2.00", "8.00")
	if got, err := f.s.Hold(ctx(t), a.ID, h.ID); err != nil || got.Status != ledger.HoldExpired {
		t.Fatalf("expired hold reads %+v, %v", got, err)
	}
	for _, st := range []ledger.HoldStatus{ledger.HoldExpired, ledger.HoldActive} {
		list, _, err := f.s.Holds(ctx(t), a.ID, st, ledger.Page{Limit: 10})
		want := map[ledger.HoldStatus]string{ledger.HoldExpired: h.ID, ledger.HoldActive: long.ID}[st]
		if err != nil || len(list) != 1 || list[0].ID != want || list[0].Status != st {
			t.Fatalf("%s holds %+v, %v; want %s", st, list, err, want)
		}
	}
	f.verifyClean()
	if rr := f.post(capturePosting(a.ID, h.ID, amt(t, "1.00"), "late"))[0]; apperr.CodeOf(rr.Err) != apperr.Conflict {
		t.Fatalf("capturing an expired hold: %v; want conflict", rr.Err)
	}
	if _, err := f.s.ReleaseHold(ctx(t), a.ID, h.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("releasing an expired hold: %v; want conflict", err)
	}
	// Available again: a hold of what the expired one freed.
	f.mustHold(holdReq(t, a.ID, "8.00", "after"))
	f.wantHeld(a.ID, "10.00", "0.00")
	f.verifyClean()
}

// testHoldLimit: an account holds at most MaxActiveHolds active holds;
// one more answers limit_exceeded, and a hold released makes room.
func testHoldLimit(t *testing.T, f *fixture) {
	a := f.account("limit@example.com")
	f.postOK(credit(a.ID, amt(t, "100.00"), "c1"))
	var first ledger.Hold
	for i := range ledger.MaxActiveHolds {
		h := f.mustHold(holdReq(t, a.ID, "0.01", fmt.Sprint("h", i)))
		if i == 0 {
			first = h
		}
	}
	if _, _, err := f.s.CreateHold(ctx(t), holdReq(t, a.ID, "0.01", "one-more")); apperr.CodeOf(err) != apperr.LimitExceeded {
		t.Fatalf("hold %d: %v; want limit_exceeded", ledger.MaxActiveHolds+1, err)
	}
	if _, err := f.s.ReleaseHold(ctx(t), a.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	f.mustHold(holdReq(t, a.ID, "0.01", "one-more"))
	f.verifyClean()
}

// testHoldTriggersTopUp: a hold that takes available credit below the
// Automatic Top-Up threshold creates the top-up in its transaction and
// names it; a top-up's amount is target less available.
func testHoldTriggersTopUp(t *testing.T, f *fixture) {
	a := f.account("holdauto@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	f.postOK(credit(a.ID, amt(t, "20.00"), "c1"))
	on := true
	if _, started, err := f.s.SaveSettings(ctx(t), a.ID, "test", topup.Input{Enabled: &on, Threshold: ptr(amt(t, "10.00")), Target: ptr(amt(t, "50.00"))},
		amt(t, "10000.00")); err != nil || started != nil {
		t.Fatalf("save settings: %+v, %v", started, err)
	}
	if h := f.mustHold(holdReq(t, a.ID, "10.00", "h1")); h.TopUpID != "" {
		t.Fatalf("a hold leaving available at the threshold started %s", h.TopUpID)
	}
	h := f.mustHold(holdReq(t, a.ID, "0.01", "h2"))
	if h.TopUpID == "" {
		t.Fatal("a hold taking available below the threshold started no top-up")
	}
	if h3 := f.mustHold(holdReq(t, a.ID, "1.00", "h3")); h3.TopUpID != "" {
		t.Fatalf("a second top-up %s while one is open", h3.TopUpID)
	}
	if _, ok, err := f.s.Begin(ctx(t), h.TopUpID); err != nil || !ok {
		t.Fatalf("begin: %v, %v", ok, err)
	}
	tu, err := f.s.TopUpByID(ctx(t), h.TopUpID)
	if err != nil || tu.Amount == nil || *tu.Amount != amt(t, "41.01") {
		t.Fatalf("the top-up's amount %+v, %v; want 41.01 (target less available 8.99)", tu.Amount, err)
	}
	f.verifyClean()
}

// testHoldsConcurrency: many clients create, capture (through the
// committer) and release holds on one account with Automatic Top-Up on:
// creating a hold never makes available negative, every capture is
// recorded once, and at most one automatic top-up is ever open.
func testHoldsConcurrency(t *testing.T, f *fixture) {
	a := f.account("race@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	f.postOK(credit(a.ID, amt(t, "30.00"), "c1"))
	on := true
	if _, _, err := f.s.SaveSettings(ctx(t), a.ID, "test", topup.Input{Enabled: &on, Threshold: ptr(amt(t, "20.00")), Target: ptr(amt(t, "50.00"))},
		amt(t, "10000.00")); err != nil {
		t.Fatal(err)
	}
	c := ledger.NewCommitter(f.s.Ledger, ledger.CommitterConfig{})
	c.Start()
	defer c.Stop()
	const clients, each = 8, 25
	var captured, captures, made, refused atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	// A reader watches available credit while the clients work: only
	// holds and their captures move it, so it never goes below zero.
	wg.Go(func() {
		for !stop.Load() {
			acct, err := f.s.Account(ctx(t), a.ID)
			if err != nil {
				t.Error(err)
				return
			}
			if acct.Available() < 0 {
				t.Errorf("available %s while holds are made", acct.Available().Format(usd))
				return
			}
		}
	})
	var clientsWG sync.WaitGroup
	for i := range clients {
		clientsWG.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for j := range each {
				amount := money.Amount(rng.IntN(150)+1) * 10_000
				h, _, err := f.s.CreateHold(ctx(t), ledger.HoldRequest{AccountID: a.ID, Amount: amount, IdempotencyKey: fmt.Sprintf("h%d-%d", i, j), Lifetime: time.Hour})
				if apperr.CodeOf(err) == apperr.InsufficientBalance {
					refused.Add(1)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				made.Add(1)
				if rng.IntN(3) == 0 {
					if _, err := f.s.ReleaseHold(ctx(t), a.ID, h.ID); err != nil {
						t.Error(err)
					}
					continue
				}
				take := money.Amount(rng.Int64N(int64(amount))) + 1
				key := fmt.Sprintf("cap%d-%d", i, j)
				for range 2 { // a client retrying: recorded once
					res, err := c.Submit(ctx(t), []ledger.Posting{capturePosting(a.ID, h.ID, take, key)})
					if err != nil || res[0].Err != nil {
						t.Errorf("capture %s: %v %v", key, err, res)
						return
					}
					if !res[0].Replayed {
						captured.Add(int64(take))
						captures.Add(1)
					}
				}
			}
		})
	}
	clientsWG.Wait()
	stop.Store(true)
	wg.Wait()
	if made.Load() == 0 || captures.Load() == 0 {
		t.Fatalf("made %d holds, captured %d: the test did not exercise holds", made.Load(), captures.Load())
	}
	want := amt(t, "30.00") - money.Amount(captured.Load())
	if b := f.balance(a.ID); b != want {
		t.Fatalf("balance %s, want %s after %d captures", b.Format(usd), want.Format(usd), captures.Load())
	}
	n, page := 0, ledger.Page{Limit: 100}
	for {
		es, more, err := f.s.Entries(ctx(t), a.ID, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.HoldID != "" {
				n++
			}
		}
		if !more {
			break
		}
		page.StartingAfter = es[len(es)-1].ID
	}
	if int64(n) != captures.Load() {
		t.Fatalf("%d capture entries, want %d", n, captures.Load())
	}
	open, err := f.s.TopUpIDs(ctx(t), topup.Pending, topup.Processing, topup.RequiresAction)
	if err != nil || len(open) > 1 {
		t.Fatalf("open top-ups %v, %v; want at most one", open, err)
	}
	t.Logf("%d holds made, %d refused, %d captured, %d open top-ups", made.Load(), refused.Load(), captures.Load(), len(open))
	f.verifyClean()
}
