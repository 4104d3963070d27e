package topup_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
)

// crossed makes an account with a card from p, Automatic Top-Up at 10.00 →
// 25.00, and a debit to 8.00 that created a top-up, whose id it returns.
func crossed(t *testing.T, e *topuptest.Env, p payment.Provider, token string) (ledger.Account, string) {
	t.Helper()
	acct := e.Account()
	e.Card(p, acct.ID, token)
	e.Credit(acct.ID, "12.00")
	e.Enable(acct.ID, "10.00", "25.00")
	id := e.Use(acct.ID, "4.00").TopUpID
	if id == "" {
		t.Fatal("the crossing created no top-up")
	}
	return acct, id
}

// slowSandbox is the sandbox on e's store with every charge taking 300 ms,
// so that an engine with a shorter ChargeTimeout loses the answer of a
// charge that was made, as after a network timeout.
func slowSandbox(e *topuptest.Env) *sandbox.Provider {
	return sandbox.New(e.Store.Sandbox, sandbox.Config{Latency: 300 * time.Millisecond, Clock: e.Clock, IDs: e.IDs})
}

func chargeTimeout(d time.Duration) func(*topup.Config) {
	return func(c *topup.Config) { c.ChargeTimeout = d }
}

// TestLostResponse: the provider charged but the answer was lost. The
// top-up stays processing with a later attempt, is never abandoned (not even
// when the balance recovers), and the retry sends the same key: one charge,
// one credit.
func TestLostResponse(t *testing.T) {
	t.Parallel()
	t.Run("fake", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct, id := crossed(t, e, e.Scripted, "pm_card_visa")
			e.Faults.Script(topuptest.LoseResponse())
			eng := e.Engine(e.Scripted)
			e.RunOnce(eng)
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Processing, "")
			if !tu.NextAttemptAt.After(e.Clock.Now()) {
				t.Fatalf("next attempt at %v, not after now %v", tu.NextAttemptAt, e.Clock.Now())
			}
			if n := e.RunOnce(eng); n != 0 {
				t.Fatalf("retried %d top-ups before the next attempt time", n)
			}
			wantCredits(t, e, acct.ID)
			e.Credit(acct.ID, "100.00") // the balance recovers: a charge may have been made, so no cancel
			e.Clock.Advance(tu.NextAttemptAt.Sub(e.Clock.Now()))
			if n := e.RunOnce(eng); n != 1 {
				t.Fatalf("retried %d top-ups, want 1", n)
			}
			tu = e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			wantAmount(t, tu, "17.00")
			reqs := e.Faults.Requests()
			if len(reqs) != 2 || reqs[0] != reqs[1] {
				t.Fatalf("requests %+v: want the same request twice", reqs)
			}
			if n := len(e.SandboxCharges()); n != 1 {
				t.Fatalf("%d charges, want 1", n)
			}
			wantCredits(t, e, acct.ID, tu)
			wantBalance(t, e, acct.ID, "125.00")
			e.Verify()
		})
	})
	t.Run("sandbox timeout", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			p := slowSandbox(e)
			acct, id := crossed(t, e, p, "pm_card_visa")
			e.RunOnce(e.Engine(p, chargeTimeout(30*time.Millisecond)))
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Processing, "")
			if cs := e.SandboxCharges(); len(cs) != 1 || cs[0].Status != payment.Succeeded {
				t.Fatalf("sandbox log %+v: want the one charge made before the timeout", cs)
			}
			e.Clock.Advance(time.Minute)
			e.RunOnce(e.Engine(p))
			tu = e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			if cs := e.SandboxCharges(); len(cs) != 1 {
				t.Fatalf("%d sandbox charges after the retry, want 1", len(cs))
			}
			wantCredits(t, e, acct.ID, tu)
			e.Verify()
		})
	})
}

// TestKeyForgotten: Stripe forgets idempotency keys after 24 hours, so a
// retry more than a day after the first attempt looks the charge up by the
// top-up id in its metadata, sends nothing when it exists, and charges only
// when it does not.
func TestKeyForgotten(t *testing.T) {
	t.Parallel()
	t.Run("charged: found, not re-sent", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct, id := crossed(t, e, e.Scripted, "pm_card_visa")
			e.Faults.Script(topuptest.LoseResponse())
			eng := e.Engine(e.Scripted)
			e.RunOnce(eng)
			e.Clock.Advance(25 * time.Hour)
			e.RunOnce(eng)
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			if e.Faults.Finds() != 1 {
				t.Errorf("%d FindCharge calls, want 1", e.Faults.Finds())
			}
			if n := len(e.Faults.Requests()); n != 1 {
				t.Fatalf("%d charge requests, want 1: a charge found by its metadata is not sent again", n)
			}
			if n := len(e.SandboxCharges()); n != 1 {
				t.Fatalf("%d charges, want 1", n)
			}
			wantCredits(t, e, acct.ID, tu)
			e.Verify()
		})
	})
	t.Run("not charged: sent again", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct, id := crossed(t, e, e.Scripted, "pm_card_visa")
			e.Faults.Script(topuptest.FailBeforeCharge())
			eng := e.Engine(e.Scripted)
			e.RunOnce(eng)
			e.Clock.Advance(25 * time.Hour)
			e.RunOnce(eng)
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			if e.Faults.Finds() != 1 || len(e.Faults.Requests()) != 2 || len(e.SandboxCharges()) != 1 {
				t.Fatalf("%d finds, %d requests, %d charges; want 1, 2, 1", e.Faults.Finds(), len(e.Faults.Requests()), len(e.SandboxCharges()))
			}
			wantCredits(t, e, acct.ID, tu)
			e.Verify()
		})
	})
	t.Run("sandbox", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			p := slowSandbox(e)
			acct, id := crossed(t, e, p, "pm_card_visa")
			e.RunOnce(e.Engine(p, chargeTimeout(30*time.Millisecond)))
			e.Clock.Advance(25 * time.Hour)
			e.RunOnce(e.Engine(p))
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			if cs := e.SandboxCharges(); len(cs) != 1 {
				t.Fatalf("%d sandbox charges, want 1: %+v", len(cs), cs)
			}
			wantCredits(t, e, acct.ID, tu)
			e.Verify()
		})
	})
}

