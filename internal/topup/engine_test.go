package topup_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
	"github.com/topup/topup/internal/workertest"
)

// charged is one charge as the provider recorded it, whichever provider.
type charged struct {
	ID, Key, TopUpID string
	Amount           int64
	Status           payment.ChargeStatus
	OffSession       bool
}

// providerKind picks the sandbox of an Env, plain or with its (empty)
// script of faults.
type providerKind struct {
	name  string
	get   func(e *topuptest.Env) payment.Provider
	token string // a card whose charges succeed
}

var providers = []providerKind{
	{"sandbox", func(e *topuptest.Env) payment.Provider { return e.Sandbox }, "pm_card_visa"},
	{"scripted", func(e *topuptest.Env) payment.Provider { return e.Scripted }, "pm_card_visa"},
}

// chargesOf returns what the sandbox charged, oldest first.
func chargesOf(e *topuptest.Env) []charged {
	e.T.Helper()
	var out []charged
	for _, c := range e.SandboxCharges() {
		out = append(out, charged{c.ID, c.IdempotencyKey, c.TopUpID, c.Amount, c.Status, c.OffSession})
	}
	return out
}

// wantCredits checks that the account's top_up entries are exactly these
// top-ups, each once, with their amounts.
func wantCredits(t *testing.T, e *topuptest.Env, accountID string, want ...topup.TopUp) {
	t.Helper()
	got := e.Credited(accountID)
	if len(got) != len(want) {
		t.Fatalf("%d top_up entries %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].TopUpID != w.ID || w.Amount == nil || got[i].Amount != *w.Amount {
			t.Errorf("top_up entry %d: top-up %s amount %v, want top-up %s amount %v", i, got[i].TopUpID, got[i].Amount, w.ID, fmtP(w.Amount))
		}
	}
}

func wantStatus(t *testing.T, tu topup.TopUp, s topup.Status, failure string) {
	t.Helper()
	if tu.Status != s || tu.FailureCode != failure {
		t.Fatalf("top-up %s is %s (failure %q), want %s (failure %q)", tu.ID, tu.Status, tu.FailureCode, s, failure)
	}
}

func wantBalance(t *testing.T, e *topuptest.Env, accountID, want string) {
	t.Helper()
	if got := e.Balance(accountID); got != amt(want) {
		t.Fatalf("balance %s, want %s", got.Format(usd), want)
	}
}

func wantAmount(t *testing.T, tu topup.TopUp, want string) {
	t.Helper()
	if !amountEq(tu.Amount, want) {
		t.Fatalf("top-up %s amount %s, want %s", tu.ID, fmtP(tu.Amount), want)
	}
}

