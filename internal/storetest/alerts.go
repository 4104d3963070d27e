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
	f.changeAndDelete(a.ID, b.ID, wide.ID)
}

// changeAndDelete raises budget id's limit, deletes it, and checks that
// another account cannot delete the account's budget wide.
func (f *fixture) changeAndDelete(acct, id, wide string) {
	t := f.t
	t.Helper()
	up, err := f.s.UpdateBudget(ctx(t), acct, id, alert.BudgetInput{Limit: ptr(amt(t, "12.00"))})
	if err != nil || *up.Limit != amt(t, "12.00") || up.Kind != alert.Monthly {
		t.Errorf("update: %+v, %v", up, err)
	}
	if err := f.s.DeleteBudget(ctx(t), acct, id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Budget(ctx(t), acct, id); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a deleted budget: %v; want not_found", err)
	}
	if err := f.s.DeleteBudget(ctx(t), f.account("other@example.com").ID, wide); apperr.CodeOf(err) != apperr.NotFound {
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

// budget creates a budget that must be valid ("" subject: account-wide; ""
// limit: none).
func (f *fixture) budget(acct, subject, kind, limit string) alert.Budget {
	f.t.Helper()
	in := alert.BudgetInput{Kind: &kind}
	if subject != "" {
		in.Subject = &subject
	}
	if limit != "" {
		in.Limit = ptr(amt(f.t, limit))
	}
	b, err := f.s.CreateBudget(ctx(f.t), acct, in)
	if err != nil {
		f.t.Fatalf("create budget %s %s %s: %v", subject, kind, limit, err)
	}
	return b
}

// testBudgetAndAlertRows: one budget per subject and one account-wide;
// another account's budget is not found; refused thresholds save nothing;
// the account's flags follow the rows, and Verify checks that they do.
func testBudgetAndAlertRows(t *testing.T, f *fixture) {
	a, other := f.account("rows@example.com"), f.account("other@example.com")
	f.budget(a.ID, "", "monthly", "10")
	f.budget(a.ID, "key_a", "unlimited", "")
	sub := "key_a"
	for _, in := range []alert.BudgetInput{{Kind: ptr("monthly"), Limit: ptr(amt(t, "5"))}, {Subject: &sub, Kind: ptr("monthly"), Limit: ptr(amt(t, "5"))}} {
		if _, err := f.s.CreateBudget(ctx(t), a.ID, in); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("a second budget %+v: %v, want conflict", in, err)
		}
	}
	if bs, _, _ := f.s.Budgets(ctx(t), a.ID, ledger.Page{Limit: 10}); len(bs) != 2 {
		t.Fatalf("%d budgets after refusals, want 2", len(bs))
	}
	ob := f.budget(other.ID, "", "unlimited", "")
	if _, err := f.s.Budget(ctx(t), a.ID, ob.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a foreign budget: %v", err)
	}
	if err := f.s.DeleteBudget(ctx(t), a.ID, ob.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("deleting a foreign budget: %v", err)
	}
	f.alertFlagsFollowRows(a.ID)
}

// alertFlagsFollowRows: refused thresholds save nothing; with its
// thresholds and budgets removed, the account's flags are clear, and Verify
// notices a flag that disagrees with the rows.
func (f *fixture) alertFlagsFollowRows(acct string) {
	t := f.t
	t.Helper()
	if _, err := f.s.SetLowBalanceAlerts(ctx(t), acct, []money.Amount{amt(t, "20")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.SetLowBalanceAlerts(ctx(t), acct, []money.Amount{amt(t, "20"), amt(t, "22")}); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("thresholds 2.00 apart: %v", err)
	}
	ts, err := f.s.LowBalanceAlerts(ctx(t), acct)
	if err != nil || len(ts) != 1 || ts[0].Amount != amt(t, "20") {
		t.Fatalf("thresholds after a refusal: %+v %v", ts, err)
	}
	if _, err := f.s.SetLowBalanceAlerts(ctx(t), acct, nil); err != nil {
		t.Fatal(err)
	}
	bs, _, _ := f.s.Budgets(ctx(t), acct, ledger.Page{Limit: 10})
	for _, b := range bs {
		if err := f.s.DeleteBudget(ctx(t), acct, b.ID); err != nil {
			t.Fatal(err)
		}
	}
	f.flagsVerified(acct)
}

// flagsVerified: with no thresholds and no budgets the account's flags are
// clear, and Verify notices a flag that disagrees with the rows.
func (f *fixture) flagsVerified(acct string) {
	t := f.t
	t.Helper()
	db := f.s.DB()
	var alerts string
	var budgets bool
	if err := db.QueryRowContext(ctx(t), `SELECT low_balance_alerts, has_budgets FROM accounts WHERE id = $1`, acct).Scan(&alerts, &budgets); err != nil || alerts != "" || budgets {
		t.Fatalf("the row after removing everything: alerts %q budgets %v (%v)", alerts, budgets, err)
	}
	f.verifyClean()
	if _, err := db.ExecContext(ctx(t), `UPDATE accounts SET has_budgets = $1 WHERE id = $2`, true, acct); err != nil {
		t.Fatal(err)
	}
	v, err := f.s.Verify(ctx(t))
	if err != nil || len(v) != 1 || v[0].AccountID != acct {
		t.Fatalf("verify after corrupting a flag: %+v %v", v, err)
	}
}

// testBudgetSpendVerified: Verify recomputes each budget's spend from the
// usage since it began, and reports a spend that disagrees.
func testBudgetSpendVerified(t *testing.T, f *fixture) {
	a := f.account("spent@example.com")
	f.postOK(credit(a.ID, amt(t, "100"), "c1"))
	f.postOK(usage(a.ID, amt(t, "3"), "u1")) // before the budget: not counted
	b := f.budget(a.ID, "", "one_time", "10")
	f.postOK(usage(a.ID, amt(t, "2"), "u2"))
	f.verifyClean()
	if _, err := f.s.DB().ExecContext(ctx(t), `UPDATE budgets SET spent = spent + 1 WHERE id = $1`, b.ID); err != nil {
		t.Fatal(err)
	}
	v, err := f.s.Verify(ctx(t))
	if err != nil || len(v) != 1 || v[0].AccountID != a.ID {
		t.Fatalf("verify after corrupting a spend: %+v %v", v, err)
	}
}
