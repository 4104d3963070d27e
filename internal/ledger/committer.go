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
	done     chan struct{}
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
// slice of the results.
func (c *Committer) commit(group []*request) {
	var all []Posting
	if len(group) == 1 {
		all = group[0].postings
	} else {
		n := 0
		for _, r := range group {
			n += len(r.postings)
		}
		all = make([]Posting, 0, n)
		for _, r := range group {
			all = append(all, r.postings...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	start := time.Now()
	results, err := c.poster.Post(ctx, all)
	cancel()
	if c.cfg.OnCommit != nil {
		c.cfg.OnCommit(len(all), time.Since(start), err)
	}
	if err != nil {
		c.cfg.Logger.Error("commit group", "postings", len(all), "requests", len(group), "err", err)
	} else if c.onTopUp != nil {
		for i := range results {
			if results[i].TopUpID != "" && !results[i].Replayed {
				c.onTopUp()
				break
			}
		}
	}
	off := 0
	for _, r := range group {
		if err != nil {
			r.err = err
		} else {
			r.results = results[off : off+len(r.postings) : off+len(r.postings)]
		}
		off += len(r.postings)
		close(r.done)
	}
}
