package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// poisonPoster behaves like a database that refuses a whole transaction when
// any posting in it holds a value it cannot store (a NUL byte in PostgreSQL
// text): the transaction fails, nothing of it is written. It records the keys
// it committed, in order.
type poisonPoster struct {
	mu        sync.Mutex
	committed []string
	calls     int
	down      bool  // Ping fails too: the database is unreachable
	err       error // the failure when poisoned; default a plain error
}

func (p *poisonPoster) Post(_ context.Context, postings []ledger.Posting) ([]ledger.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	for _, q := range postings {
		if p.down || strings.Contains(q.Description, "\x00") {
			if p.err != nil {
				return nil, p.err
			}
			return nil, fmt.Errorf("invalid byte sequence for encoding \"UTF8\": 0x00")
		}
	}
	out := make([]ledger.Result, len(postings))
	for i, q := range postings {
		p.committed = append(p.committed, q.IdempotencyKey)
		out[i] = ledger.Result{EntryID: q.IdempotencyKey, Balance: q.Amount}
	}
	return out, nil
}

func (p *poisonPoster) Ping(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("connection refused")
	}
	return nil
}

func posting(key, desc string) ledger.Posting {
	return ledger.Posting{AccountID: "acct_" + key[:1], Kind: ledger.KindUsage, Amount: -money.MicrosPerUnit, Description: desc,
		IdempotencyKey: key, Call: ledger.ScopeUsage}
}

// TestCommitterIsolatesPoison: while some callers send postings the
// database refuses, every other caller in their groups commits and gets its
// own answer; only the poison is refused.
func TestCommitterIsolatesPoison(t *testing.T) {
	t.Parallel()
	p := &poisonPoster{}
	c := ledger.NewCommitter(p, ledger.CommitterConfig{})
	c.Start()
	defer c.Stop()
	var wg sync.WaitGroup
	var healthyFailed, poisonAccepted, healthy, poison atomic.Int32
	for g := range 32 {
		wg.Go(func() {
			for i := range 40 {
				key := fmt.Sprintf("%c-%d-%d", 'a'+g%6, g, i)
				desc := "ok"
				bad := (g+i)%7 == 0
				if bad {
					desc = "bad\x00"
				}
				res, err := c.Submit(context.Background(), []ledger.Posting{posting(key, desc)})
				switch {
				case bad:
					poison.Add(1)
					if err == nil && res[0].Err == nil {
						poisonAccepted.Add(1)
					}
				default:
					healthy.Add(1)
					if err != nil || res[0].Err != nil || res[0].EntryID != key {
						healthyFailed.Add(1)
						t.Errorf("healthy %s: %v %+v", key, err, res)
					}
				}
			}
		})
	}
	wg.Wait()
	if healthyFailed.Load() != 0 || poisonAccepted.Load() != 0 {
		t.Fatalf("%d of %d healthy postings failed, %d of %d poison postings were accepted",
			healthyFailed.Load(), healthy.Load(), poisonAccepted.Load(), poison.Load())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.committed) != int(healthy.Load()) {
		t.Fatalf("%d postings committed, want the %d healthy ones", len(p.committed), healthy.Load())
	}
}

// TestCommitterIsolatesInsideABatch: a batch whose events include poison
// keeps the rest, in order; the poison events get their own errors.
func TestCommitterIsolatesInsideABatch(t *testing.T) {
	t.Parallel()
	p := &poisonPoster{}
	c := ledger.NewCommitter(p, ledger.CommitterConfig{})
	c.Start()
	defer c.Stop()
	batch := make([]ledger.Posting, 100)
	for i := range batch {
		desc := "ok"
		if i == 3 || i == 77 || i == 78 {
			desc = "\x00"
		}
		batch[i] = posting(fmt.Sprintf("b%03d", i), desc)
	}
	res, err := c.Submit(context.Background(), batch)
	if err != nil {
		t.Fatalf("a batch with three poison events failed whole: %v", err)
	}
	for i, r := range res {
		bad := i == 3 || i == 77 || i == 78
		if bad != (r.Err != nil) || (!bad && r.EntryID != batch[i].IdempotencyKey) {
			t.Errorf("event %d: %+v", i, r)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.committed) != 97 {
		t.Fatalf("%d events committed, want 97", len(p.committed))
	}
	for i := 1; i < len(p.committed); i++ {
		if p.committed[i-1] >= p.committed[i] {
			t.Fatalf("events committed out of order: %s before %s", p.committed[i-1], p.committed[i])
		}
	}
	// Bisection costs about two transactions per poison per halving, not one
	// per posting.
	if p.calls > 30 {
		t.Errorf("%d transactions to isolate 3 poison events among 100", p.calls)
	}
}

// TestCommitterDoesNotSplitWhenTheDatabaseIsDown: splitting cannot help when
// the database does not answer; the group fails once, every caller hears.
func TestCommitterDoesNotSplitWhenTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		p    *poisonPoster
	}{
		{"unreachable", &poisonPoster{down: true}},
		{"timed out", &poisonPoster{down: false, err: fmt.Errorf("commit: %w", context.DeadlineExceeded)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			c := ledger.NewCommitter(p, ledger.CommitterConfig{})
			c.Start()
			defer c.Stop()
			batch := make([]ledger.Posting, 64)
			for i := range batch {
				batch[i] = posting(fmt.Sprintf("d%02d", i), "\x00")
			}
			res, err := c.Submit(context.Background(), batch)
			if err == nil || res != nil {
				t.Fatalf("submit = %v, %v; want the failure", res, err)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.calls != 1 {
				t.Fatalf("%d transactions; want 1 (no splitting)", p.calls)
			}
		})
	}
}