// TestProcessingCharge: a charge the provider has not decided is asked
// about by its id, never sent again, and credited once decided.
func TestProcessingCharge(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, id := crossed(t, e, e.Scripted, "pm_card_visa")
		e.Faults.Script(topuptest.Pending())
		eng := e.Engine(e.Scripted)
		e.RunOnce(eng)
		tu := e.TopUp(id)
		wantStatus(t, tu, topup.Processing, "")
		if tu.ChargeID == "" {
			t.Fatal("a processing charge's id was not kept")
		}
		e.Clock.Advance(time.Minute)
		e.RunOnce(eng)
		wantStatus(t, e.TopUp(id), topup.Processing, "")
		e.Decide(tu.ChargeID, payment.Succeeded, "")
		e.Clock.Advance(time.Minute)
		e.RunOnce(eng)
		tu = e.TopUp(id)
		wantStatus(t, tu, topup.Succeeded, "")
		if len(e.Faults.Requests()) != 1 || e.Faults.Gets() != 2 {
			t.Errorf("%d requests and %d look-ups, want 1 and 2", len(e.Faults.Requests()), e.Faults.Gets())
		}
		wantCredits(t, e, acct.ID, tu)
		e.Verify()
	})
}

// TestDeclineStreak: a declined top-up is final; the next one waits for the
// back-off (measured from the failure, honoured by debits and the sweep);
// three in a row switch Automatic Top-Up off with repeated_declines and tell
// the customer once.
func TestDeclineStreak(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, id := crossed(t, e, e.Sandbox, "pm_card_chargeDeclined")
		eng := e.Engine(e.Sandbox)
		e.RunOnce(eng)
		wantStatus(t, e.TopUp(id), topup.Failed, "card_declined")
		failedAt := e.Clock.Now()
		if st, _ := e.Settings(acct.ID); st.FailureStreak != 1 || !st.RetryAfter.Equal(failedAt.Add(topuptest.Backoff)) || !st.Enabled {
			t.Fatalf("after one decline: %+v", st)
		}

		if r := e.Use(acct.ID, "1.00"); r.TopUpID != "" {
			t.Fatal("a debit during the back-off created a top-up")
		}
		e.Clock.Advance(topuptest.Backoff - time.Minute)
		if got := e.Sweep(eng); len(got) != 0 {
			t.Fatalf("the sweep created %v a minute before the back-off ended", got)
		}
		e.Clock.Advance(time.Minute)
		second := e.Sweep(eng)
		if len(second) != 1 {
			t.Fatalf("the sweep created %v once the back-off ended, want one top-up", second)
		}
		e.RunOnce(eng)
		wantStatus(t, e.TopUp(second[0]), topup.Failed, "card_declined")

		e.Clock.Advance(topuptest.Backoff)
		third := e.Use(acct.ID, "0.01").TopUpID
		if third == "" {
			t.Fatal("a debit after the back-off created no top-up")
		}
		e.RunOnce(eng)
		wantStatus(t, e.TopUp(third), topup.Failed, "card_declined")
		st, _ := e.Settings(acct.ID)
		if st.Enabled || st.DisabledReason != topup.RepeatedDeclines {
			t.Fatalf("after three declines in a row: enabled %v reason %q, want off with repeated_declines", st.Enabled, st.DisabledReason)
		}
		if n := len(e.Notes(acct.ID, "auto_top_up.disabled")); n != 1 {
			t.Errorf("%d auto_top_up.disabled notifications, want 1", n)
		}
		if n := len(e.Notes(acct.ID, "top_up.failed")); n != 3 {
			t.Errorf("%d top_up.failed notifications, want 3", n)
		}

		e.Clock.Advance(3 * topuptest.Backoff)
		e.RunOnce(eng)
		if r := e.Use(acct.ID, "1.00"); r.TopUpID != "" || len(e.Sweep(eng)) != 0 {
			t.Fatal("a top-up was created after Automatic Top-Up was switched off")
		}
		if n := len(e.SandboxCharges()); n != 3 {
			t.Errorf("%d sandbox charges, want 3", n)
		}
		wantCredits(t, e, acct.ID)
		e.Verify()
	})
}