// TestThresholdCrossing is the heart of the product, through the sandbox
// and through the fake: a debit that takes the balance strictly below the
// threshold creates one top-up in its own transaction, the worker charges
// target - balance rounded up to the cent under a key derived from the
// top-up, and the ledger is credited once, back at the target.
func TestThresholdCrossing(t *testing.T) {
	t.Parallel()
	for _, pk := range providers {
		t.Run(pk.name, func(t *testing.T) {
			t.Parallel()
			topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
				p := pk.get(e)
				acct := e.Account()
				card := e.Card(p, acct.ID, pk.token)
				e.Credit(acct.ID, "30.00")
				e.Enable(acct.ID, "10.00", "25.00")

				if r := e.Use(acct.ID, "20.00"); r.TopUpID != "" {
					t.Fatalf("a debit to exactly the threshold created top-up %s; the rule is strictly below", r.TopUpID)
				}
				r := e.Use(acct.ID, "0.006")
				if r.TopUpID == "" {
					t.Fatal("the debit that crossed the threshold names no top-up")
				}
				tu := e.TopUp(r.TopUpID)
				wantStatus(t, tu, topup.Pending, "")
				if tu.Trigger != topup.TriggerThreshold || tu.Amount != nil || tu.PaymentMethod != card.ID || tu.Attempts != 0 {
					t.Fatalf("new top-up %+v: want trigger threshold, no amount yet, card %s, no attempt", tu, card.ID)
				}
				if r := e.Use(acct.ID, "0.001"); r.TopUpID != "" {
					t.Fatalf("a second debit below the threshold created top-up %s while %s is open", r.TopUpID, tu.ID)
				}
				if n := len(e.Open(acct.ID)); n != 1 {
					t.Fatalf("%d open automatic top-ups, want 1", n)
				}

				eng := e.Engine(p)
				if n := e.RunOnce(eng); n != 1 {
					t.Fatalf("worker attempted %d top-ups, want 1", n)
				}
				tu = e.TopUp(tu.ID)
				wantStatus(t, tu, topup.Succeeded, "")
				// 25.00 - 9.993 = 15.007, rounded up to the cent.
				wantAmount(t, tu, "15.01")
				wantBalance(t, e, acct.ID, "25.003")
				wantCredits(t, e, acct.ID, tu)

				cs := chargesOf(e)
				if len(cs) != 1 {
					t.Fatalf("%d charges %+v, want 1", len(cs), cs)
				}
				c := cs[0]
				if c.Key != tu.IdempotencyKey() || c.TopUpID != tu.ID || c.Amount != 1501 || c.Status != payment.Succeeded || !c.OffSession {
					t.Errorf("charge %+v: want 1501 cents off-session under key %s with the top-up id in its metadata", c, tu.IdempotencyKey())
				}
				if tu.ChargeID != c.ID {
					t.Errorf("top-up keeps charge %q, want %s", tu.ChargeID, c.ID)
				}
				if n := e.RunOnce(eng); n != 0 {
					t.Errorf("a second pass attempted %d top-ups", n)
				}
				if n := len(chargesOf(e)); n != 1 {
					t.Errorf("%d charges after a second pass, want 1", n)
				}
				if n := len(e.Notes(acct.ID, "top_up.succeeded")); n != 1 {
					t.Errorf("%d top_up.succeeded notifications, want 1", n)
				}
				e.Verify()
			})
		})
	}
}

// TestSettingsSavedBelowThreshold: saving settings whose threshold is above
// the balance creates a top-up at once (trigger settings); saving again
// while it is open creates no second one.
func TestSettingsSavedBelowThreshold(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		e.Card(e.Sandbox, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "3.00")
		_, created := e.Enable(acct.ID, "5.00", "20.00")
		if created == nil || created.Trigger != topup.TriggerSettings || created.Status != topup.Pending {
			t.Fatalf("save below the threshold created %+v, want a pending top-up with trigger settings", created)
		}
		if _, again := e.Enable(acct.ID, "5.00", "21.00"); again != nil {
			t.Fatalf("a second save created top-up %s while %s is open", again.ID, created.ID)
		}
		eng := e.Engine(e.Sandbox)
		e.RunOnce(eng)
		tu := e.TopUp(created.ID)
		wantStatus(t, tu, topup.Succeeded, "")
		wantAmount(t, tu, "18.00") // the target of the settings in force at the first attempt
		wantBalance(t, e, acct.ID, "21.00")
		wantCredits(t, e, acct.ID, tu)
		e.Verify()
	})
}

