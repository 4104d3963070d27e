package storetest

import (
	"testing"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// The refunds and disputes of succeeded top-ups (PRODUCT.md "Refunds,
// disputes, receipts and statements"), as the store applies them.

func (f *fixture) refundReq(acct, topUp, amount, key string) refund.Request {
	r := refund.Request{AccountID: acct, TopUpID: topUp, IdempotencyKey: key}
	if amount != "" {
		r.Amount, r.Explicit = amt(f.t, amount), true
	}
	return r
}

func (f *fixture) kindEntries(acct string, kind ledger.Kind) []ledger.Entry {
	f.t.Helper()
	es, _, err := f.s.Entries(ctx(f.t), acct, ledger.Page{Limit: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []ledger.Entry
	for _, e := range es {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// testRefunds: a refund is recorded pending (replayed by its key, a
// conflict with another request), its entry is written once when the
// provider confirms it — from the top-up's grant, then for the part already
// spent from overdraft — and a refund that fails after it succeeded gives
// the money back once. More than what is left is 400; a top-up that did not
// succeed 409; another account's 404.
func testRefunds(t *testing.T, f *fixture) {
	a := f.account("refund@example.com")
	f.postOK(usage(a.ID, amt(t, "1.00"), "u1"))
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.settled(a.ID, "25.00", "k1")
	f.postOK(usage(a.ID, amt(t, "4.00"), "u2")) // the grant has 20.00 left, 5.00 of it spent

	r, replayed, err := f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "", "r1"))
	if err != nil || replayed || r.Status != refund.Pending || r.Amount != amt(t, "25.00") {
		t.Fatalf("refund: %+v %v %v", r, replayed, err)
	}
	if again, replayed, err := f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "", "r1")); err != nil || !replayed || again.ID != r.ID {
		t.Fatalf("replay: %+v %v %v", again, replayed, err)
	}
	_, _, err = f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "1.00", "r1"))
	wantCode(t, err, apperr.IdempotencyConflict, "idempotency_key")
	_, _, err = f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "0.01", "r2"))
	wantCode(t, err, apperr.Invalid, "amount") // the pending refund holds all of it
	b := f.account("other@example.com")
	_, _, err = f.s.CreateRefund(ctx(t), f.refundReq(b.ID, tu.ID, "", "r3"))
	wantCode(t, err, apperr.NotFound, "")
	pending := f.manual(a.ID, "5.00", "k2")
	_, _, err = f.s.CreateRefund(ctx(t), f.refundReq(a.ID, pending.ID, "", "r4"))
	wantCode(t, err, apperr.Conflict, "")

	before := f.balance(a.ID) // 20.00
	word := refund.Word{RefundID: r.ID, ProviderID: "re_1", Status: refund.Succeeded}
	for range 2 {
		got, ok, err := f.s.ApplyRefund(ctx(t), word)
		if err != nil || !ok || got.Status != refund.Succeeded || got.Taken != amt(t, "25.00") || got.ProviderID != "re_1" {
			t.Fatalf("refund succeeded: %+v %v %v", got, ok, err)
		}
	}
	es := f.kindEntries(a.ID, ledger.KindRefund)
	if len(es) != 1 || es[0].Amount != -amt(t, "25.00") || es[0].TopUpID != tu.ID || len(es[0].Funding) != 2 ||
		es[0].Funding[0].Amount != amt(t, "20.00") || es[0].Funding[1].Category != ledger.Overdraft || es[0].Funding[1].Amount != amt(t, "5.00") {
		t.Fatalf("refund entries %+v", es)
	}
	if got := f.balance(a.ID); got != before-amt(t, "25.00") {
		t.Fatalf("balance after the refund %v, want %v", got, before-amt(t, "25.00"))
	}
	notes, err := f.s.Notifications(ctx(t), a.ID, 10)
	if err != nil || len(notes) == 0 || notes[0].Type != "top_up.refunded" {
		t.Fatalf("notifications %+v %v", notes, err)
	}
	f.verifyClean()

	// The bank returns it: the money comes back once.
	for range 2 {
		if got, _, err := f.s.ApplyRefund(ctx(t), refund.Word{ProviderID: "re_1", Status: refund.Failed}); err != nil || got.Status != refund.Failed {
			t.Fatalf("refund failed: %+v %v", got, err)
		}
	}
	if back := f.kindEntries(a.ID, ledger.KindRefundReversal); len(back) != 1 || back[0].Amount != amt(t, "25.00") {
		t.Fatalf("reversals %+v", back)
	}
	if got := f.balance(a.ID); got != before {
		t.Fatalf("balance after the reversal %v, want %v", got, before)
	}
	// A late copy of the success changes nothing.
	if got, _, err := f.s.ApplyRefund(ctx(t), word); err != nil || got.Status != refund.Failed || len(f.kindEntries(a.ID, ledger.KindRefund)) != 1 {
		t.Fatalf("late success: %+v %v", got, err)
	}
	f.verifyClean()
}