// TestStreakResets: a success between declines, or a settings save, starts
// the count again.
func TestStreakResets(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, _ := crossed(t, e, e.Scripted, "pm_card_visa")
		d := topuptest.Decline("insufficient_funds")
		e.Faults.Script(d, d, topuptest.Succeed(), d, d, d)
		eng := e.Engine(e.Scripted)
		streak := func(want int) {
			t.Helper()
			st, _ := e.Settings(acct.ID)
			if st.FailureStreak != want || !st.Enabled {
				t.Fatalf("streak %d enabled %v (%q), want streak %d and still on", st.FailureStreak, st.Enabled, st.DisabledReason, want)
			}
		}
		next := func() {
			t.Helper()
			e.Clock.Advance(topuptest.Backoff)
			e.RunOnce(eng) // the sweep creates the next top-up, the pass charges it
		}
		e.RunOnce(eng)
		streak(1)
		next()
		streak(2)
		next() // succeeds
		streak(0)
		wantBalance(t, e, acct.ID, "25.00")
		e.Use(acct.ID, "16.00")
		e.RunOnce(eng)
		streak(1)
		next()
		streak(2)
		// The customer saves the settings: the count and the back-off
		// start again, and the save itself creates a top-up.
		if _, created := e.Enable(acct.ID, "10.00", "25.00"); created == nil {
			t.Fatal("a save below the threshold created no top-up: the back-off was not reset")
		}
		streak(0)
		e.RunOnce(eng)
		streak(1)
		if n := len(e.SandboxCharges()); n != 6 {
			t.Errorf("%d charges, want 6", n)
		}
		e.Verify()
	})
}

// TestCardNeverRetried: lost and stolen cards switch Automatic Top-Up off
// at the first decline with card_not_retryable.
func TestCardNeverRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ token, code string }{
		{"pm_card_chargeDeclinedLostCard", "lost_card"},
		{"pm_card_chargeDeclinedStolenCard", "stolen_card"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
				acct, id := crossed(t, e, e.Sandbox, tc.token)
				eng := e.Engine(e.Sandbox)
				e.RunOnce(eng)
				wantStatus(t, e.TopUp(id), topup.Failed, tc.code)
				st, _ := e.Settings(acct.ID)
				if st.Enabled || st.DisabledReason != topup.CardNotRetryable {
					t.Fatalf("after %s: enabled %v reason %q, want off with card_not_retryable", tc.code, st.Enabled, st.DisabledReason)
				}
				if n := len(e.Notes(acct.ID, "auto_top_up.disabled")); n != 1 {
					t.Errorf("%d auto_top_up.disabled notifications, want 1", n)
				}
				e.Clock.Advance(2 * topuptest.Backoff)
				e.RunOnce(eng)
				if r := e.Use(acct.ID, "1.00"); r.TopUpID != "" {
					t.Fatal("the card was charged again")
				}
				if n := len(e.SandboxCharges()); n != 1 {
					t.Errorf("%d sandbox charges, want 1", n)
				}
				e.Verify()
			})
		})
	}
}

// TestBackoffEndWakesEngine: the next automatic top-up after a decline is
// created and attempted at the engine's first pass after the back-off ends
// — not at its next sweep, 15 seconds later — on whichever replica, even
// one that did not see the decline: with a back-off of one second, three
// declines switch Automatic Top-Up off within about two seconds.
func TestBackoffEndWakesEngine(t *testing.T) {
	t.Parallel()
	const backoff = time.Second
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		fast := func(c *topup.Config) { c.RetryBackoff = backoff }
		a, b := e.Engine(e.Sandbox, fast), e.Engine(e.Sandbox, fast)
		e.RunOnce(b) // replica b's first pass (and sweep): nothing to do yet
		acct, first := crossed(t, e, e.Sandbox, "pm_card_chargeDeclined")
		if n := e.RunOnce(a); n != 1 {
			t.Fatalf("replica a attempted %d top-ups, want the crossing's", n)
		}
		wantStatus(t, e.TopUp(first), topup.Failed, "card_declined")

		// Replica b never saw that decline. Just before the back-off ends
		// nothing is due; once it has ended, b's next passes make and
		// attempt the next top-up (the first may only learn of the back-off).
		for failures := 1; failures < topup.MaxFailuresInRow; failures++ {
			e.Clock.Advance(backoff - time.Millisecond)
			if n := e.RunOnce(b); n != 0 {
				t.Fatalf("replica b attempted %d top-ups before the back-off ended", n)
			}
			e.Clock.Advance(time.Millisecond)
			attempted := e.RunOnce(b)
			if attempted == 0 {
				attempted = e.RunOnce(b)
			}
			if attempted != 1 {
				t.Fatalf("after decline %d, replica b attempted %d top-ups once the back-off ended; want 1 (not at the sweep 15 s later)", failures, attempted)
			}
		}
		list := e.TopUps(acct.ID)
		if len(list) != topup.MaxFailuresInRow {
			t.Fatalf("%d top-ups, want %d", len(list), topup.MaxFailuresInRow)
		}
		for _, tu := range list {
			wantStatus(t, tu, topup.Failed, "card_declined")
		}
		if st, _ := e.Settings(acct.ID); st.Enabled || st.DisabledReason != topup.RepeatedDeclines {
			t.Fatalf("after three declines: enabled %v reason %q, want off with repeated_declines", st.Enabled, st.DisabledReason)
		}
	})
}

