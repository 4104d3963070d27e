package topup_test

import (
	"testing"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
)

func closeAccount(t *testing.T, e *topuptest.Env, id string) {
	t.Helper()
	closed := ledger.Closed
	if _, err := e.Store.UpdateAccount(t.Context(), id, ledger.AccountUpdate{Status: &closed}); err != nil {
		t.Fatal(err)
	}
}

// TestClosingCancelsWhatWasNotAttempted: closing an account cancels its
// automatic top-up that was never attempted (account_closed) and switches
// Automatic Top-Up off; the engine then charges nothing.
func TestClosingCancelsWhatWasNotAttempted(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, id := crossed(t, e, e.Sandbox, "pm_card_visa")
		closeAccount(t, e, acct.ID)
		wantStatus(t, e.TopUp(id), topup.Canceled, topup.AccountClosed)
		if st, _ := e.Settings(acct.ID); st.Enabled || st.DisabledReason != topup.AccountClosed {
			t.Fatalf("settings %+v, want off with account_closed", st)
		}
		if n := len(e.Notes(acct.ID, "auto_top_up.disabled")); n != 1 {
			t.Errorf("%d auto_top_up.disabled notifications, want 1", n)
		}
		e.RunOnce(e.Engine(e.Sandbox))
		if n := len(e.SandboxCharges()); n != 0 {
			t.Fatalf("%d charges of a closed account", n)
		}
		e.Verify()
	})
}

// TestEngineNeverChargesAClosedAccount: a top-up of a closed account that
// was never attempted (one that raced the close) is canceled when the
// engine picks it up, never charged.
func TestEngineNeverChargesAClosedAccount(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, id := crossed(t, e, e.Sandbox, "pm_card_visa")
		// The close as the engine may find it: committed, with the
		// top-up still pending (created by a transaction that raced it).
		if _, err := e.Store.DB().ExecContext(t.Context(), `UPDATE accounts SET status = 'closed' WHERE id = $1`, acct.ID); err != nil {
			t.Fatal(err)
		}
		e.RunOnce(e.Engine(e.Sandbox))
		wantStatus(t, e.TopUp(id), topup.Canceled, topup.AccountClosed)
		if n := len(e.SandboxCharges()); n != 0 {
			t.Fatalf("%d charges of a closed account", n)
		}
		e.Verify()
	})
}

// TestClosingLetsAnAttemptedTopUpFinish: a top-up already attempted when
// the account closes (its answer lost) is still driven to its outcome and
// credited once.
func TestClosingLetsAnAttemptedTopUpFinish(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, id := crossed(t, e, e.Scripted, "pm_card_visa")
		e.Faults.Script(topuptest.LoseResponse())
		eng := e.Engine(e.Scripted)
		e.RunOnce(eng)
		tu := e.TopUp(id)
		wantStatus(t, tu, topup.Processing, "")
		closeAccount(t, e, acct.ID)
		wantStatus(t, e.TopUp(id), topup.Processing, "")
		e.Clock.Advance(tu.NextAttemptAt.Sub(e.Clock.Now()) + time.Second)
		e.RunOnce(eng)
		tu = e.TopUp(id)
		wantStatus(t, tu, topup.Succeeded, "")
		if n := len(e.SandboxCharges()); n != 1 {
			t.Fatalf("%d charges, want 1", n)
		}
		wantCredits(t, e, acct.ID, tu)
		e.Verify()
	})
}
