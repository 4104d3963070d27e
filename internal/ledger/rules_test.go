package ledger_test

import (
	"testing"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
)

// TestMay: a closed account refuses what adds or spends money or changes
// its setup, and allows what winds it down; an active one allows all.
func TestMay(t *testing.T) {
	t.Parallel()
	active := ledger.Account{ID: "a", Status: ledger.Active, Balance: 1}
	closed := ledger.Account{ID: "c", Status: ledger.Closed, Balance: 1}
	for _, act := range []ledger.Action{ledger.ActUsage, ledger.ActCredit, ledger.ActTopUp, ledger.ActCharge, ledger.ActSettings,
		ledger.ActAddCard, ledger.ActSetDefault, ledger.ActBudget, ledger.ActAlerts, ledger.ActEndpoint, ledger.ActCreateKey,
		ledger.ActLoginLink, ledger.ActHold} {
		if err := active.May(act); err != nil {
			t.Errorf("active account may not %s: %v", act, err)
		}
		if err := closed.May(act); apperr.CodeOf(err) != apperr.AccountClosed {
			t.Errorf("closed account may %s: %v", act, err)
		}
	}
	for _, act := range []ledger.Action{ledger.ActRevokeKey, ledger.ActRemoveCard, ledger.ActDeleteBudget, ledger.ActDeleteEndpoint,
		ledger.ActReleaseHold, ledger.ActProviderEvent} {
		if err := closed.May(act); err != nil {
			t.Errorf("closed account may not %s (winding down): %v", act, err)
		}
	}
	for _, tt := range []struct {
		a    ledger.Account
		want string
	}{
		{active, ""},
		{ledger.Account{Status: ledger.Active}, ledger.ReasonInsufficientBalance},
		{closed, ledger.ReasonAccountClosed},
	} {
		if got := tt.a.StopReason(); got != tt.want || tt.a.Spendable() != (tt.want == "") {
			t.Errorf("%+v: StopReason %q Spendable %v; want %q", tt.a, got, tt.a.Spendable(), tt.want)
		}
	}
	if err := ledger.CheckLimit("cards", 19, 20); err != nil {
		t.Errorf("19 of 20: %v", err)
	}
	if err := ledger.CheckLimit("cards", 20, 20); apperr.CodeOf(err) != apperr.LimitExceeded {
		t.Errorf("20 of 20: %v; want limit_exceeded", err)
	}
}