// TestBackoffEndWakesWorker: the running worker (Start) sleeps until the
// back-off ends, not until its next sweep: on the wall clock, with a
// back-off of one second and a card that is always declined, each next
// top-up is created within 2 seconds of the back-off's end, and three
// declines switch Automatic Top-Up off within seconds (the 15-second sweep
// took 30 seconds and more).
func TestBackoffEndWakesWorker(t *testing.T) {
	t.Parallel()
	const backoff = time.Second
	for _, b := range topuptest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			e := topuptest.NewLiveEnv(t, b)
			passes := make(chan struct{}, 1)
			eng := e.Engine(e.Sandbox, func(c *topup.Config) {
				c.RetryBackoff = backoff
				c.OnPass = func(int, error) {
					select {
					case passes <- struct{}{}:
					default:
					}
				}
			})
			acct, _ := crossed(t, e, e.Sandbox, "pm_card_chargeDeclined")
			eng.Start()
			defer eng.Stop()
			deadline := time.After(10 * time.Second)
			for {
				if st, _ := e.Settings(acct.ID); !st.Enabled {
					if st.DisabledReason != topup.RepeatedDeclines {
						t.Fatalf("Automatic Top-Up off with %q, want repeated_declines", st.DisabledReason)
					}
					break
				}
				select {
				case <-passes:
				case <-deadline:
					t.Fatalf("Automatic Top-Up still on 10 s after the first decline; top-ups %+v", e.TopUps(acct.ID))
				}
			}
			list := e.TopUps(acct.ID)
			if len(list) != topup.MaxFailuresInRow {
				t.Fatalf("%d top-ups, want %d", len(list), topup.MaxFailuresInRow)
			}
			for i := 1; i < len(list); i++ {
				end := list[i-1].CompletedAt.Add(backoff)
				t.Logf("top-up %d created %v after its back-off ended", i+1, list[i].CreatedAt.Sub(end))
				if late := list[i].CreatedAt.Sub(end); late < 0 || late >= 2*time.Second {
					t.Errorf("top-up %d was created %v after its back-off ended; want within 2 s", i+1, late)
				}
			}
		})
	}
}

// TestActionTokensAreSecrets: the token of an action_url is a secret, not
// an id: two top-ups that need 3-D Secure in the same millisecond get
// tokens that share nothing guessable (ids minted so share their first
// characters), each with at least 128 random bits.
func TestActionTokensAreSecrets(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		_, first := crossed(t, e, e.Sandbox, "pm_card_authenticationRequired")
		_, second := crossed(t, e, e.Sandbox, "pm_card_authenticationRequired")
		e.RunOnce(e.Engine(e.Sandbox))
		var tokens []string
		for _, id := range []string{first, second} {
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.RequiresAction, "")
			raw, ok := ids.DecodeSecret("act_", tu.ActionToken)
			if !ok || len(raw) < 16 {
				t.Errorf("action token %q holds %d random bytes; want at least 16", tu.ActionToken, len(raw))
			}
			tokens = append(tokens, strings.TrimPrefix(tu.ActionToken, "act_"))
		}
		if len(tokens[0]) < 8 || len(tokens[1]) < 8 || tokens[0][:8] == tokens[1][:8] {
			t.Errorf("two action tokens of one millisecond begin alike: %s, %s", tokens[0], tokens[1])
		}
	})
}