// TestAmountFixedBeforeFirstAttempt: the amount is stored before the
// provider is called, and a retry sends that same amount under the same
// key even though the balance moved in between.
func TestAmountFixedBeforeFirstAttempt(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		e.Card(e.Scripted, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "12.00")
		e.Enable(acct.ID, "10.00", "25.00")
		id := e.Use(acct.ID, "4.00").TopUpID // 8.00
		var during topup.TopUp
		fail := topuptest.FailBeforeCharge()
		fail.During = func() { during = e.TopUp(id) }
		e.Faults.Script(fail)
		eng := e.Engine(e.Scripted)
		e.RunOnce(eng)
		if during.Amount == nil || *during.Amount != amt("17.00") || during.Status != topup.Processing || during.Attempts != 1 {
			t.Fatalf("while the provider was called the top-up was %+v (amount %s), want processing with amount 17.00 stored", during, fmtP(during.Amount))
		}
		tu := e.TopUp(id)
		wantStatus(t, tu, topup.Processing, "")
		if !tu.NextAttemptAt.After(e.Clock.Now()) {
			t.Fatalf("next attempt at %v, want later than now %v", tu.NextAttemptAt, e.Clock.Now())
		}

		e.Use(acct.ID, "30.00") // heavy usage before the retry: -22.00
		e.Clock.Advance(time.Minute)
		e.RunOnce(eng)
		tu = e.TopUp(id)
		wantStatus(t, tu, topup.Succeeded, "")
		wantAmount(t, tu, "17.00")
		reqs := e.Faults.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d charge requests, want 2", len(reqs))
		}
		for _, r := range reqs {
			if r.Amount != 1700 || r.IdempotencyKey != tu.IdempotencyKey() || r.TopUpID != id {
				t.Errorf("request %+v: want 1700 cents under %s", r, tu.IdempotencyKey())
			}
		}
		wantCredits(t, e, acct.ID, tu)
		wantBalance(t, e, acct.ID, "-5.00")
		// Still below the threshold after the credit: the settle created the
		// next top-up.
		if open := e.Open(acct.ID); len(open) != 1 || open[0].ID == id {
			t.Fatalf("open top-ups after the settle: %+v, want a new one", open)
		}
	})
}

// TestNotNeeded: a top-up whose account recovered before its first attempt
// is canceled not_needed without charging; it is no failure, so the next
// crossing creates a top-up at once.
func TestNotNeeded(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		e.Card(e.Scripted, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "12.00")
		e.Enable(acct.ID, "10.00", "25.00")
		id := e.Use(acct.ID, "4.00").TopUpID
		e.Credit(acct.ID, "2.00") // 10.00: no longer strictly below
		eng := e.Engine(e.Scripted)
		e.RunOnce(eng)
		tu := e.TopUp(id)
		wantStatus(t, tu, topup.Canceled, topup.NotNeeded)
		if tu.Amount != nil || tu.Attempts != 0 {
			t.Errorf("canceled top-up has amount %s and %d attempts, want none", fmtP(tu.Amount), tu.Attempts)
		}
		if n := len(e.Faults.Requests()); n != 0 {
			t.Fatalf("%d charge requests for a top-up not needed", n)
		}
		if st, _ := e.Settings(acct.ID); st.FailureStreak != 0 || !st.RetryAfter.IsZero() {
			t.Errorf("not_needed counted as a failure: %+v", st)
		}
		if r := e.Use(acct.ID, "0.01"); r.TopUpID == "" {
			t.Fatal("the next crossing created no top-up")
		}
		wantCredits(t, e, acct.ID)
		e.Verify()
	})
}

