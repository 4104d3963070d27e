package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/workertest"
)

// echoPoster answers each posting with its own key as the entry id, and
// records the size of every group it is given.
type echoPoster struct {
	mu     sync.Mutex
	groups []int
	delay  time.Duration
	fail   atomic.Bool
}

func (p *echoPoster) Post(_ context.Context, postings []ledger.Posting) ([]ledger.Result, error) {
	time.Sleep(p.delay)
	p.mu.Lock()
	p.groups = append(p.groups, len(postings))
	p.mu.Unlock()
	if p.fail.Load() {
		return nil, fmt.Errorf("database down")
	}
	out := make([]ledger.Result, len(postings))
	for i, q := range postings {
		out[i] = ledger.Result{EntryID: q.IdempotencyKey, Balance: q.Amount}
	}
	return out, nil
}

// TestCommitterGroupsAndRoutes: many concurrent callers share group commits,
// and each gets exactly its own results, in its own order.
func TestCommitterGroupsAndRoutes(t *testing.T) {
	t.Parallel()
	p := &echoPoster{delay: time.Millisecond}
	c := ledger.NewCommitter(p, ledger.CommitterConfig{})
	c.Start()
	defer c.Stop()
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 20 {
				n := 1 + (g+i)%3
				postings := make([]ledger.Posting, n)
				for k := range postings {
					postings[k] = ledger.Posting{AccountID: "a", Kind: ledger.KindUsage, Amount: money.Amount(-(k + 1)),
						IdempotencyKey: fmt.Sprintf("g%d-i%d-k%d", g, i, k), Call: ledger.ScopeUsage}
				}
				res, err := c.Submit(context.Background(), postings)
				if err != nil {
					t.Errorf("submit: %v", err)
					return
				}
				for k := range postings {
					if res[k].EntryID != postings[k].IdempotencyKey || res[k].Balance != postings[k].Amount {
						t.Errorf("caller g%d i%d got result %+v for posting %d (%s)", g, i, res[k], k, postings[k].IdempotencyKey)
					}
				}
			}
		})
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	largest := 0
	for _, n := range p.groups {
		largest = max(largest, n)
	}
	if len(p.groups) >= 64*20 || largest < 2 {
		t.Errorf("%d commits for %d submissions, largest group %d: nothing was grouped", len(p.groups), 64*20, largest)
	}
}

// TestCommitterFailureReachesEveryCaller: when a group's transaction fails,
// every caller in it hears so, and none gets results.
func TestCommitterFailureReachesEveryCaller(t *testing.T) {
	t.Parallel()
	p := &echoPoster{}
	p.fail.Store(true)
	c := ledger.NewCommitter(p, ledger.CommitterConfig{})
	c.Start()
	defer c.Stop()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 16 {
		wg.Go(func() {
			res, err := c.Submit(context.Background(), []ledger.Posting{{AccountID: "a", IdempotencyKey: fmt.Sprint(i), Amount: -1}})
			if err != nil && res == nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 16 {
		t.Fatalf("%d of 16 callers heard of the failed commit", failed.Load())
	}
}

// TestCommitterStop: Stop commits what was queued, and later submissions are
// refused rather than lost.
func TestCommitterStop(t *testing.T) {
	t.Parallel()
	p := &echoPoster{delay: 5 * time.Millisecond}
	c := ledger.NewCommitter(p, ledger.CommitterConfig{})
	c.Start()
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 32 {
		wg.Go(func() {
			if _, err := c.Submit(context.Background(), []ledger.Posting{{AccountID: "a", IdempotencyKey: fmt.Sprint(i), Amount: -1}}); err == nil {
				ok.Add(1)
			}
		})
	}
	time.Sleep(2 * time.Millisecond)
	c.Stop()
	wg.Wait()
	p.mu.Lock()
	committed := 0
	for _, n := range p.groups {
		committed += n
	}
	p.mu.Unlock()
	if int(ok.Load()) != committed {
		t.Fatalf("%d callers were told their posting committed, but %d postings were committed", ok.Load(), committed)
	}
	if _, err := c.Submit(context.Background(), []ledger.Posting{{AccountID: "a", IdempotencyKey: "late"}}); err != ledger.ErrStopped {
		t.Fatalf("submit after Stop = %v, want ErrStopped", err)
	}
}

// TestCommitterStopIsIdempotent: Stop may be called twice, and without
// Start, and returns each time; postings submitted after it are refused.
func TestCommitterStopIsIdempotent(t *testing.T) {
	t.Parallel()
	never := ledger.NewCommitter(&echoPoster{}, ledger.CommitterConfig{Workers: 2})
	workertest.StopReturns(t, "Stop without Start", never.Stop)
	workertest.StopReturns(t, "a second Stop without Start", never.Stop)
	if _, err := never.Submit(context.Background(), []ledger.Posting{{AccountID: "a", IdempotencyKey: "late"}}); err != ledger.ErrStopped {
		t.Fatalf("submit after Stop = %v, want ErrStopped", err)
	}

	c := ledger.NewCommitter(&echoPoster{}, ledger.CommitterConfig{Workers: 2})
	c.Start()
	if _, err := c.Submit(context.Background(), []ledger.Posting{{AccountID: "a", IdempotencyKey: "k", Amount: -1}}); err != nil {
		t.Fatal(err)
	}
	workertest.StopReturns(t, "Stop", c.Stop)
	workertest.StopReturns(t, "a second Stop", c.Stop)
}

// orderPoster records, per account, the keys in the order they were
// committed.
type orderPoster struct {
	mu    sync.Mutex
	order map[string][]string
}

func (p *orderPoster) Post(_ context.Context, postings []ledger.Posting) ([]ledger.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ledger.Result, len(postings))
	for i, q := range postings {
		p.order[q.AccountID] = append(p.order[q.AccountID], q.IdempotencyKey)
		out[i] = ledger.Result{EntryID: q.IdempotencyKey}
	}
	return out, nil
}

// TestCommitterWorkersSplitByAccount: with several workers, a request that
// spans accounts is split among them, each caller still gets its results in
// its own order, and every account's postings commit in submission order.
func TestCommitterWorkersSplitByAccount(t *testing.T) {
	t.Parallel()
	p := &orderPoster{order: map[string][]string{}}
	c := ledger.NewCommitter(p, ledger.CommitterConfig{Workers: 3})
	c.Start()
	defer c.Stop()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				postings := make([]ledger.Posting, 7)
				for k := range postings {
					// Each caller has its own accounts, so their order is its own.
					postings[k] = ledger.Posting{AccountID: fmt.Sprintf("g%d-a%d", g, (i+k)%5), Amount: -1,
						IdempotencyKey: fmt.Sprintf("%03d-%d", i, k), Call: ledger.ScopeUsage}
				}
				res, err := c.Submit(context.Background(), postings)
				if err != nil {
					t.Errorf("submit: %v", err)
					return
				}
				for k := range postings {
					if res[k].EntryID != postings[k].IdempotencyKey {
						t.Errorf("posting %d got the result of %s", k, res[k].EntryID)
					}
				}
			}
		})
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) != 40 {
		t.Fatalf("%d accounts committed, want 40", len(p.order))
	}
	for acct, keys := range p.order {
		for i := 1; i < len(keys); i++ {
			if keys[i] < keys[i-1] {
				t.Fatalf("account %s committed %s after %s", acct, keys[i], keys[i-1])
			}
		}
	}
}
