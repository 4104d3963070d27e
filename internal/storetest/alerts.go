package storetest

import (
	"testing"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// Low balance alerts and budgets: what is saved reads back, the rules
// refuse what they must, and Spendable sees the balance and the budgets.

// testThresholds: thresholds read back largest first; a list the rules
// refuse changes nothing.
func testThresholds(t *testing.T, f *fixture) {
	a := f.account("thresholds@example.com")
	got, err := f.s.SetLowBalanceAlerts(ctx(t), a.ID, []money.Amount{amt(t, "5.00"), amt(t, "20.00")})
	if err != nil || len(got) != 2 {
		t.Fatalf("save thresholds: %+v, %v", got, err)
	}
	read, err := f.s.LowBalanceAlerts(ctx(t), a.ID)
	if err != nil || len(read) != 2 || read[0].Amount != amt(t, "20.00") || read[1].Amount != amt(t, "5.00") {
		t.Fatalf("thresholds read %+v, %v; want 20.00 then 5.00", read, err)
	}
	if _, err := f.s.SetLowBalanceAlerts(ctx(t), a.ID, []money.Amount{amt(t, "5.00"), amt(t, "5.00")}); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("a repeated threshold: %v; want invalid", err)
	}
	if read, _ := f.s.LowBalanceAlerts(ctx(t), a.ID); len(read) != 2 {
		t.Errorf("a refused save changed the thresholds to %+v", read)
	}
	if _, err := f.s.SetLowBalanceAlerts(ctx(t), a.ID, nil); err != nil {
		t.Fatal(err)
	}
	if read, err := f.s.LowBalanceAlerts(ctx(t), a.ID); err != nil || len(read) != 0 {
		t.Errorf("cleared thresholds read %+v, %v", read, err)
	}
	if _, err := f.s.LowBalanceAlerts(ctx(t), "acct_nobody"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("an unknown account's thresholds: %v; want not_found", err)
	}
}

// testBudgetsCRUD: a budget is created, read, listed, changed and deleted;
// a second budget for a subject conflicts.
func testBudgetsCRUD(t *testing.T, f *fixture) {
	a := f.account("budgets@example.com")
	sub := "gpt"
	b, err := f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Subject: &sub, Kind: ptr("monthly"), Limit: ptr(amt(t, "10.00"))})
	if err != nil || b.Subject != sub || b.Kind != alert.Monthly || *b.Limit != amt(t, "10.00") {
		t.Fatalf("create: %+v, %v", b, err)
	}
	_, err = f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Subject: &sub, Kind: ptr("unlimited")})
	wantCode(t, err, apperr.Conflict, "")
	wide, err := f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Kind: ptr("one_time"), Limit: ptr(amt(t, "100.00"))})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.Budget(ctx(t), a.ID, b.ID); err != nil || got.ID != b.ID || got.Spent != 0 {
		t.Errorf("read: %+v, %v", got, err)
	}
	list, more, err := f.s.Budgets(ctx(t), a.ID, ledger.Page{Limit: 1})
	if err != nil || !more || len(list) != 1 || list[0].ID != wide.ID {
		t.Errorf("first page %+v, more %v, %v; want the newest", list, more, err)
	}
	up, err := f.s.UpdateBudget(ctx(t), a.ID, b.ID, alert.BudgetInput{Limit: ptr(amt(t, "12.00"))})
	if err != nil || *up.Limit != amt(t, "12.00") || up.Kind != alert.Monthly {
		t.Errorf("update: %+v, %v", up, err)
	}
	if err := f.s.DeleteBudget(ctx(t), a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Budget(ctx(t), a.ID, b.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a deleted budget: %v; want not_found", err)
	}
	if err := f.s.DeleteBudget(ctx(t), f.account("other@example.com").ID, wide.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("another account deletes the budget: %v; want not_found", err)
	}
}

// testSpendable: an account may spend while its balance is above zero and
// no budget covering the usage is exhausted.
func testSpendable(t *testing.T, f *fixture) {
	a := f.account("spend@example.com")
	if ok, _, _, err := f.s.Spendable(ctx(t), a.ID, ""); err != nil || ok {
		t.Errorf("an empty account may spend: %v, %v", ok, err)
	}
	f.postOK(credit(a.ID, amt(t, "10.00"), "c1"))
	sub := "gpt"
	b, err := f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Subject: &sub, Kind: ptr("one_time"), Limit: ptr(amt(t, "2.00"))})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _, err := f.s.Spendable(ctx(t), a.ID, sub); err != nil || !ok {
		t.Errorf("within budget: %v, %v; want spendable", ok, err)
	}
	p := usage(a.ID, amt(t, "2.00"), "u1")
	p.Subject = sub
	f.postOK(p)
	ok, reason, stop, err := f.s.Spendable(ctx(t), a.ID, sub)
	if err != nil || ok || reason == "" || stop == nil || stop.ID != b.ID {
		t.Errorf("an exhausted budget: %v, %q, %+v, %v; want it named", ok, reason, stop, err)
	}
	if ok, _, _, err := f.s.Spendable(ctx(t), a.ID, "other"); err != nil || !ok {
		t.Errorf("another subject: %v, %v; want spendable", ok, err)
	}
	if _, _, _, err := f.s.Spendable(ctx(t), "acct_nobody", ""); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("an unknown account: %v; want not_found", err)
	}
}