// TestMonthlyLimit: the cap fixes the amount, counts open top-ups, and when
// less than the minimum charge is left no top-up is created and the
// customer is told once that month; a new month starts afresh.
func TestMonthlyLimit(t *testing.T) {
	t.Parallel()
	t.Run("caps the amount", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct := e.Account()
			e.Card(e.Sandbox, acct.ID, "pm_card_visa")
			e.Credit(acct.ID, "4.00")
			e.Save(acct.ID, topup.Input{Enabled: boolP(true), Threshold: amtP("5"), Target: amtP("20"), MonthlyLimit: amtP("10"), MonthlyLimitSet: true})
			e.RunOnce(e.Engine(e.Sandbox))
			tu := e.Only(acct.ID)
			wantStatus(t, tu, topup.Succeeded, "")
			wantAmount(t, tu, "10.00")
			if _, mtd := e.Settings(acct.ID); mtd != amt("10") {
				t.Errorf("month to date %s, want 10.00", mtd.Format(usd))
			}
			e.Verify()
		})
	})
	t.Run("counts open top-ups and tells once a month", func(t *testing.T) {
		t.Parallel()
		topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
			acct := e.Account()
			e.Card(e.Scripted, acct.ID, "pm_card_visa")
			e.Credit(acct.ID, "4.00")
			e.Save(acct.ID, topup.Input{Enabled: boolP(true), Threshold: amtP("5"), Target: amtP("20"), MonthlyLimit: amtP("32.30"), MonthlyLimitSet: true})
			eng := e.Engine(e.Scripted)
			e.RunOnce(eng) // 16.00 → 20.00
			e.Use(acct.ID, "16.00")
			e.Faults.Script(topuptest.LoseResponse())
			e.RunOnce(eng) // 16.00 more, answer lost: open
			open := e.Open(acct.ID)
			if len(open) != 1 || !amountEq(open[0].Amount, "16.00") {
				t.Fatalf("open top-ups %+v, want one of 16.00", open)
			}
			if _, mtd := e.Settings(acct.ID); mtd != amt("32.00") {
				t.Errorf("month to date %s with a top-up open, want 32.00 (succeeded and open)", mtd.Format(usd))
			}
			e.Clock.Advance(time.Minute)
			e.RunOnce(eng) // the retry learns it succeeded: 20.00
			e.Use(acct.ID, "16.00")
			e.Use(acct.ID, "1.00") // 3.00: below, but only 0.30 left this month
			if n := len(e.TopUps(acct.ID)); n != 2 {
				t.Fatalf("%d top-ups, want 2: less than the minimum charge is left", n)
			}
			if n := len(e.Notes(acct.ID, "auto_top_up.limit_reached")); n != 1 {
				t.Fatalf("%d limit_reached notifications, want 1", n)
			}
			e.Clock.Advance(time.Hour)
			e.Sweep(eng)
			e.Use(acct.ID, "1.00")
			if n := len(e.Notes(acct.ID, "auto_top_up.limit_reached")); n != 1 {
				t.Fatalf("%d limit_reached notifications after more usage and a sweep, want still 1", n)
			}

			// April: the allowance is whole again.
			e.Clock.Set(time.Date(2026, time.April, 1, 0, 0, 1, 0, time.UTC))
			r := e.Use(acct.ID, "0.01")
			if r.TopUpID == "" {
				t.Fatal("no top-up in the new month")
			}
			e.RunOnce(eng)
			wantAmount(t, e.TopUp(r.TopUpID), "18.01")
			e.Use(acct.ID, "16.00") // 4.00
			e.RunOnce(eng)          // 14.29 left: 14.29
			e.Use(acct.ID, "16.00") // 2.30, nothing left
			if n := len(e.Notes(acct.ID, "auto_top_up.limit_reached")); n != 2 {
				t.Fatalf("%d limit_reached notifications after the April limit, want 2 (one a month)", n)
			}
			if n := len(e.SandboxCharges()); n != 4 {
				t.Errorf("%d charges, want 4", n)
			}
			e.Verify()
		})
	})
}

// TestHeavyUsageDuringCharge: usage during a charge cannot create a second
// top-up, but when the charge settles with the balance still below the
// threshold, the next one is created at once and charged.
func TestHeavyUsageDuringCharge(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		e.Card(e.Scripted, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "12.00")
		e.Enable(acct.ID, "10.00", "25.00")
		id := e.Use(acct.ID, "4.00").TopUpID // 8.00
		step := topuptest.Succeed()
		step.During = func() {
			if r := e.Use(acct.ID, "30.00"); r.TopUpID != "" {
				t.Errorf("usage during the charge created top-up %s while %s is open", r.TopUpID, id)
			}
		}
		e.Faults.Script(step)
		eng := e.Engine(e.Scripted)
		s, err := eng.Attempt(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Credited || s.Next == nil || s.Next.Trigger != topup.TriggerThreshold {
			t.Fatalf("settled %+v: want credited and a next top-up", s)
		}
		wantBalance(t, e, acct.ID, "-5.00") // 8 - 30 + 17
		e.RunOnce(eng)
		next := e.TopUp(s.Next.ID)
		wantStatus(t, next, topup.Succeeded, "")
		wantAmount(t, next, "30.00")
		wantBalance(t, e, acct.ID, "25.00")
		wantCredits(t, e, acct.ID, e.TopUp(id), next)
		e.Verify()
	})
}

