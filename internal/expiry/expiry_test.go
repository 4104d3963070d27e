package expiry_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/expiry"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/storetest"
	"github.com/topup/topup/internal/workertest"
)

func open(t *testing.T) *sqlstore.DB {
	t.Helper()
	c := storetest.NewClock()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "topup.db"), c, storetest.NewIDs(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestWorkerStartStop: the running worker expires a due grant through the
// group committer at its first pass; Stop returns (twice, and without
// Start) and gives the lease up, so that another replica's worker may run
// at once.
func TestWorkerStartStop(t *testing.T) {
	t.Parallel()
	s := open(t)
	usd, _ := money.LookupCurrency("usd")
	g := ids.New(s.Clock())
	a := ledger.Account{ID: g.New(ids.Account), Email: "w@example.com", Currency: usd, Status: ledger.Active, CreatedAt: storetest.Epoch}
	if err := s.CreateAccount(t.Context(), a, ledger.DefaultKey(a, "hash", "")); err != nil {
		t.Fatal(err)
	}
	c := ledger.NewCommitter(s.Ledger, ledger.CommitterConfig{})
	c.Start()
	defer c.Stop()
	p := ledger.Posting{AccountID: a.ID, Kind: ledger.KindCredit, Amount: 5 * money.MicrosPerUnit, IdempotencyKey: "c", Call: ledger.ScopeCredit,
		Terms: ledger.GrantTerms{Category: ledger.Promotional, Priority: 10, ExpiresAt: storetest.Epoch.Truncate(time.Microsecond)}}
	if r, err := c.Submit(t.Context(), []ledger.Posting{p}); err != nil || r[0].Err != nil {
		t.Fatalf("credit: %v %+v", err, r)
	}

	never := expiry.New(s.Ledger, c.Submit, expiry.Config{})
	workertest.StopReturns(t, "Stop without Start", never.Stop)
	workertest.StopReturns(t, "a second Stop without Start", never.Stop)

	passes := make(chan expiry.Pass, 100)
	w := expiry.New(s.Ledger, c.Submit, expiry.Config{Owner: "one", Interval: time.Hour, Clock: s.Clock(), OnPass: func(p expiry.Pass, err error) {
		if err != nil {
			t.Errorf("pass: %v", err)
		}
		passes <- p
	}})
	w.Start()
	select {
	case p := <-passes:
		if !p.Leased || p.Swept != 1 {
			t.Errorf("first pass %+v; want the account swept", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pass within 10s")
	}
	workertest.StopReturns(t, "Stop", w.Stop)
	workertest.StopReturns(t, "a second Stop", w.Stop)
	if b, err := s.Account(t.Context(), a.ID); err != nil || b.Balance != 0 {
		t.Errorf("balance after the expiry: %v %v", b.Balance, err)
	}
	if held, err := s.TakeLease(t.Context(), expiry.LeaseName, "two", s.Clock().Now(), time.Minute); err != nil || !held {
		t.Errorf("after Stop another worker could not take the lease: %v %v", held, err)
	}
}

// TestDeadWorkerLeaseTakenOver: on the wall clock with a one-second
// lease, a pass that runs three leases long keeps its lease (renewed), so
// another replica's worker does nothing; once its replica dies mid-pass
// (its context ends, nothing released) another worker takes the lease
// within three leases and expires the grant.
func TestDeadWorkerLeaseTakenOver(t *testing.T) {
	t.Parallel()
	const lease = time.Second
	s := open(t)
	usd, _ := money.LookupCurrency("usd")
	g := ids.New(s.Clock())
	a := ledger.Account{ID: g.New(ids.Account), Email: "dead@example.com", Currency: usd, Status: ledger.Active, CreatedAt: storetest.Epoch}
	if err := s.CreateAccount(t.Context(), a, ledger.DefaultKey(a, "hash", "")); err != nil {
		t.Fatal(err)
	}
	p := ledger.Posting{AccountID: a.ID, Kind: ledger.KindCredit, Amount: 5 * money.MicrosPerUnit, IdempotencyKey: "c", Call: ledger.ScopeCredit,
		Terms: ledger.GrantTerms{Category: ledger.Promotional, Priority: 10, ExpiresAt: storetest.Epoch.Truncate(time.Microsecond)}}
	if r, err := s.Post(t.Context(), []ledger.Posting{p}); err != nil || r[0].Err != nil {
		t.Fatalf("credit: %v %+v", err, r)
	}
	found, dead := make(chan struct{}), make(chan struct{})
	dying := expiry.New(s.Ledger, s.Post, expiry.Config{Owner: "dying", Lease: lease, Clock: clock.System, AfterFind: func([]string) error {
		close(found)
		<-dead
		return errors.New("killed")
	}})
	alive, kill := context.WithCancel(context.Background())
	passDone := make(chan struct{})
	go func() {
		defer close(passDone)
		dying.RunOnce(alive)
	}()
	<-found
	survivor := expiry.New(s.Ledger, s.Post, expiry.Config{Owner: "survivor", Lease: lease, Clock: clock.System})
	time.Sleep(3 * lease)
	if p, err := survivor.RunOnce(t.Context()); err != nil || p.Leased {
		t.Fatalf("another worker's pass while the first ran three leases: %+v, %v; want nothing done (the lease renewed)", p, err)
	}
	kill()
	killed := time.Now()
	for {
		p, err := survivor.RunOnce(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if p.Leased {
			took := time.Since(killed)
			t.Logf("the lease of a dead replica's expiry worker was taken over %s after its death (lease %s)", took.Round(time.Millisecond), lease)
			if took > 3*lease || p.Swept != 1 {
				t.Errorf("taken over after %s, pass %+v; want within %s, the account swept", took, p, 3*lease)
			}
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatal("the lease was not taken over within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(dead)
	<-passDone
	if b, err := s.Account(t.Context(), a.ID); err != nil || b.Balance != 0 {
		t.Errorf("balance after the expiry: %v %v", b.Balance, err)
	}
}