// testProviderRefund: a refund made at the provider directly (Stripe's
// Dashboard) is recorded and applied the first time it is heard of, once.
func testProviderRefund(t *testing.T, f *fixture) {
	a := f.account("dashboard@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.settled(a.ID, "30.00", "k1")
	w := refund.Word{ProviderID: "re_dash", ChargeID: "ch_k1", AmountMinor: 1000, Status: refund.Succeeded}
	for range 2 {
		r, ok, err := f.s.ApplyRefund(ctx(t), w)
		if err != nil || !ok || r.TopUpID != tu.ID || r.Amount != amt(t, "10.00") || r.Status != refund.Succeeded {
			t.Fatalf("dashboard refund: %+v %v %v", r, ok, err)
		}
	}
	if es := f.kindEntries(a.ID, ledger.KindRefund); len(es) != 1 || es[0].Amount != -amt(t, "10.00") {
		t.Fatalf("refund entries %+v", es)
	}
	if _, ok, err := f.s.ApplyRefund(ctx(t), refund.Word{ProviderID: "re_x", ChargeID: "ch_unknown", AmountMinor: 100, Status: refund.Succeeded}); ok || err != nil {
		t.Fatalf("a refund of a charge Topup does not have: %v %v", ok, err)
	}
	rs, err := f.s.ListRefunds(ctx(t), a.ID, tu.ID)
	if err != nil || len(rs) != 1 {
		t.Fatalf("refunds %+v %v", rs, err)
	}
	f.verifyClean()
}

// testDisputeAnyOrder: a dispute's events apply once in any order — the
// close heard first records the dispute too — and a won dispute gives back
// what was withdrawn; hearing of it switches Automatic Top-Up off, tells
// the customer, and refuses refunds while it is open.
func testDisputeAnyOrder(t *testing.T, f *fixture) {
	a := f.account("dispute@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.settled(a.ID, "40.00", "k1")
	on := true
	if _, _, err := f.s.SaveSettings(ctx(t), a.ID, "test", topup.Input{Enabled: &on, Threshold: ptr(amt(t, "5")), Target: ptr(amt(t, "20"))},
		amt(t, "10000")); err != nil {
		t.Fatal(err)
	}
	word := func(kind refund.DisputeEventKind, won bool) refund.DisputeWord {
		return refund.DisputeWord{ProviderID: "dp_1", ChargeID: "ch_k1", AmountMinor: 4000, Kind: kind, Won: won, Reason: "fraudulent"}
	}
	d, ok, err := f.s.ApplyDispute(ctx(t), word(refund.Opened, false))
	if err != nil || !ok || !d.Opened || d.Status != refund.DisputeOpen || d.TopUpID != tu.ID {
		t.Fatalf("dispute opened: %+v %v %v", d, ok, err)
	}
	st, _, err := f.s.Settings(ctx(t), a.ID)
	if err != nil || st.Enabled || st.DisabledReason != topup.Disputed {
		t.Fatalf("settings after the dispute: %+v %v", st, err)
	}
	_, _, err = f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "", "r1"))
	wantCode(t, err, apperr.Conflict, "")

	// The close comes before the funds' events, each twice.
	for _, w := range []refund.DisputeWord{word(refund.Closed, true), word(refund.Opened, false), word(refund.FundsWithdrawn, false),
		word(refund.FundsWithdrawn, false), word(refund.FundsReinstated, false), word(refund.Closed, true)} {
		if d, _, err = f.s.ApplyDispute(ctx(t), w); err != nil || d.Opened {
			t.Fatalf("dispute %s: %+v %v", w.Kind, d, err)
		}
	}
	if d.Status != refund.DisputeWon || !d.Reinstated || d.Withdrawn != amt(t, "40.00") {
		t.Fatalf("dispute at the end %+v", d)
	}
	drawn, back := f.kindEntries(a.ID, ledger.KindDispute), f.kindEntries(a.ID, ledger.KindDisputeReversal)
	if len(drawn) != 1 || drawn[0].Amount != -amt(t, "40.00") || len(back) != 1 || back[0].Amount != amt(t, "40.00") {
		t.Fatalf("dispute entries %+v and %+v", drawn, back)
	}
	if got := f.balance(a.ID); got != amt(t, "40.00") {
		t.Fatalf("balance after a won dispute %v", got)
	}
	notes, err := f.s.Notifications(ctx(t), a.ID, 10)
	disputed := 0
	for _, n := range notes {
		if n.Type == "top_up.disputed" {
			disputed++
		}
	}
	if err != nil || disputed != 1 {
		t.Fatalf("top_up.disputed told %d times: %+v %v", disputed, notes, err)
	}
	ds, err := f.s.ListDisputes(ctx(t), a.ID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("disputes %+v %v", ds, err)
	}
	// Closed: a refund is accepted again, of what the won dispute gave back.
	if r, _, err := f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "", "r2")); err != nil || r.Amount != amt(t, "40.00") {
		t.Fatalf("refund after the dispute: %+v %v", r, err)
	}
	f.verifyClean()
}

// testDisputeLostAfterRefund: a dispute withdraws at most what refunds
// left of the top-up, and a lost one keeps it.
func testDisputeLostAfterRefund(t *testing.T, f *fixture) {
	a := f.account("lost@example.com")
	if _, err := f.card(a.ID, "pm_1"); err != nil {
		t.Fatal(err)
	}
	tu := f.settled(a.ID, "40.00", "k1")
	r, _, err := f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "15.00", "r1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.ApplyRefund(ctx(t), refund.Word{RefundID: r.ID, ProviderID: "re_1", Status: refund.Succeeded}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []refund.DisputeEventKind{refund.FundsWithdrawn, refund.Opened, refund.Closed} {
		if _, _, err := f.s.ApplyDispute(ctx(t), refund.DisputeWord{ProviderID: "dp_2", ChargeID: "ch_k1", AmountMinor: 4000, Kind: k}); err != nil {
			t.Fatal(err)
		}
	}
	if drawn := f.kindEntries(a.ID, ledger.KindDispute); len(drawn) != 1 || drawn[0].Amount != -amt(t, "25.00") {
		t.Fatalf("dispute entries %+v: want 25.00, what the refund left", drawn)
	}
	if got := f.balance(a.ID); got != 0 {
		t.Fatalf("balance %v, want 0", got)
	}
	_, _, err = f.s.CreateRefund(ctx(t), f.refundReq(a.ID, tu.ID, "", "r2"))
	wantCode(t, err, apperr.Invalid, "amount")
	f.verifyClean()
}