// TestLeaseAndResume: a top-up claimed by a worker that died is left alone
// until its lease runs out, then resumed; a process killed after the
// provider charged but before the outcome was stored charges nothing more.
func TestLeaseAndResume(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		card := e.Card(e.Sandbox, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "12.00")
		e.Enable(acct.ID, "10.00", "25.00")
		id := e.Use(acct.ID, "4.00").TopUpID

		// The dead worker: claimed, began, charged, never settled.
		ids, err := e.Store.Claim(t.Context(), e.Clock.Now(), 2*time.Minute, 10)
		if err != nil || len(ids) != 1 || ids[0] != id {
			t.Fatalf("claim = %v, %v; want [%s]", ids, err, id)
		}
		tu, ok, err := e.Store.Begin(t.Context(), id)
		if err != nil || !ok {
			t.Fatalf("begin = %v, %v", ok, err)
		}
		cust, _ := e.Store.CustomerID(t.Context(), acct.ID)
		minor, _ := tu.Amount.MinorUnits(usd)
		if _, err := e.Sandbox.Charge(t.Context(), payment.ChargeRequest{TopUpID: id, IdempotencyKey: tu.IdempotencyKey(), Customer: cust,
			PaymentMethod: card.ID, Amount: minor, Currency: "usd", OffSession: true}); err != nil {
			t.Fatal(err)
		}

		eng := e.Engine(e.Sandbox)
		if n := e.RunOnce(eng); n != 0 {
			t.Fatalf("a leased top-up was attempted %d times by another worker", n)
		}
		e.Clock.Advance(2 * time.Minute)
		if n := e.RunOnce(eng); n != 1 {
			t.Fatalf("the restarted worker attempted %d top-ups, want 1", n)
		}
		tu = e.TopUp(id)
		wantStatus(t, tu, topup.Succeeded, "")
		if cs := e.SandboxCharges(); len(cs) != 1 {
			t.Fatalf("%d sandbox charges, want 1: %+v", len(cs), cs)
		}
		wantCredits(t, e, acct.ID, tu)
		e.Verify()
	})
}

// TestManualTopUpsAreOutsideTheRule: a manual top-up open at the same time
// neither blocks the automatic one nor counts toward the monthly limit.
func TestManualTopUpsAreOutsideTheRule(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		e.Card(e.Scripted, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "12.00")
		e.Save(acct.ID, topup.Input{Enabled: boolP(true), Threshold: amtP("10"), Target: amtP("25"), MonthlyLimit: amtP("20"), MonthlyLimitSet: true})
		manual, _, err := e.Store.CreateManual(t.Context(), acct.ID, amt("50.00"), "", "key-1", "hash-1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		id := e.Use(acct.ID, "4.00").TopUpID
		if id == "" {
			t.Fatal("an open manual top-up blocked the automatic one")
		}
		eng := e.Engine(e.Scripted)
		if _, err := eng.Attempt(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		wantAmount(t, e.TopUp(id), "17.00")
		if _, mtd := e.Settings(acct.ID); mtd != amt("17.00") {
			t.Errorf("month to date %s, want 17.00: manual top-ups do not count", mtd.Format(usd))
		}
		if _, err := eng.Attempt(t.Context(), manual.ID); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, e.TopUp(manual.ID), topup.Succeeded, "")
		if reqs := e.Faults.Requests(); len(reqs) != 2 || reqs[1].OffSession {
			t.Errorf("requests %+v: want the manual charge on-session", reqs)
		}
		wantBalance(t, e, acct.ID, "75.00")
		e.Verify()
	})
}