// TestRequiresAction: a card that needs 3-D Secure leaves the top-up
// requires_action with its action token; completed before expiry it is
// credited once, left 24 hours it is canceled authentication_expired and
// counts as a failure in the row.
func TestRequiresAction(t *testing.T) {
	t.Parallel()
	t.Run("completed", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct, id := crossed(t, e, e.Sandbox, "pm_card_authenticationRequired")
			eng := e.Engine(e.Sandbox)
			e.RunOnce(eng)
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.RequiresAction, "")
			if tu.ActionToken == "" || tu.ClientSecret == "" || tu.ChargeID == "" || !tu.ActionExpires.Equal(e.Clock.Now().Add(topup.ActionTTL)) {
				t.Fatalf("requires_action top-up %+v: want an action token, the client secret, the charge and an expiry in 24 h", tu)
			}
			if n := len(e.Notes(acct.ID, "top_up.action_required")); n != 1 {
				t.Errorf("%d top_up.action_required notifications, want 1", n)
			}
			e.Clock.Advance(time.Hour)
			if n := e.RunOnce(eng); n != 0 {
				t.Fatalf("the worker attempted a top-up waiting for the customer %d times", n)
			}
			e.Clock.Advance(22 * time.Hour)
			ch, err := e.Sandbox.Authenticate(t.Context(), tu.ChargeID, true)
			if err != nil {
				t.Fatal(err)
			}
			o, ok := topup.ChargeOutcome(ch)
			if !ok {
				t.Fatalf("no outcome for authenticated charge %+v", ch)
			}
			if s := e.Settle(id, o); !s.Credited {
				t.Fatalf("the authenticated top-up was not credited: %+v", s)
			}
			if s := e.Settle(id, o); s.Changed || s.Credited {
				t.Fatalf("the page answered twice changed %+v", s)
			}
			e.Clock.Advance(2 * time.Hour)
			e.RunOnce(eng)
			tu = e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			if cs := e.SandboxCharges(); len(cs) != 1 {
				t.Fatalf("%d sandbox charges, want 1", len(cs))
			}
			wantCredits(t, e, acct.ID, tu)
			wantBalance(t, e, acct.ID, "25.00")
			e.Verify()
		})
	})
	t.Run("expires three times", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct, id := crossed(t, e, e.Sandbox, "pm_card_authenticationRequired")
			eng := e.Engine(e.Sandbox)
			for i := 1; i <= topup.MaxFailuresInRow; i++ {
				e.RunOnce(eng)
				wantStatus(t, e.TopUp(id), topup.RequiresAction, "")
				e.Clock.Advance(topup.ActionTTL - time.Second)
				e.Sweep(eng)
				wantStatus(t, e.TopUp(id), topup.RequiresAction, "")
				e.Clock.Advance(time.Second)
				e.Sweep(eng)
				wantStatus(t, e.TopUp(id), topup.Canceled, topup.AuthenticationExpired)
				st, _ := e.Settings(acct.ID)
				if st.FailureStreak != i {
					t.Fatalf("after %d expiries the streak is %d", i, st.FailureStreak)
				}
				e.Clock.Advance(topuptest.Backoff)
				created := e.Sweep(eng)
				if i < topup.MaxFailuresInRow {
					if len(created) != 1 {
						t.Fatalf("after expiry %d and the back-off, the sweep created %v", i, created)
					}
					id = created[0]
				} else if len(created) != 0 {
					t.Fatalf("the sweep created %v after Automatic Top-Up was switched off", created)
				}
			}
			st, _ := e.Settings(acct.ID)
			if st.Enabled || st.DisabledReason != topup.RepeatedDeclines {
				t.Fatalf("after %d expiries: enabled %v reason %q, want off with repeated_declines", topup.MaxFailuresInRow, st.Enabled, st.DisabledReason)
			}
			wantCredits(t, e, acct.ID)
			e.Verify()
		})
	})
	t.Run("authenticated after expiry", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct, id := crossed(t, e, e.Sandbox, "pm_card_authenticationRequired")
			eng := e.Engine(e.Sandbox)
			e.RunOnce(eng)
			e.Clock.Advance(topup.ActionTTL)
			e.Sweep(eng)
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Canceled, topup.AuthenticationExpired)
			// Expiry canceled the charge at the provider: the customer who
			// answers the challenge late pays nothing, and nothing is credited.
			ch, err := e.Sandbox.Authenticate(t.Context(), tu.ChargeID, true)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Status == payment.Succeeded {
				t.Fatalf("a late authentication took the money of an expired top-up: %+v", ch)
			}
			if o, ok := topup.ChargeOutcome(ch); ok {
				o.EventID, o.EventType = "evt_late", "payment_intent.payment_failed"
				e.Settle(id, o)
			}
			wantStatus(t, e.TopUp(id), topup.Canceled, topup.AuthenticationExpired)
			wantCredits(t, e, acct.ID)
			e.Verify()
		})
	})
	t.Run("authenticated just before expiry", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct, id := crossed(t, e, e.Sandbox, "pm_card_authenticationRequired")
			eng := e.Engine(e.Sandbox)
			e.RunOnce(eng)
			// The customer pays, but Topup hears of it only at expiry (no
			// webhook, no page reload): the sweep finds the charge paid and
			// credits it instead of canceling.
			if _, err := e.Sandbox.Authenticate(t.Context(), e.TopUp(id).ChargeID, true); err != nil {
				t.Fatal(err)
			}
			e.Clock.Advance(topup.ActionTTL)
			e.Sweep(eng)
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			wantCredits(t, e, acct.ID, tu)
			e.Verify()
		})
	})
}

