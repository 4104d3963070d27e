package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// queued waits until the gate has urgent short writes and bulk groups
// waiting.
func queued(t *testing.T, g *writeGate, urgent, bulk int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		g.mu.Lock()
		u, b := len(g.urgent), len(g.bulk)
		g.mu.Unlock()
		if u == urgent && b == bulk {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate: %d short writes and %d groups waiting, want %d and %d", u, b, urgent, bulk)
		}
		time.Sleep(time.Millisecond)
	}
}

// order records the turns taken.
type order struct {
	mu    sync.Mutex
	names []string
}

func (o *order) take(t *testing.T, g *writeGate, wg *sync.WaitGroup, name string, bulk bool) {
	wg.Go(func() {
		if err := g.lock(context.Background(), bulk); err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		o.mu.Lock()
		o.names = append(o.names, name)
		o.mu.Unlock()
		g.unlock()
	})
}

// A short write (a top-up's settle) that comes while a group commits and
// another group is already waiting goes before the waiting group: it waits
// for the one group in progress, not for every group queued before it.
func TestWriteGateShortWriteWaitsForOneGroup(t *testing.T) {
	g := &writeGate{}
	if err := g.lock(context.Background(), true); err != nil { // the group in progress
		t.Fatal(err)
	}
	var o order
	var wg sync.WaitGroup
	o.take(t, g, &wg, "group 2", true)
	queued(t, g, 0, 1)
	o.take(t, g, &wg, "group 3", true)
	queued(t, g, 0, 2)
	o.take(t, g, &wg, "settle", false)
	queued(t, g, 1, 2)
	o.take(t, g, &wg, "claim", false)
	queued(t, g, 2, 2)
	g.unlock()
	wg.Wait()
	if want := []string{"settle", "claim", "group 2", "group 3"}; !slices.Equal(o.names, want) {
		t.Fatalf("turns %v, want %v", o.names, want)
	}
	if g.held {
		t.Fatal("the gate is still held after every turn ended")
	}
}

// A stream of short writes cannot hold a waiting group back for ever: it
// goes after maxUrgentRun of them.
func TestWriteGateGroupNotStarved(t *testing.T) {
	g := &writeGate{}
	if err := g.lock(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	var o order
	var wg sync.WaitGroup
	o.take(t, g, &wg, "group", true)
	queued(t, g, 0, 1)
	n := maxUrgentRun + 5
	for i := range n {
		o.take(t, g, &wg, fmt.Sprint("write ", i), false)
		queued(t, g, i+1, 1)
	}
	g.unlock()
	wg.Wait()
	if at := slices.Index(o.names, "group"); at != maxUrgentRun {
		t.Fatalf("the group took its turn after %d short writes, want %d: %v", at, maxUrgentRun, o.names)
	}
	for i := range n {
		// The short writes keep their order.
		want := fmt.Sprint("write ", i)
		at := i
		if i >= maxUrgentRun {
			at++
		}
		if o.names[at] != want {
			t.Fatalf("turn %d is %q, want %q: %v", at, o.names[at], want, o.names)
		}
	}
}

// A waiter whose context ends leaves the queue, and the turn passes on to
// the others.
func TestWriteGateCanceledWaiter(t *testing.T) {
	g := &writeGate{}
	if err := g.lock(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() { errs <- g.lock(ctx, false) }()
	queued(t, g, 1, 0)
	var o order
	var wg sync.WaitGroup
	o.take(t, g, &wg, "group", true)
	queued(t, g, 1, 1)
	cancel()
	if err := <-errs; err != context.Canceled {
		t.Fatalf("lock with a canceled context: %v, want context.Canceled", err)
	}
	queued(t, g, 0, 1)
	g.unlock()
	wg.Wait()
	if want := []string{"group"}; !slices.Equal(o.names, want) {
		t.Fatalf("turns %v, want %v", o.names, want)
	}
	if err := g.lock(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	g.unlock()
}
