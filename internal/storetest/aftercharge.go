package storetest

import (
	"fmt"
	"testing"

	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/sqlstore"
)

// testAfterCharge: the console's top-up history reads the refunds and
// disputes of a page of top-ups in one call, each under its top-up, never
// another account's; an empty page reads nothing and a page longer than
// the bound is refused.
func testAfterCharge(t *testing.T, f *fixture) {
	a, other := f.account("history@example.com"), f.account("other@example.com")
	for i, acct := range []string{a.ID, other.ID} {
		if _, err := f.card(acct, fmt.Sprintf("pm_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	refunded, disputed, quiet := f.settled(a.ID, "10.00", "ac1"), f.settled(a.ID, "20.00", "ac2"), f.settled(a.ID, "5.00", "ac3")
	foreign := f.settled(other.ID, "10.00", "ac4")
	for _, w := range []refund.Word{
		{ProviderID: "re_ac1_a", ChargeID: "ch_ac1", AmountMinor: 300, Status: refund.Succeeded},
		{ProviderID: "re_ac1_b", ChargeID: "ch_ac1", AmountMinor: 200, Status: refund.Pending},
	} {
		if _, ok, err := f.s.ApplyRefund(ctx(t), w); err != nil || !ok {
			t.Fatalf("refund %s: %v %v", w.ProviderID, ok, err)
		}
	}
	for _, w := range []refund.DisputeWord{
		{ProviderID: "dp_ac2", ChargeID: "ch_ac2", AmountMinor: 2000, Kind: refund.FundsWithdrawn, Reason: "fraudulent"},
		{ProviderID: "dp_ac4", ChargeID: "ch_ac4", AmountMinor: 1000, Kind: refund.Opened},
	} {
		if _, ok, err := f.s.ApplyDispute(ctx(t), w); err != nil || !ok {
			t.Fatalf("dispute %s: %v %v", w.ProviderID, ok, err)
		}
	}

	refunds, disputes, err := f.s.AfterCharge(ctx(t), a.ID, []string{refunded.ID, disputed.ID, quiet.ID, foreign.ID})
	if err != nil {
		t.Fatal(err)
	}
	rs := refunds[refunded.ID]
	if len(refunds) != 1 || len(rs) != 2 || rs[0].Amount != amt(t, "2.00") || rs[0].Status != refund.Pending ||
		rs[1].Amount != amt(t, "3.00") || rs[1].Status != refund.Succeeded {
		t.Errorf("refunds %+v: want the pending 2.00 then the succeeded 3.00 of %s", refunds, refunded.ID)
	}
	ds := disputes[disputed.ID]
	if len(disputes) != 1 || len(ds) != 1 || ds[0].Status != refund.DisputeOpen || ds[0].Withdrawn != amt(t, "20.00") || ds[0].Reason != "fraudulent" {
		t.Errorf("disputes %+v: want the open one of %s, 20.00 withdrawn, and not the other account's", disputes, disputed.ID)
	}
	if r, d, err := f.s.AfterCharge(ctx(t), a.ID, nil); err != nil || len(r) != 0 || len(d) != 0 {
		t.Errorf("an empty page: %v %v %v", r, d, err)
	}
	tooMany := make([]string, sqlstore.MaxAfterChargeTopUps+1)
	if _, _, err := f.s.AfterCharge(ctx(t), a.ID, tooMany); err == nil {
		t.Errorf("a page of %d top-ups was read", len(tooMany))
	}
	f.verifyClean()
}
