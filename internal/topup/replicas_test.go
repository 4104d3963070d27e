package topup_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
)

// replicaLease is the claim of the replicas' engines: short, so that the
// tests measure resumption on the wall clock in seconds.
const replicaLease = time.Second

// replicaEngine is one replica's engine on the wall clock, with a short
// lease, telling settled top-ups to settled.
func replicaEngine(t *testing.T, e *topuptest.Env, settled func(topup.Settled)) *topup.Engine {
	return topup.NewEngine(e.Store.Payments, e.Scripted, topup.Config{Clock: clock.System, RetryBackoff: time.Hour, Lease: replicaLease,
		PollInterval: 20 * time.Millisecond, SweepInterval: time.Second, Logger: topuptest.Logger(t, slog.LevelInfo), OnSettled: settled})
}

// crossing makes an account whose debit crosses its threshold (10.00, a
// target of 25.00) on a card that succeeds, and returns the top-up.
func crossing(t *testing.T, e *topuptest.Env) topup.TopUp {
	t.Helper()
	acct := e.Account()
	e.Card(e.Scripted, acct.ID, "pm_card_visa")
	e.Credit(acct.ID, "30.00")
	e.Enable(acct.ID, "10.00", "25.00")
	r := e.Use(acct.ID, "25.00")
	if r.TopUpID == "" {
		t.Fatal("the debit that crossed the threshold names no top-up")
	}
	return e.TopUp(r.TopUpID)
}

// settledOnce waits for the first settlement of top-up id through ch and
// returns when it came.
func settledOnce(t *testing.T, ch <-chan topup.Settled, id string, within time.Duration) (topup.Settled, time.Time) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case s := <-ch:
			if s.TopUp.ID == id {
				return s, time.Now()
			}
		case <-deadline:
			t.Fatalf("top-up %s not settled within %s", id, within)
		}
	}
}

// wantOneCharge checks that the provider charged the top-up once, that the
// top-up succeeded after attempts attempts, and that the ledger credited
// it once.
func wantOneCharge(t *testing.T, e *topuptest.Env, tu topup.TopUp, attempts int) {
	t.Helper()
	var n int
	for _, c := range chargesOf(e) {
		if c.TopUpID == tu.ID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the sandbox holds %d charges of top-up %s, want 1", n, tu.ID)
	}
	got := e.TopUp(tu.ID)
	wantStatus(t, got, topup.Succeeded, "")
	if got.Attempts != attempts {
		t.Errorf("top-up %s was attempted %d times, want %d", tu.ID, got.Attempts, attempts)
	}
	wantCredits(t, e, tu.AccountID, got)
	wantBalance(t, e, tu.AccountID, "25.00")
}

// TestDeadReplicaResumed: a replica dies while its provider call is in
// flight (its context ends, nothing is released). Until then it renews its
// one-second claim, and the other replica leaves the top-up alone however
// long the charge takes; after its death the claim runs out and the other
// replica resumes the top-up within three leases. The provider charged
// once (the second attempt sends the same key), the ledger credited once.
func TestDeadReplicaResumed(t *testing.T) {
	t.Parallel()
	reps := topuptest.NewLiveReplicas(t, 2)
	a, b := reps[0], reps[1]
	tu := crossing(t, a)

	charging, release := make(chan struct{}), make(chan struct{})
	a.Faults.Script(sandbox.Fault{During: func() {
		close(charging)
		<-release // the dead replica's provider call never answers it
	}})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	dying := replicaEngine(t, a, nil)
	alive, kill := context.WithCancel(context.Background())
	passDone := make(chan error, 1)
	go func() {
		_, err := dying.RunOnce(alive)
		passDone <- err
	}()
	select {
	case <-charging:
	case <-time.After(10 * time.Second):
		t.Fatal("the first replica never called the provider")
	}

	settled := make(chan topup.Settled, 16)
	survivor := replicaEngine(t, b, func(s topup.Settled) { settled <- s })
	survivor.Start()
	defer survivor.Stop()

	// Three leases of a charge in flight: renewed, the claim holds.
	time.Sleep(3 * replicaLease)
	if n := len(a.Faults.Requests()); n != 1 {
		t.Fatalf("%d charge requests while the first replica's charge was in flight, want 1: its claim was not kept", n)
	}
	if got := a.TopUp(tu.ID); got.Attempts != 1 || got.Status != topup.Processing {
		t.Fatalf("top-up while the first replica charges: %s after %d attempts, want processing after 1", got.Status, got.Attempts)
	}

	kill()
	killed := time.Now()
	_, at := settledOnce(t, settled, tu.ID, 10*time.Second)
	resumed := at.Sub(killed)
	t.Logf("a dead replica's top-up was resumed and settled %s after its death (lease %s)", resumed.Round(time.Millisecond), replicaLease)
	if resumed > 3*replicaLease {
		t.Errorf("resumed %s after the death, want within 3 leases (%s)", resumed, 3*replicaLease)
	}
	wantOneCharge(t, a, tu, 2)

	// The dead replica's call answers at last: it settles nothing more.
	releaseOnce.Do(func() { close(release) })
	if err := <-passDone; err != nil {
		t.Logf("the dead replica's pass: %v", err)
	}
	wantOneCharge(t, a, tu, 2)
}

// TestSlowChargeKeepsItsClaim: a provider call three times longer than the
// lease, with two replicas looking for work every 20 ms: the claim is
// renewed while the call runs, so the other replica never attempts the
// top-up; one request, one attempt, one charge, one credit.
func TestSlowChargeKeepsItsClaim(t *testing.T) {
	t.Parallel()
	reps := topuptest.NewLiveReplicas(t, 2)
	tu := crossing(t, reps[0])
	reps[0].Faults.Script(sandbox.Fault{Delay: 3 * replicaLease})

	settled := make(chan topup.Settled, 16)
	for _, e := range reps {
		eng := replicaEngine(t, e, func(s topup.Settled) { settled <- s })
		eng.Start()
		defer eng.Stop()
	}
	s, _ := settledOnce(t, settled, tu.ID, 15*time.Second)
	if s.TopUp.Status != topup.Succeeded {
		t.Fatalf("top-up settled %s, want succeeded", s.TopUp.Status)
	}
	if n := len(reps[0].Faults.Requests()); n != 1 {
		t.Errorf("%d charge requests, want 1: another replica attempted the top-up while its charge ran", n)
	}
	wantOneCharge(t, reps[1], tu, 1)
}
