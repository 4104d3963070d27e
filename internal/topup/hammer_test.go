package topup_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
)

// TestHammer debits one account from 16 goroutines through the group
// committer, across the threshold again and again, while two workers (two
// replicas) charge through the sandbox on the wall clock. Throughout, at
// most one automatic top-up is open; once the load stops and the workers
// drain, what the sandbox charged, what the top-ups say and what the ledger
// credited add up to the same amount, no top-up was charged twice, the
// balance is back at or above the threshold and Verify is clean.
func TestHammer(t *testing.T) {
	t.Parallel()
	const (
		debitors = 16
		load     = 1500 * time.Millisecond
	)
	for _, b := range topuptest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			e := topuptest.NewLiveEnv(t, b)
			acct := e.Account()
			e.Card(e.Sandbox, acct.ID, "pm_card_visa")
			// A narrow band: a few debits cross the threshold again.
			e.Credit(acct.ID, "13.00")
			e.Enable(acct.ID, "10.00", "13.00")

			cfg := topup.Config{Clock: clock.System, RetryBackoff: time.Hour, PollInterval: 5 * time.Millisecond,
				SweepInterval: 50 * time.Millisecond, Logger: topuptest.Logger(t, slog.LevelWarn)}
			workers := []*topup.Engine{topup.NewEngine(e.Store.Payments, e.Sandbox, cfg), topup.NewEngine(e.Store, e.Sandbox, cfg)}
			com := ledger.NewCommitter(e.Store.Ledger, ledger.CommitterConfig{})
			com.OnTopUp(func() {
				for _, w := range workers {
					w.Kick()
				}
			})
			com.Start()
			for _, w := range workers {
				w.Start()
			}
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					com.Stop()
					for _, w := range workers {
						w.Stop()
					}
				}
			}
			defer stop()

			// The watcher looks for two open automatic top-ups at once.
			watchCtx, endWatch := context.WithCancel(t.Context())
			var maxOpen, looks atomic.Int64
			watched := make(chan error, 1)
			go func() {
				var err error
				for watchCtx.Err() == nil && err == nil {
					var list []topup.TopUp
					list, _, err = e.Store.TopUps(watchCtx, acct.ID, ledger.Page{Limit: 1000})
					var n int64
					for _, tu := range list {
						if tu.Status.Open() && tu.Trigger != topup.TriggerManual {
							n++
						}
					}
					looks.Add(1)
					if n > maxOpen.Load() {
						maxOpen.Store(n)
					}
					time.Sleep(2 * time.Millisecond)
				}
				if watchCtx.Err() != nil {
					err = nil
				}
				watched <- err
			}()

			var wg sync.WaitGroup
			var debits, crossings atomic.Int64
			// The load runs for load, and on a slow machine (the race
			// detector, a busy CI) on until debits have crossed the
			// threshold a few times, within a bound.
			deadline, bound := time.Now().Add(load), time.Now().Add(20*load)
			more := func() bool {
				now := time.Now()
				return now.Before(deadline) || (crossings.Load() < 3 && now.Before(bound))
			}
			for g := range debitors {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; more(); i++ {
						// Amounts with sub-cent parts, so every top-up rounds up.
						a := topuptest.Amt("0.50") + money.Amount(125*(g+1))
						res, err := com.Submit(context.Background(), []ledger.Posting{{AccountID: acct.ID, Kind: ledger.KindUsage, Amount: -a,
							IdempotencyKey: fmt.Sprintf("h-%d-%d", g, i), Call: ledger.ScopeUsage}})
						if err != nil || res[0].Err != nil {
							t.Errorf("debit %d/%d: %v %v", g, i, err, res)
							return
						}
						debits.Add(1)
						if res[0].TopUpID != "" {
							crossings.Add(1)
						}
					}
				}()
			}
			wg.Wait()

			// Drain: the workers finish what is open; the last credit leaves
			// the balance at or above the threshold.
			drainBy := time.Now().Add(20 * time.Second)
			for {
				open := e.Open(acct.ID)
				if len(open) == 0 && e.Balance(acct.ID) >= topuptest.Amt("10.00") {
					break
				}
				if time.Now().After(drainBy) {
					t.Fatalf("not drained after the load: open %+v, balance %s", open, e.Balance(acct.ID).Format(usd))
				}
				time.Sleep(5 * time.Millisecond)
			}
			stop()
			endWatch()
			if err := <-watched; err != nil {
				t.Fatalf("watcher: %v", err)
			}

			tus := e.TopUps(acct.ID)
			t.Logf("%s: %d debits, %d crossings, %d top-ups, %d watcher looks", b.Name, debits.Load(), crossings.Load(), len(tus), looks.Load())
			if maxOpen.Load() > 1 {
				t.Errorf("%d automatic top-ups were open at once", maxOpen.Load())
			}
			if len(tus) < 3 || crossings.Load() == 0 {
				t.Fatalf("only %d top-ups (%d from debits): the load did not cross the threshold again and again", len(tus), crossings.Load())
			}
			var topUpSum money.Amount
			byID := map[string]topup.TopUp{}
			for _, tu := range tus {
				byID[tu.ID] = tu
				if tu.Status != topup.Succeeded {
					t.Errorf("top-up %s ended %s (%s)", tu.ID, tu.Status, tu.FailureCode)
					continue
				}
				topUpSum += *tu.Amount
			}
			var chargeSum money.Amount
			keys := map[string]int{}
			for _, c := range e.SandboxCharges() {
				keys[c.IdempotencyKey]++
				tu, ok := byID[c.TopUpID]
				if !ok || c.IdempotencyKey != tu.IdempotencyKey() {
					t.Errorf("charge %s under key %s names top-up %q", c.ID, c.IdempotencyKey, c.TopUpID)
				}
				if c.Status == payment.Succeeded {
					a, err := money.FromMinor(c.Amount, usd)
					if err != nil {
						t.Fatal(err)
					}
					chargeSum += a
				}
			}
			for k, n := range keys {
				if n > 1 {
					t.Errorf("key %s charged %d times", k, n)
				}
			}
			if len(keys) != len(tus) {
				t.Errorf("%d distinct charge keys for %d top-ups", len(keys), len(tus))
			}
			var creditSum money.Amount
			for _, en := range e.Credited(acct.ID) {
				creditSum += en.Amount
			}
			if topUpSum != chargeSum || chargeSum != creditSum {
				t.Errorf("succeeded top-ups %s, sandbox charges %s, ledger credits %s: want all equal",
					topUpSum.Format(usd), chargeSum.Format(usd), creditSum.Format(usd))
			}
			if bal := e.Balance(acct.ID); bal < topuptest.Amt("10.00") {
				t.Errorf("balance %s after the load, below the threshold", bal.Format(usd))
			}
			e.Verify()
		})
	}
}
