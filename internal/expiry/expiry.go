// Package expiry is the worker that expires credit grants and warns of
// their expiry (PRODUCT.md "Credit grants and holds", Expiry). It decides
// nothing about money itself: it finds the accounts whose grants' expiry
// has come and submits a ledger.Sweep for each to the group committer, so
// that an expiration takes the account's lock and goes through the same
// plan as a debit (ledger.Apply expires only active grants, under that
// lock; the database allows one expiration entry per grant), and it asks
// the store to write credit.expiring for the grants that expire within
// seven days. It runs on one replica at a time (a named lease), and is
// safe without it.
package expiry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ledger"
)

// LeaseName is the worker's lease in the store.
const LeaseName = "expiry"

// Store is what the worker needs of storage; sqlstore.Ledger is one.
type Store interface {
	// ExpiryDue lists up to limit accounts holding an active grant whose
	// expires_at has come by now.
	ExpiryDue(ctx context.Context, now time.Time, limit int) ([]string, error)
	// WarnExpiring writes credit.expiring, once per grant, for up to limit
	// grants expiring within ledger.ExpiringNotice of now, and returns
	// how many it warned.
	WarnExpiring(ctx context.Context, now time.Time, limit int) (int, error)
	// TakeLease takes or renews a named lease for owner until now+ttl and
	// reports whether owner holds it.
	TakeLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives owner's lease up.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Config tunes the worker; zero values take the defaults.
type Config struct {
	// Interval is how often the worker looks (TOPUP_EXPIRY_INTERVAL,
	// default 30s): a grant is expired within about Interval of its
	// expires_at, well within the contract's minute.
	Interval time.Duration
	// Lease is how long a pass keeps other replicas' workers away unless
	// renewed (TOPUP_WORKER_LEASE, default 10s). It is renewed every
	// Lease/3 while the pass runs and lapses between passes, so the next
	// pass falls to whichever replica looks first: if this replica dies
	// mid-pass, another takes over within Lease plus Interval.
	Lease time.Duration
	// Batch is the most accounts (and warnings) one step handles (default
	// 500); a pass repeats a full step until it comes back short.
	Batch int
	// Owner names this worker in the lease (default: random).
	Owner  string
	Clock  clock.Clock
	Logger *slog.Logger
	// OnPass, when set, hears of every pass of Start's loop: tests wait on
	// it instead of sleeping.
	OnPass func(Pass, error)
	// AfterFind, when set, is called with the accounts a step found due,
	// before their sweeps are submitted: a test's seam to kill the worker
	// between finding and writing (an error ends the pass there).
	AfterFind func(accounts []string) error
}

// DefaultLease is the worker's lease when Config.Lease is zero.
const DefaultLease = 10 * time.Second

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.Owner = "expiry_" + hex.EncodeToString(b[:])
	}
	if c.Clock == nil {
		c.Clock = clock.System
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Pass is what one pass did.
type Pass struct {
	// Leased is false when another replica held the lease: the pass did
	// nothing.
	Leased bool
	// Warned counts the credit.expiring events written; Swept the
	// accounts whose sweep committed.
	Warned, Swept int
}

// Worker expires grants and warns of expiry: a loop (Start/Stop) around
// RunOnce, which tests and tools call directly.
type Worker struct {
	cfg      Config
	store    Store
	post     Post
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// Post applies postings in order and answers one result each: the group
// committer's Submit in production (so that sweeps share the debit path's
// groups and locks), a store's Post in tests.
type Post func(ctx context.Context, postings []ledger.Posting) ([]ledger.Result, error)

// New returns a worker that finds work in store and submits sweeps
// through post.
func New(store Store, post Post, cfg Config) *Worker {
	cfg.defaults()
	return &Worker{cfg: cfg, store: store, post: post, stop: make(chan struct{})}
}

// Start runs the worker until Stop: a pass at once, then one every
// Interval.
func (w *Worker) Start() {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(w.cfg.Interval)
		defer t.Stop()
		for {
			// The lease is renewed while the pass runs: the bound is the
			// pass's own, twice the interval.
			ctx, cancel := context.WithTimeout(context.Background(), max(2*w.cfg.Interval, w.cfg.Lease))
			p, err := w.RunOnce(ctx)
			cancel()
			if err != nil {
				w.cfg.Logger.Error("expiry worker pass", "err", err)
			}
			if w.cfg.OnPass != nil {
				w.cfg.OnPass(p, err)
			}
			select {
			case <-w.stop:
				w.release()
				return
			case <-t.C:
			}
		}
	}()
}

// release gives the lease up when the worker stops, so that another
// replica need not wait for it to run out.
func (w *Worker) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.store.ReleaseLease(ctx, LeaseName, w.cfg.Owner); err != nil {
		w.cfg.Logger.Warn("release the expiry lease", "err", err)
	}
}

// Stop ends the worker after its current pass. It may be called more than
// once, and without Start.
func (w *Worker) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

// RunOnce is one pass: take the lease (or do nothing while another replica
// holds it), write the warnings that are due, then sweep every account
// whose grants' expiry has come.
func (w *Worker) RunOnce(ctx context.Context) (Pass, error) {
	var p Pass
	now := w.cfg.Clock.Now()
	held, err := w.store.TakeLease(ctx, LeaseName, w.cfg.Owner, now, w.cfg.Lease)
	if err != nil || !held {
		return p, err
	}
	p.Leased = true
	defer w.keepLease(ctx)()
	for {
		n, err := w.store.WarnExpiring(ctx, now, w.cfg.Batch)
		p.Warned += n
		if err != nil {
			return p, err
		}
		if n < w.cfg.Batch {
			break
		}
	}
	return p, w.sweep(ctx, now, &p)
}

// keepLease renews the lease every Lease/3 until the returned stop is
// called or ctx ends (a dead process renews nothing: its lease runs out).
// A lease found taken by another replica is renewed no more; the pass goes
// on, as it safely may: sweeps expire each grant once, and warnings are
// written once per grant.
func (w *Worker) keepLease(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(w.cfg.Lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			held, err := w.store.TakeLease(ctx, LeaseName, w.cfg.Owner, w.cfg.Clock.Now(), w.cfg.Lease)
			switch {
			case err != nil && ctx.Err() != nil:
				return
			case err != nil:
				w.cfg.Logger.Warn("renew the expiry lease", "err", err)
			case !held:
				w.cfg.Logger.Warn("expiry lease lost to another replica during a pass")
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// sweep submits a sweep for each account found due, a batch at a time,
// until a batch comes back short or sweeps stop making progress (an
// account whose sweep fails is found again at the next pass).
func (w *Worker) sweep(ctx context.Context, now time.Time, p *Pass) error {
	for {
		ids, err := w.store.ExpiryDue(ctx, now, w.cfg.Batch)
		if err != nil || len(ids) == 0 {
			return err
		}
		if w.cfg.AfterFind != nil {
			if err := w.cfg.AfterFind(ids); err != nil {
				return err
			}
		}
		postings := make([]ledger.Posting, len(ids))
		for i, id := range ids {
			postings[i] = ledger.Sweep(id)
		}
		results, err := w.post(ctx, postings)
		if err != nil {
			return err
		}
		var failed error
		for i, r := range results {
			if r.Err != nil {
				failed = errors.Join(failed, r.Err)
				w.cfg.Logger.Error("expire grants", "account_id", ids[i], "err", r.Err)
				continue
			}
			p.Swept++
		}
		if failed != nil || len(ids) < w.cfg.Batch {
			return failed
		}
	}
}