// TestReclaimOnStart: a process alone on its database (SQLite) that
// restarts releases the claims of its previous life and resumes their
// top-ups at once, instead of after the lease.
func TestReclaimOnStart(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct := e.Account()
		e.Card(e.Sandbox, acct.ID, "pm_card_visa")
		e.Credit(acct.ID, "12.00")
		e.Enable(acct.ID, "10.00", "25.00")
		id := e.Use(acct.ID, "4.00").TopUpID
		if _, err := e.Store.Claim(t.Context(), e.Clock.Now(), time.Hour, 10); err != nil {
			t.Fatal(err)
		}
		done := make(chan topup.Settled, 1)
		eng := e.Engine(e.Sandbox, func(c *topup.Config) {
			c.ReclaimOnStart, c.PollInterval = true, 5*time.Millisecond
			c.OnSettled = func(s topup.Settled) {
				select {
				case done <- s:
				default:
				}
			}
		})
		eng.Start()
		defer eng.Stop()
		select {
		case s := <-done:
			if s.TopUp.ID != id || s.TopUp.Status != topup.Succeeded {
				t.Fatalf("settled %+v, want %s succeeded", s.TopUp, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the restarted worker did not resume the claimed top-up")
		}
	})
}

// slowProvider holds each charge until another is in flight beside it
// (at most a few seconds, so that a pass that charges one at a time fails
// rather than hangs), and records how many were in flight at once.
type slowProvider struct {
	payment.Provider
	mu       sync.Mutex
	inFlight int
	most     int
	met      chan struct{} // closed once two charges were in flight together
	metOnce  sync.Once
}

func (p *slowProvider) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	p.mu.Lock()
	p.inFlight++
	p.most = max(p.most, p.inFlight)
	if p.inFlight >= 2 {
		p.metOnce.Do(func() { close(p.met) })
	}
	p.mu.Unlock()
	select {
	case <-p.met:
	case <-time.After(3 * time.Second):
	}
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	return p.Provider.Charge(ctx, req)
}

// TestConcurrentPass: with Concurrency, one pass charges the top-ups of
// many accounts side by side, and each is still charged and credited once.
func TestConcurrentPass(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		slow := &slowProvider{Provider: e.Sandbox, met: make(chan struct{})}
		var ids []string
		accounts := map[string]string{}
		for range 6 {
			acct, id := crossed(t, e, slow, "pm_card_visa")
			ids = append(ids, id)
			accounts[id] = acct.ID
		}
		eng := e.Engine(slow, func(c *topup.Config) { c.Concurrency = 4 })
		if n := e.RunOnce(eng); n != len(ids) {
			t.Fatalf("one pass attempted %d top-ups, want %d", n, len(ids))
		}
		if slow.most < 2 {
			t.Errorf("at most %d charge in flight at once; want the pass to charge side by side", slow.most)
		}
		for _, id := range ids {
			tu := e.TopUp(id)
			wantStatus(t, tu, topup.Succeeded, "")
			wantCredits(t, e, accounts[id], tu)
		}
		e.Verify()
	})
}

// TestEngineStopIsIdempotent: Stop may be called twice, and without Start,
// and returns each time: a shutdown stops every worker whatever ran.
func TestEngineStopIsIdempotent(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		never := e.Engine(e.Sandbox)
		workertest.StopReturns(t, "Stop without Start", never.Stop)
		workertest.StopReturns(t, "a second Stop without Start", never.Stop)

		passes := make(chan error, 100)
		eng := e.Engine(e.Sandbox, func(c *topup.Config) {
			c.OnPass = func(_ int, err error) {
				select {
				case passes <- err:
				default:
				}
			}
		})
		eng.Start()
		select {
		case err := <-passes:
			if err != nil {
				t.Fatalf("the first pass: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no pass of the worker within 10s")
		}
		workertest.StopReturns(t, "Stop", eng.Stop)
		workertest.StopReturns(t, "a second Stop", eng.Stop)
	})
}