// TestCardRemoved: removing the card Automatic Top-Up names switches it off
// and the open top-up is not charged; removing a card it does not use
// changes nothing; removing the default card makes the newest remaining
// card the default, which Automatic Top-Up then uses.
func TestCardRemoved(t *testing.T) {
	t.Parallel()
	// remove does what DELETE .../payment_methods/{pm} does.
	remove := func(t *testing.T, e *topuptest.Env, accountID, cardID string) bool {
		t.Helper()
		disabled, err := e.Store.RemoveCard(t.Context(), accountID, cardID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Sandbox.DetachPaymentMethod(t.Context(), cardID); err != nil {
			t.Fatal(err)
		}
		return disabled
	}
	defaultCard := func(t *testing.T, e *topuptest.Env, accountID string) string {
		t.Helper()
		cards, err := e.Store.Cards(t.Context(), accountID)
		if err != nil {
			t.Fatal(err)
		}
		def := ""
		for _, c := range cards {
			if c.Default {
				if def != "" {
					t.Fatalf("two default cards: %+v", cards)
				}
				def = c.ID
			}
		}
		return def
	}
	t.Run("the named card while a top-up is open", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct := e.Account()
			e.Card(e.Sandbox, acct.ID, "pm_card_visa")
			named := e.Card(e.Sandbox, acct.ID, "pm_card_mastercard")
			e.Credit(acct.ID, "3.00")
			_, created := e.Save(acct.ID, topup.Input{Enabled: boolP(true), Threshold: amtP("5"), Target: amtP("20"), PaymentMethod: &named.ID})
			if created == nil || created.PaymentMethod != named.ID {
				t.Fatalf("created %+v, want a top-up on %s", created, named.ID)
			}
			if !remove(t, e, acct.ID, named.ID) {
				t.Fatal("removing the named card did not switch Automatic Top-Up off")
			}
			st, _ := e.Settings(acct.ID)
			if st.Enabled || st.DisabledReason != topup.PaymentMethodRemoved {
				t.Fatalf("settings %+v, want off with payment_method_removed", st)
			}
			if n := len(e.Notes(acct.ID, "auto_top_up.disabled")); n != 1 {
				t.Errorf("%d auto_top_up.disabled notifications, want 1", n)
			}
			e.RunOnce(e.Engine(e.Sandbox))
			wantStatus(t, e.TopUp(created.ID), topup.Canceled, topup.NotNeeded)
			if n := len(e.SandboxCharges()); n != 0 {
				t.Fatalf("%d charges after the card was removed", n)
			}
			e.Verify()
		})
	})
	t.Run("a card it does not use", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct := e.Account()
			def := e.Card(e.Sandbox, acct.ID, "pm_card_visa")
			other := e.Card(e.Sandbox, acct.ID, "pm_card_mastercard")
			e.Credit(acct.ID, "12.00")
			e.Enable(acct.ID, "10.00", "25.00")
			if remove(t, e, acct.ID, other.ID) {
				t.Fatal("removing a card Automatic Top-Up does not use switched it off")
			}
			if st, _ := e.Settings(acct.ID); !st.Enabled || st.DisabledReason != "" {
				t.Fatalf("settings %+v, want still on", st)
			}
			if got := defaultCard(t, e, acct.ID); got != def.ID {
				t.Fatalf("default card %s, want %s", got, def.ID)
			}
			id := e.Use(acct.ID, "4.00").TopUpID
			e.RunOnce(e.Engine(e.Sandbox))
			wantStatus(t, e.TopUp(id), topup.Succeeded, "")
			e.Verify()
		})
	})
	t.Run("the default card while a top-up is open", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct := e.Account()
			old := e.Card(e.Sandbox, acct.ID, "pm_card_visa")
			e.Clock.Advance(time.Second)
			e.Card(e.Sandbox, acct.ID, "pm_card_amex")
			e.Clock.Advance(time.Second)
			newest := e.Card(e.Sandbox, acct.ID, "pm_card_mastercard")
			e.Credit(acct.ID, "12.00")
			e.Enable(acct.ID, "10.00", "25.00")
			id := e.Use(acct.ID, "4.00").TopUpID
			if remove(t, e, acct.ID, old.ID) {
				t.Fatal("removing the default card switched Automatic Top-Up off while other cards remain")
			}
			if got := defaultCard(t, e, acct.ID); got != newest.ID {
				t.Fatalf("default card %s after removing the default, want the newest remaining %s", got, newest.ID)
			}
			e.RunOnce(e.Engine(e.Sandbox))
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			cs := e.SandboxCharges()
			if len(cs) != 1 || cs[0].PaymentMethod != newest.ID {
				t.Fatalf("charges %+v: want one on the new default card %s", cs, newest.ID)
			}
			wantCredits(t, e, acct.ID, tu)
			e.Verify()
		})
	})
	t.Run("the last card", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct := e.Account()
			only := e.Card(e.Sandbox, acct.ID, "pm_card_visa")
			e.Credit(acct.ID, "12.00")
			e.Enable(acct.ID, "10.00", "25.00")
			if !remove(t, e, acct.ID, only.ID) {
				t.Fatal("removing the last card did not switch Automatic Top-Up off")
			}
			if st, _ := e.Settings(acct.ID); st.Enabled || st.DisabledReason != topup.PaymentMethodRemoved {
				t.Fatalf("settings %+v, want off with payment_method_removed", st)
			}
		})
	})
	t.Run("the named card after a charge may have been made", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct := e.Account()
			e.Card(e.Scripted, acct.ID, "pm_card_visa")
			named := e.Card(e.Scripted, acct.ID, "pm_card_visa")
			e.Credit(acct.ID, "12.00")
			e.Save(acct.ID, topup.Input{Enabled: boolP(true), Threshold: amtP("10"), Target: amtP("25"), PaymentMethod: &named.ID})
			id := e.Use(acct.ID, "4.00").TopUpID
			e.Faults.Script(topuptest.LoseResponse())
			eng := e.Engine(e.Scripted)
			e.RunOnce(eng)
			if disabled, err := e.Store.RemoveCard(t.Context(), acct.ID, named.ID); err != nil || !disabled {
				t.Fatalf("remove = %v, %v", disabled, err)
			}
			// The charge may have been made: it is driven to its outcome,
			// and being paid, credited.
			e.Clock.Advance(time.Minute)
			e.RunOnce(eng)
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			wantCredits(t, e, acct.ID, tu)
			e.Verify()
		})
	})
}

