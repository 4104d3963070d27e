package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
)

func (f *fixture) card(accountID, id string) (topup.Card, error) {
	return f.s.AddCard(ctx(f.t), accountID, payment.Card{ID: id, Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2034})
}

func (f *fixture) cardCount(accountID string) int {
	f.t.Helper()
	cards, err := f.s.Cards(ctx(f.t), accountID)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(cards)
}

// testCardLimit: an account holds at most ledger.MaxPaymentMethods cards;
// two saves racing at one below the limit do not both pass.
func testCardLimit(t *testing.T, f *fixture) {
	a := f.account("cards@example.com")
	for i := range ledger.MaxPaymentMethods - 1 {
		if _, err := f.card(a.ID, fmt.Sprintf("pm_%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = f.card(a.ID, fmt.Sprintf("pm_race_%d", i)) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two saves racing at %d cards: %v, %v; want exactly one refused", ledger.MaxPaymentMethods-1, errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil {
			wantCode(t, err, apperr.LimitExceeded, "")
		}
	}
	_, err := f.card(a.ID, "pm_one_more")
	wantCode(t, err, apperr.LimitExceeded, "")
	if n := f.cardCount(a.ID); n != ledger.MaxPaymentMethods {
		t.Fatalf("%d cards saved, want %d", n, ledger.MaxPaymentMethods)
	}
}

// testBudgetAndEndpointLimits: one budget or endpoint more than the limit
// is refused and not saved.
func testBudgetAndEndpointLimits(t *testing.T, f *fixture) {
	a := f.account("limits@example.com")
	for i := range ledger.MaxBudgets {
		s := fmt.Sprintf("s%d", i)
		if _, err := f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Subject: &s, Kind: ptr("unlimited")}); err != nil {
			t.Fatal(err)
		}
	}
	s := "one-more"
	_, err := f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Subject: &s, Kind: ptr("unlimited")})
	wantCode(t, err, apperr.LimitExceeded, "")
	bs, _, err := f.s.Budgets(ctx(t), a.ID, ledger.Page{Limit: 100})
	if err != nil || len(bs) != ledger.MaxBudgets {
		t.Fatalf("%d budgets (%v), want %d", len(bs), err, ledger.MaxBudgets)
	}
	for i := range ledger.MaxWebhookEndpoints {
		if _, err := f.s.CreateEndpoint(ctx(t), a.ID, fmt.Sprintf("https://93.184.215.14/h%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.s.CreateEndpoint(ctx(t), a.ID, "https://93.184.215.14/one-more")
	wantCode(t, err, apperr.LimitExceeded, "")
	es, _, err := f.s.Endpoints(ctx(t), a.ID, ledger.Page{Limit: 100})
	if err != nil || len(es) != ledger.MaxWebhookEndpoints {
		t.Fatalf("%d endpoints (%v), want %d", len(es), err, ledger.MaxWebhookEndpoints)
	}
}

func ptr[T any](v T) *T { return &v }

// testRemovedCardStaysRemoved: a removed card is never saved again, and a
// setup session brings its card in once.
func testRemovedCardStaysRemoved(t *testing.T, f *fixture) {
	a := f.account("removed@example.com")
	c := payment.Card{ID: "pm_setup", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2034}
	used, err := f.s.SetupSessionUsed(ctx(t), "cs_1")
	if err != nil || used {
		t.Fatalf("a new session used = %v (%v)", used, err)
	}
	if _, err := f.s.AddSetupCard(ctx(t), a.ID, "cs_1", c); err != nil {
		t.Fatal(err)
	}
	if used, err := f.s.SetupSessionUsed(ctx(t), "cs_1"); err != nil || !used {
		t.Fatalf("the session after its card was saved: used = %v (%v)", used, err)
	}
	_, err = f.s.AddSetupCard(ctx(t), a.ID, "cs_1", c)
	wantCode(t, err, apperr.Conflict, "session_id")
	// The same card again (a provider event) is the same card, not a second.
	if got, err := f.s.AddCard(ctx(t), a.ID, c); err != nil || !got.Default {
		t.Fatalf("saving the same card again: %+v %v", got, err)
	}
	if n := f.cardCount(a.ID); n != 1 {
		t.Fatalf("%d cards, want 1", n)
	}
	if _, err := f.s.RemoveCard(ctx(t), a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.AddCard(ctx(t), a.ID, c)
	wantCode(t, err, apperr.Conflict, "payment_method")
	_, err = f.s.AddSetupCard(ctx(t), a.ID, "cs_2", c)
	wantCode(t, err, apperr.Conflict, "payment_method")
	if n := f.cardCount(a.ID); n != 0 {
		t.Fatalf("the removed card came back: %d cards", n)
	}
}

// testClosedAccountWrites: closing switches Automatic Top-Up off with
// account_closed (audited, the customer told) in the same transaction, and
// the store refuses every setup write of a closed account while it allows
// what winds it down.
func testClosedAccountWrites(t *testing.T, f *fixture) {
	a := f.account("closed@example.com")
	if _, err := f.card(a.ID, "pm_a"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.card(a.ID, "pm_b"); err != nil {
		t.Fatal(err)
	}
	f.postOK(credit(a.ID, amt(t, "30"), "c1"))
	on := true
	if _, _, err := f.s.SaveSettings(ctx(t), a.ID, "test", topup.Input{Enabled: &on, Threshold: ptr(amt(t, "5")), Target: ptr(amt(t, "20"))},
		amt(t, "10000")); err != nil {
		t.Fatal(err)
	}
	b, err := f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Kind: ptr("unlimited")})
	if err != nil {
		t.Fatal(err)
	}
	closed := ledger.Closed
	if _, err := f.s.UpdateAccount(ctx(t), a.ID, ledger.AccountUpdate{Status: &closed}); err != nil {
		t.Fatal(err)
	}
	st, _, err := f.s.Settings(ctx(t), a.ID)
	if err != nil || st.Enabled || st.DisabledReason != topup.AccountClosed {
		t.Fatalf("settings after close: %+v %v; want off with account_closed", st, err)
	}
	notes, err := f.s.Notifications(ctx(t), a.ID, 10)
	if err != nil || len(notes) != 1 || notes[0].Type != "auto_top_up.disabled" || string(notes[0].Data) != `{"reason":"account_closed"}` {
		t.Fatalf("notifications after close: %+v %v", notes, err)
	}
	audit, err := f.s.SettingsAudit(ctx(t), a.ID, 10)
	if err != nil || len(audit) != 2 || audit[0].Actor != "system:account_closed" {
		t.Fatalf("audit after close: %+v %v", audit, err)
	}
	if ok, reason, _, err := f.s.Spendable(ctx(t), a.ID, ""); ok || reason != ledger.ReasonAccountClosed || err != nil {
		t.Fatalf("spendable of a closed account: %v %q %v", ok, reason, err)
	}

	for name, err := range map[string]error{
		"settings": func() error {
			_, _, err := f.s.SaveSettings(ctx(t), a.ID, "test", topup.Input{Enabled: &on, Threshold: ptr(amt(t, "5")), Target: ptr(amt(t, "20"))}, amt(t, "10000"))
			return err
		}(),
		"card":    func() error { _, err := f.card(a.ID, "pm_c"); return err }(),
		"default": func() error { _, err := f.s.SetDefaultCard(ctx(t), a.ID, "pm_b"); return err }(),
		"manual": func() error {
			_, _, err := f.s.CreateManual(ctx(t), a.ID, amt(t, "10"), "", "k", "h", 0)
			return err
		}(),
		"budget": func() error {
			s := "gpu"
			_, err := f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Subject: &s, Kind: ptr("unlimited")})
			return err
		}(),
		"budget change": func() error {
			_, err := f.s.UpdateBudget(ctx(t), a.ID, b.ID, alert.BudgetInput{Kind: ptr("monthly"), Limit: ptr(amt(t, "10"))})
			return err
		}(),
		"alerts":   func() error { _, err := f.s.SetLowBalanceAlerts(ctx(t), a.ID, nil); return err }(),
		"endpoint": func() error { _, err := f.s.CreateEndpoint(ctx(t), a.ID, "https://93.184.215.14/h"); return err }(),
	} {
		if apperr.CodeOf(err) != apperr.AccountClosed {
			t.Errorf("%s on a closed account: %v; want account_closed", name, err)
		}
	}
	if n := f.cardCount(a.ID); n != 2 {
		t.Errorf("%d cards after refusals, want 2", n)
	}
	if _, err := f.s.RemoveCard(ctx(t), a.ID, "pm_b"); err != nil {
		t.Errorf("removing a card of a closed account: %v", err)
	}
	if err := f.s.DeleteBudget(ctx(t), a.ID, b.ID); err != nil {
		t.Errorf("removing a budget of a closed account: %v", err)
	}
}