// holdingProvider holds the charge of one top-up until released (or its
// context ends), and says when that charge began.
type holdingProvider struct {
	payment.Provider
	held    string
	began   chan struct{}
	release chan struct{}
}

func (p *holdingProvider) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	if req.TopUpID == p.held {
		close(p.began)
		select {
		case <-p.release:
		case <-ctx.Done():
			return payment.Charge{}, ctx.Err()
		}
	}
	return p.Provider.Charge(ctx, req)
}

// TestWorkerDoesNotWaitForAPassToEnd: the running worker claims and charges
// a top-up created while another's charge is in flight, without waiting for
// that charge to end (a pass that waited for its slowest charge made every
// top-up crossing meanwhile wait as long).
func TestWorkerDoesNotWaitForAPassToEnd(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		p := &holdingProvider{Provider: e.Sandbox, began: make(chan struct{}), release: make(chan struct{})}
		_, first := crossed(t, e, p, "pm_card_visa")
		p.held = first
		settled := make(chan string, 4)
		eng := e.Engine(p, func(c *topup.Config) {
			c.Concurrency, c.PollInterval, c.ChargeTimeout = 4, time.Hour, 30*time.Second
			c.OnSettled = func(s topup.Settled) { settled <- s.TopUp.ID }
		})
		eng.Start()
		released := false
		defer func() {
			if !released {
				close(p.release)
			}
			eng.Stop()
		}()
		select {
		case <-p.began:
		case <-time.After(10 * time.Second):
			t.Fatal("the worker did not charge the first top-up")
		}
		acct, second := crossed(t, e, p, "pm_card_visa")
		eng.Kick() // as the committer does after the group that created it
		select {
		case id := <-settled:
			if id != second {
				t.Fatalf("settled %s first, want %s (the first charge is still held)", id, second)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the second top-up waited for the first one's charge to end")
		}
		tu := e.TopUp(second)
		wantStatus(t, tu, topup.Succeeded, "")
		wantCredits(t, e, acct.ID, tu)
		close(p.release)
		released = true
		select {
		case id := <-settled:
			if id != first {
				t.Fatalf("settled %s, want %s", id, first)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the first top-up was not settled after its charge was released")
		}
		wantStatus(t, e.TopUp(first), topup.Succeeded, "")
		e.Verify()
	})
}

// renewCounter counts the claims renewed through it.
type renewCounter struct {
	topup.Store
	renews atomic.Int32
}

func (s *renewCounter) Renew(ctx context.Context, id string, held, until time.Time) (bool, error) {
	s.renews.Add(1)
	return s.Store.Renew(ctx, id, held, until)
}

// TestFreshClaimGoesStraightToBegin: a top-up attempted right after its
// claim is not renewed first (the claim cannot have run out, and each
// write may wait for a group commit under load); one whose claim is a
// third of a lease old is, and is left alone when another worker took it
// after it ran out.
func TestFreshClaimGoesStraightToBegin(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, id := crossed(t, e, e.Sandbox, "pm_card_visa")
		store := &renewCounter{Store: e.Store.Payments}
		eng := topup.NewEngine(store, e.Sandbox, topup.Config{Clock: e.Clock, RetryBackoff: topuptest.Backoff, Lease: time.Hour})
		if n := e.RunOnce(eng); n != 1 {
			t.Fatalf("attempted %d top-ups, want 1", n)
		}
		if n := store.renews.Load(); n != 0 {
			t.Errorf("%d renewals of a claim taken in the same pass, want 0", n)
		}
		tu := e.TopUp(id)
		wantStatus(t, tu, topup.Succeeded, "")
		wantCredits(t, e, acct.ID, tu)

		// A claim that ran out and was taken by another worker meanwhile.
		_, stale := crossed(t, e, e.Sandbox, "pm_card_visa")
		claimedAt := e.Clock.Now()
		ids, err := e.Store.Claim(t.Context(), claimedAt, time.Hour, 10)
		if err != nil || len(ids) != 1 || ids[0] != stale {
			t.Fatalf("claim: %v %v, want [%s]", ids, err, stale)
		}
		e.Clock.Advance(2 * time.Hour)
		if ids, err := e.Store.Claim(t.Context(), e.Clock.Now(), time.Hour, 10); err != nil || len(ids) != 1 {
			t.Fatalf("the other worker's claim: %v %v", ids, err)
		}
		s, err := eng.AttemptClaimed(t.Context(), stale, claimedAt.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n := store.renews.Load(); n != 1 {
			t.Errorf("%d renewals of a claim two leases old, want 1", n)
		}
		if s.Changed || s.TopUp.Status != topup.Pending || s.TopUp.Attempts != 0 {
			t.Fatalf("an attempt under a lost claim did %+v; want the top-up left pending and unattempted to the worker that holds it", s)
		}
	})
}