// TestWebhookOrder: provider events, applied through topup.ApplyEvent as
// the webhook handler does, count once per event id and in any order; a
// success always wins, so a paid charge is never left uncredited, and
// nothing is credited twice.
func TestWebhookOrder(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		apply := func(id, typ string, ch payment.Charge) {
			t.Helper()
			ev := payment.Event{ID: id, Type: typ, Charge: &ch, Created: e.Clock.Now()}
			if err := topup.ApplyEvent(t.Context(), e.Store, ev, topuptest.Backoff, topuptest.Logger(t, slog.LevelInfo)); err != nil {
				t.Fatalf("apply %s %s: %v", typ, id, err)
			}
		}
		// Succeeded, the same event again, then a failure, then our own
		// look-up of the charge.
		acct, id := crossed(t, e, e.Scripted, "pm_card_visa")
		e.Faults.Script(topuptest.Pending())
		eng := e.Engine(e.Scripted)
		e.RunOnce(eng)
		tu := e.TopUp(id)
		ch := e.Decide(tu.ChargeID, payment.Succeeded, "")
		apply("evt_1", "payment_intent.succeeded", ch)
		wantStatus(t, e.TopUp(id), topup.Succeeded, "")
		apply("evt_1", "payment_intent.succeeded", ch)
		declined := ch
		declined.Status, declined.DeclineCode = payment.Declined, "card_declined"
		apply("evt_2", "payment_intent.payment_failed", declined)
		e.Clock.Advance(time.Minute)
		e.RunOnce(eng)
		tu = e.TopUp(id)
		wantStatus(t, tu, topup.Succeeded, "")
		if st, _ := e.Settings(acct.ID); st.FailureStreak != 0 {
			t.Errorf("a failure event after the success counted in the streak: %d", st.FailureStreak)
		}
		if n := len(e.Notes(acct.ID, "top_up.failed")); n != 0 {
			t.Errorf("%d top_up.failed notifications for a top-up that succeeded", n)
		}
		if n := len(e.Notes(acct.ID, "top_up.succeeded")); n != 1 {
			t.Errorf("%d top_up.succeeded notifications, want 1", n)
		}
		wantCredits(t, e, acct.ID, tu)
		wantBalance(t, e, acct.ID, "25.00")

		// Failed first, then succeeded after all (a reordered pair), then
		// both again.
		other, oid := crossed(t, e, e.Scripted, "pm_card_visa")
		e.Faults.Script(topuptest.Pending())
		e.RunOnce(eng)
		otu := e.TopUp(oid)
		// The failure event is about the charge before it was decided.
		och, err := e.Sandbox.GetCharge(t.Context(), otu.ChargeID)
		if err != nil {
			t.Fatal(err)
		}
		och.Status, och.DeclineCode = payment.Declined, "card_declined"
		apply("evt_3", "payment_intent.payment_failed", och)
		wantStatus(t, e.TopUp(oid), topup.Failed, "card_declined")
		och = e.Decide(otu.ChargeID, payment.Succeeded, "")
		apply("evt_4", "payment_intent.succeeded", och)
		apply("evt_5", "payment_intent.succeeded", och)
		declined = och
		declined.Status, declined.DeclineCode = payment.Declined, "card_declined"
		apply("evt_3", "payment_intent.payment_failed", declined)
		otu = e.TopUp(oid)
		wantStatus(t, otu, topup.Succeeded, "")
		wantCredits(t, e, other.ID, otu)

		// An event about a top-up Topup does not know changes nothing.
		stray := payment.Charge{ID: "pi_stray", TopUpID: "tu_unknown", Status: payment.Succeeded, Amount: 100, Currency: "usd"}
		apply("evt_6", "payment_intent.succeeded", stray)
		e.Verify()
	})
}

// TestRefusedRequest: a request the provider refuses outright on the first
// attempt charged nothing, so the top-up fails (processing_error: a back-off,
// but not a decline in the row); refused on a retry after an answer was lost, the charge is
// looked up, and one that was made is settled, never given up.
func TestRefusedRequest(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, id := crossed(t, e, e.Scripted, "pm_card_visa")
		e.Faults.Script(topuptest.Refuse())
		eng := e.Engine(e.Scripted)
		e.RunOnce(eng)
		wantStatus(t, e.TopUp(id), topup.Failed, topup.ProcessingError)
		if st, _ := e.Settings(acct.ID); st.FailureStreak != 0 || st.RetryAfter.IsZero() {
			t.Fatalf("settings after a refused request: %+v, want a back-off but no decline in the row", st)
		}
		if n := len(e.SandboxCharges()); n != 0 {
			t.Fatalf("%d charges for a refused request", n)
		}

		e.Clock.Advance(topuptest.Backoff)
		e.Faults.Script(topuptest.LoseResponse(), topuptest.Refuse())
		e.RunOnce(eng) // the sweep's new top-up: charged, answer lost
		open := e.Open(acct.ID)
		if len(open) != 1 {
			t.Fatalf("open top-ups %+v, want the sweep's one", open)
		}
		e.Clock.Advance(time.Minute)
		e.RunOnce(eng) // refused, but the charge exists
		tu := e.TopUp(open[0].ID)
		wantStatus(t, tu, topup.Succeeded, "")
		if n := len(e.SandboxCharges()); n != 1 {
			t.Errorf("%d charges, want 1", n)
		}
		wantCredits(t, e, acct.ID, tu)
		e.Verify()
	})
}

