package ledger

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"
)

// Poster applies a group of postings in one transaction; Store.Post is one.
type Poster interface {
	Post(ctx context.Context, postings []Posting) ([]Result, error)
}

// CommitterConfig tunes group commit.
type CommitterConfig struct {
	// MaxGroup is the most postings one transaction takes (default 20,000).
	// A batch larger than that still commits whole, alone.
	MaxGroup int
	// Workers is how many groups may commit at once (default 1). Accounts
	// are split among the workers by a hash of their id, so two workers never
	// wait for each other's row locks, and one account's postings stay in
	// order. SQLite has one writer, so more only helps PostgreSQL.
	Workers int
	// Timeout bounds one group's transaction (default 30 s).
	Timeout time.Duration
	// OnCommit, when set, is told the size and duration of every group; the
	// metrics use it.
	OnCommit func(postings int, took time.Duration, err error)
	Logger   *slog.Logger
}

// Committer groups postings from concurrent callers into shared database
// transactions (group commit). Each caller gets its own results, and only
// after the transaction that holds them committed: durability is not traded
// for rate.
type Committer struct {
	cfg     CommitterConfig
	poster  Poster
	queues  []chan *request
	stop    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.RWMutex
	closed  bool
	onTopUp func()
}

type request struct {
	postings []Posting
	results  []Result
	err      error
	// failed counts the postings whose transaction failed; when all did,
	// the request's error is that failure, as before isolation.
	failed int
	done   chan struct{}
}

// ErrStopped is returned to postings submitted after Stop.
var ErrStopped = errors.New("ledger: committer stopped")