// TestClaimBegin: where the store has one writer (SQLite), the worker's
// claim also begins what it claims, in the same transaction: the amount is
// fixed, the attempt counted, the top-up processing and claimed; a top-up
// whose balance recovered is canceled not_needed instead. Elsewhere the
// store declines, and nothing is claimed.
func TestClaimBegin(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		acct, due := crossed(t, e, e.Sandbox, "pm_card_visa")
		recovered, gone := crossed(t, e, e.Sandbox, "pm_card_visa")
		e.Credit(recovered.ID, "20.00")
		now := e.Clock.Now()
		begun, ok, err := e.Store.ClaimBegin(t.Context(), now, time.Hour, 10)
		if err != nil {
			t.Fatal(err)
		}
		if e.Store.DialectName() != "sqlite" {
			if ok || len(begun) != 0 {
				t.Fatalf("ClaimBegin on %s: %v %v, want declined", e.Store.DialectName(), begun, ok)
			}
			if ids, err := e.Store.Claim(t.Context(), now, time.Hour, 10); err != nil || len(ids) != 2 {
				t.Fatalf("claim after a declined ClaimBegin: %v %v, want both top-ups", ids, err)
			}
			return
		}
		if !ok || len(begun) != 2 {
			t.Fatalf("ClaimBegin: %+v %v, want two top-ups", begun, ok)
		}
		byID := map[string]topup.Begun{}
		for _, b := range begun {
			byID[b.TopUp.ID] = b
		}
		b := byID[due]
		if !b.OK || b.TopUp.Status != topup.Processing || b.TopUp.Attempts != 1 || b.TopUp.Amount == nil {
			t.Fatalf("begun %+v, want processing, one attempt, an amount", b)
		}
		stored := e.TopUp(due)
		if stored.Status != topup.Processing || stored.Attempts != 1 || stored.Amount == nil || *stored.Amount != *b.TopUp.Amount {
			t.Fatalf("stored %+v, want what ClaimBegin answered", stored)
		}
		if g := byID[gone]; g.OK || e.TopUp(gone).Status != topup.Canceled {
			t.Fatalf("the recovered account's top-up: %+v, stored %s; want canceled, nothing to charge", g, e.TopUp(gone).Status)
		}
		if ids, err := e.Store.Claim(t.Context(), now, time.Hour, 10); err != nil || len(ids) != 0 {
			t.Fatalf("claim again: %v %v, want nothing (claimed)", ids, err)
		}
		eng := e.Engine(e.Sandbox)
		s, err := eng.AttemptBegun(t.Context(), b, now.Add(time.Hour))
		if err != nil || s.TopUp.Status != topup.Succeeded {
			t.Fatalf("attempt: %+v %v, want succeeded", s.TopUp, err)
		}
		wantCredits(t, e, acct.ID, e.TopUp(due))
		e.Verify()
	})
}