// TestEventAppliedOnce: an outcome carrying a provider event id is applied
// once, even an outcome that would otherwise apply again.
func TestEventAppliedOnce(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, id := crossed(t, e, e.Scripted, "pm_card_visa")
		e.Faults.Script(topuptest.Pending())
		e.RunOnce(e.Engine(e.Scripted))
		o := topup.Outcome{Status: topup.RequiresAction, ChargeID: e.TopUp(id).ChargeID, ClientSecret: "secret", EventID: "evt_ra", EventType: "payment_intent.requires_action"}
		first := e.Settle(id, o)
		e.Clock.Advance(time.Hour)
		if again := e.Settle(id, o); again.Changed {
			t.Fatalf("the same event applied twice: %+v", again)
		}
		tu := e.TopUp(id)
		if tu.ActionToken != first.TopUp.ActionToken || !tu.ActionExpires.Equal(first.TopUp.ActionExpires) {
			t.Errorf("the repeated event changed the action: token %q expires %v, were %q %v", tu.ActionToken, tu.ActionExpires, first.TopUp.ActionToken, first.TopUp.ActionExpires)
		}
		if n := len(e.Notes(acct.ID, "top_up.action_required")); n != 1 {
			t.Errorf("%d top_up.action_required notifications, want 1", n)
		}
	})
}

// TestRefusedRetryNotStuck: a top-up whose first answer was lost and whose
// retries the provider refuses (its card was removed and detached) is not
// kept open for ever when the provider has no charge for it: it fails, and
// the customer who re-enables Automatic Top-Up with another card is topped
// up again.
func TestRefusedRetryNotStuck(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		e.Card(e.Scripted, acct.ID, "pm_card_visa")
		named := e.Card(e.Scripted, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "12.00")
		e.Save(acct.ID, topup.Input{Enabled: boolP(true), Threshold: amtP("10"), Target: amtP("25"), PaymentMethod: &named.ID})
		id := e.Use(acct.ID, "4.00").TopUpID
		e.Faults.Script(topuptest.FailBeforeCharge(), topuptest.Refuse())
		eng := e.Engine(e.Scripted)
		e.RunOnce(eng)
		if disabled, err := e.Store.RemoveCard(t.Context(), acct.ID, named.ID); err != nil || !disabled {
			t.Fatalf("remove = %v, %v", disabled, err)
		}
		e.Enable(acct.ID, "10.00", "25.00") // with the default card
		for range 3 {
			e.Clock.Advance(10 * time.Minute)
			e.RunOnce(eng)
		}
		wantStatus(t, e.TopUp(id), topup.Failed, topup.ProcessingError)
		e.Clock.Advance(topuptest.Backoff)
		e.RunOnce(eng)
		last := e.TopUps(acct.ID)
		if len(last) != 2 || last[1].Status != topup.Succeeded {
			t.Fatalf("top-ups %+v: want the stuck one failed and a new one succeeded", last)
		}
		if n := len(e.SandboxCharges()); n != 1 {
			t.Errorf("%d charges, want 1", n)
		}
		e.Verify()
	})
}

// TestChargedBeforeARestore: a database restored from a backup taken
// before a charge knows its top-up as pending with no amount, and Begin
// fixes the amount anew from the restored balance (17.00 here, where 15.00
// was charged). The provider refuses the top-up's key for another amount;
// the engine finds the charge made under the top-up and credits what it
// took, once, and nothing is charged again. Before, the refusal failed the
// top-up and the money the provider held was never credited.
func TestChargedBeforeARestore(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		card := e.Card(e.Sandbox, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "12.00")
		e.Enable(acct.ID, "10.00", "25.00")
		id := e.Use(acct.ID, "4.00").TopUpID
		if id == "" {
			t.Fatal("the crossing created no top-up")
		}
		cust, err := e.Store.CustomerID(t.Context(), acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		// The charge of the lost timeline, under the top-up's own key.
		before, err := e.Sandbox.Charge(t.Context(), payment.ChargeRequest{TopUpID: id, IdempotencyKey: e.TopUp(id).IdempotencyKey(),
			Customer: cust, PaymentMethod: card.ID, Amount: 1500, Currency: "usd", OffSession: true, Description: "Topup credit " + id})
		if err != nil || before.Status != payment.Succeeded {
			t.Fatalf("the earlier charge: %+v %v", before, err)
		}
		e.RunOnce(e.Engine(e.Sandbox))
		tu := e.TopUp(id)
		wantStatus(t, tu, topup.Succeeded, "")
		wantAmount(t, tu, "15.00")
		if tu.ChargeID != before.ID {
			t.Errorf("top-up charge %q, want the earlier charge %q", tu.ChargeID, before.ID)
		}
		if cs := e.SandboxCharges(); len(cs) != 1 || cs[0].Amount != 1500 {
			t.Fatalf("sandbox charges %+v, want the one of 15.00", cs)
		}
		wantCredits(t, e, acct.ID, tu)
		wantBalance(t, e, acct.ID, "23.00")
		e.Verify()
	})
}
