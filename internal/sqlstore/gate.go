package sqlstore

import (
	"context"
	"sync"
)

// writeGate orders the writers of a database that has one writer
// connection (SQLite). database/sql hands a freed connection to a random
// waiter, so a short write (a top-up's claim, begin or settle, a renewal, a
// settings save) could wait for several of the committer's group commits,
// each tens to hundreds of milliseconds under a saturating debit load, and
// a top-up makes several such writes one after another. The gate lets every
// short write that is waiting go before the committer's next group: a short
// write waits for at most the group in progress. So that a stream of short
// writes cannot hold the debits back for ever, a group that waits is let in
// after at most maxUrgentRun short writes granted in a row.
//
// The gate only orders who asks the connection pool next; it holds no
// connection and changes nothing of what a transaction does or when it
// is durable.
type writeGate struct {
	mu     sync.Mutex
	held   bool
	urgent []chan struct{} // waiting short writes, first come first
	bulk   []chan struct{} // waiting groups, first come first
	// run counts the short writes granted in a row while a group waited.
	run int
}

// maxUrgentRun is how many short writes in a row may go before a waiting
// group.
const maxUrgentRun = 32

// lock waits for the writer's turn: bulk for the committer's groups, short
// writes otherwise. It fails only when ctx ends first.
func (g *writeGate) lock(ctx context.Context, bulk bool) error {
	g.mu.Lock()
	if !g.held && len(g.urgent) == 0 && len(g.bulk) == 0 {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{}, 1)
	if bulk {
		g.bulk = append(g.bulk, ch)
	} else {
		g.urgent = append(g.urgent, ch)
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.remove(ch, bulk) {
		return ctx.Err()
	}
	// Granted as ctx ended: pass the turn on.
	g.next()
	return ctx.Err()
}

// remove takes ch out of its queue, reporting whether it was still there.
func (g *writeGate) remove(ch chan struct{}, bulk bool) bool {
	q := &g.urgent
	if bulk {
		q = &g.bulk
	}
	for i, c := range *q {
		if c == ch {
			*q = append((*q)[:i], (*q)[i+1:]...)
			return true
		}
	}
	return false
}

// unlock ends a turn.
func (g *writeGate) unlock() {
	g.mu.Lock()
	g.next()
	g.mu.Unlock()
}

// next hands the turn to the next waiter, or frees the gate; g.mu is held.
func (g *writeGate) next() {
	switch {
	case len(g.urgent) > 0 && (len(g.bulk) == 0 || g.run < maxUrgentRun):
		if len(g.bulk) > 0 {
			g.run++
		}
		ch := g.urgent[0]
		g.urgent = g.urgent[1:]
		ch <- struct{}{}
	case len(g.bulk) > 0:
		g.run = 0
		ch := g.bulk[0]
		g.bulk = g.bulk[1:]
		ch <- struct{}{}
	default:
		g.held = false
		g.run = 0
	}
}