// NewCommitter returns a committer for poster; call Start before Submit.
func NewCommitter(poster Poster, cfg CommitterConfig) *Committer {
	if cfg.MaxGroup <= 0 {
		cfg.MaxGroup = 20_000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Committer{cfg: cfg, poster: poster, stop: make(chan struct{})}
	for range cfg.Workers {
		c.queues = append(c.queues, make(chan *request, 4096))
	}
	return c
}

// OnTopUp sets a function called after a group whose debits created an
// automatic top-up committed: the top-up worker's wake-up. Call it before
// Start.
func (c *Committer) OnTopUp(fn func()) { c.onTopUp = fn }

// Start runs the commit loops until Stop.
func (c *Committer) Start() {
	for w := range c.queues {
		c.wg.Add(1)
		go c.loop(c.queues[w])
	}
}

// Stop refuses new postings, commits those already queued and returns when
// the loops have ended.
func (c *Committer) Stop() {
	c.closeMu.Lock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
	c.closeMu.Unlock()
	c.wg.Wait()
}

// Submit queues postings to be applied in order, as if sent one after
// another, and waits for the commit. It waits even when ctx ends, because a
// posting already queued may commit and its caller must not be told
// otherwise. With several workers, a request that spans accounts of
// different workers is split; each account's postings keep their order.
func (c *Committer) Submit(ctx context.Context, postings []Posting) ([]Result, error) {
	for i := range postings {
		postings[i].Prepare()
	}
	parts, index := c.split(postings)
	c.closeMu.RLock()
	if c.closed {
		c.closeMu.RUnlock()
		return nil, ErrStopped
	}
	var queued []*request
	var ctxErr error
	for w, part := range parts {
		if len(part) == 0 {
			continue
		}
		r := &request{postings: part, done: make(chan struct{})}
		select {
		case c.queues[w] <- r:
			queued = append(queued, r)
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
		if ctxErr != nil {
			break
		}
	}
	c.closeMu.RUnlock()
	for _, r := range queued {
		<-r.done
	}
	if ctxErr != nil {
		return nil, ctxErr
	}
	if index == nil {
		return queued[0].results, queued[0].err
	}
	results := make([]Result, len(postings))
	k := 0
	for w, part := range parts {
		if len(part) == 0 {
			continue
		}
		r := queued[k]
		k++
		if r.err != nil {
			return nil, r.err
		}
		for j, res := range r.results {
			results[index[w][j]] = res
		}
	}
	return results, nil
}

// split assigns postings to workers by account; index is nil when one worker
// takes them all.
func (c *Committer) split(postings []Posting) (parts [][]Posting, index [][]int) {
	parts = make([][]Posting, len(c.queues))
	if len(c.queues) == 1 {
		parts[0] = postings
		return parts, nil
	}
	first := c.worker(postings[0].AccountID)
	same := true
	for i := 1; i < len(postings) && same; i++ {
		same = c.worker(postings[i].AccountID) == first
	}
	if same {
		parts[first] = postings
		return parts, nil
	}
	index = make([][]int, len(c.queues))
	for i := range postings {
		w := c.worker(postings[i].AccountID)
		parts[w] = append(parts[w], postings[i])
		index[w] = append(index[w], i)
	}
	return parts, index
}

func (c *Committer) worker(accountID string) int {
	h := fnv.New32a()
	h.Write([]byte(accountID))
	return int(h.Sum32() % uint32(len(c.queues)))
}

func (c *Committer) loop(queue chan *request) {
	defer c.wg.Done()
	group := make([]*request, 0, 256)
	for {
		var first *request
		select {
		case first = <-queue:
		case <-c.stop:
			// Drain what was queued before Stop; Submit no longer adds.
			for {
				select {
				case r := <-queue:
					c.commit(append(group[:0], r))
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
		n := len(first.postings)
	fill:
		for n < c.cfg.MaxGroup {
			select {
			case r := <-queue:
				group = append(group, r)
				n += len(r.postings)
			default:
				break fill
			}
		}
		c.commit(group)
	}
}

// commit applies a group in one transaction and hands each request its own
// slice of the results. When the transaction fails, the group is isolated:
// one request's poison (a value the database refuses, a fault we did not
// foresee) must not fail its neighbours, so the group is split in halves and
// each half committed on its own, down to the single posting, and only the
// postings that fail alone are answered with the error. The halves commit
// in order, so every account's postings keep their order.
func (c *Committer) commit(group []*request) {
	parts := make([]part, len(group))
	for i, r := range group {
		r.results = make([]Result, len(r.postings))
		parts[i] = part{r: r, to: len(r.postings)}
	}
	c.settle(parts, true)
	for _, r := range group {
		if r.failed == len(r.postings) {
			r.err, r.results = r.results[0].Err, nil
		}
		close(r.done)
	}
}

// part is a run of one request's postings, [from, to).
type part struct {
	r        *request
	from, to int
}

// settle commits parts in one transaction; on failure it splits them and
// commits each half, unless the failure is one that splitting cannot help
// (the database is unreachable, or the transaction ran out of time): then
// every posting is answered with it, as the whole group would have been.
func (c *Committer) settle(parts []part, first bool) {
	postings := gather(parts)
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	start := time.Now()
	results, err := c.poster.Post(ctx, postings)
	cancel()
	if c.cfg.OnCommit != nil {
		c.cfg.OnCommit(len(postings), time.Since(start), err)
	}
	if err == nil {
		off := 0
		for _, p := range parts {
			copy(p.r.results[p.from:p.to], results[off:off+p.to-p.from])
			off += p.to - p.from
		}
		c.wake(results)
		return
	}
	if len(postings) > 1 && c.splittable(err) {
		if first {
			c.cfg.Logger.Warn("commit group failed; isolating the postings that cause it", "postings", len(postings), "requests", len(parts), "err", err)
		}
		left, right := halve(parts, len(postings)/2)
		c.settle(left, false)
		c.settle(right, false)
		return
	}
	c.cfg.Logger.Error("commit", "postings", len(postings), "err", err)
	for _, p := range parts {
		for i := p.from; i < p.to; i++ {
			p.r.results[i] = Result{Err: err}
		}
		p.r.failed += p.to - p.from
	}
}

// splittable reports whether retrying a failed group in halves may succeed
// for some of it: not when the transaction timed out (each half could wait
// as long) nor when the database does not answer at all.
func (c *Committer) splittable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	pinger, ok := c.poster.(interface{ Ping(context.Context) error })
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return pinger.Ping(ctx) == nil
}

func gather(parts []part) []Posting {
	if len(parts) == 1 {
		p := parts[0]
		return p.r.postings[p.from:p.to]
	}
	n := 0
	for _, p := range parts {
		n += p.to - p.from
	}
	all := make([]Posting, 0, n)
	for _, p := range parts {
		all = append(all, p.r.postings[p.from:p.to]...)
	}
	return all
}

// halve splits parts after n postings, cutting a request's run in two when
// n falls inside it.
func halve(parts []part, n int) (left, right []part) {
	for i, p := range parts {
		size := p.to - p.from
		switch {
		case n >= size:
			left = append(left, p)
			n -= size
		case n == 0:
			return left, append(right, parts[i:]...)
		default:
			left = append(left, part{r: p.r, from: p.from, to: p.from + n})
			right = append(right, part{r: p.r, from: p.from + n, to: p.to})
			return left, append(right, parts[i+1:]...)
		}
	}
	return left, right
}

// wake tells the top-up worker when a commit created an automatic top-up.
func (c *Committer) wake(results []Result) {
	if c.onTopUp == nil {
		return
	}
	for i := range results {
		if results[i].TopUpID != "" && !results[i].Replayed && results[i].Err == nil {
			c.onTopUp()
			return
		}
	}
}
