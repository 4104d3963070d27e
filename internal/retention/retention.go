// Package retention is the worker that forgets usage idempotency keys once
// they are older than TOPUP_IDEMPOTENCY_RETENTION (PRODUCT.md
// "Conventions"), so that the idempotency table stops growing with the
// ledger: a usage call's key then no longer replays, and the same key
// debits again. Every other kind of key is kept for ever, and entries keep
// their idempotency_key for ever. The worker deletes in short chunks, so
// that the debit path, which writes the same table, never waits long; it
// runs on one replica at a time (a named lease), and is safe without it.
package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/topup/topup/internal/clock"
)

// LeaseName is the worker's lease in the store.
const LeaseName = "idempotency_retention"

// MinRetention is the shortest retention the contract allows: a client's
// retries of one call, a day apart at most, must still replay.
const MinRetention = 24 * time.Hour

// DefaultRetention is the retention when none is set (30 days).
const DefaultRetention = 30 * 24 * time.Hour

// Store is what the worker needs of storage; sqlstore.Ledger is one.
type Store interface {
	// PruneUsageKeys deletes up to limit usage idempotency rows written
	// before before, oldest first, in one transaction, and returns how
	// many it deleted.
	PruneUsageKeys(ctx context.Context, before time.Time, limit int) (int, error)
	// TakeLease takes or renews a named lease for owner until now+ttl and
	// reports whether owner holds it.
	TakeLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives owner's lease up.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Config tunes the worker; zero values take the defaults.
type Config struct {
	// Retention is how long a usage key is remembered
	// (TOPUP_IDEMPOTENCY_RETENTION, default 30 days). New refuses less
	// than MinRetention.
	Retention time.Duration
	// Interval is how often the worker looks (default 1m): each pass has
	// about an interval's worth of keys to delete.
	Interval time.Duration
	// Lease is how long a pass keeps other replicas' workers away unless
	// renewed (TOPUP_WORKER_LEASE, default 10s); it is renewed between
	// chunks.
	Lease time.Duration
	// Batch is the most rows one transaction deletes (default 5,000): a
	// chunk holds SQLite's writer, and on PostgreSQL the deleted rows'
	// locks, for a few milliseconds only. A pass repeats a full chunk
	// until one comes back short.
	Batch int
	// Owner names this worker in the lease (default: random).
	Owner  string
	Clock  clock.Clock
	Logger *slog.Logger
	// OnPrune, when set, hears of each chunk's deleted rows once it has
	// committed (the topup_idempotency_pruned_total counter).
	OnPrune func(n int)
	// OnPass, when set, hears of every pass of Start's loop: tests wait on
	// it instead of sleeping.
	OnPass func(Pass, error)
}

// DefaultLease is the worker's lease when Config.Lease is zero.
const DefaultLease = 10 * time.Second

func (c *Config) defaults() {
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.Batch <= 0 {
		c.Batch = 5000
	}
	if c.Owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.Owner = "retention_" + hex.EncodeToString(b[:])
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
	// Before is the pass's cut: usage keys written before it were deleted.
	Before time.Time
	// Pruned counts the rows deleted; Chunks the transactions that did.
	Pruned, Chunks int
}

// Worker deletes usage idempotency keys older than the retention: a loop
// (Start/Stop) around RunOnce, which tests and tools call directly.
type Worker struct {
	cfg      Config
	store    Store
	stop     chan struct{}
	stopOnce sync.Once
	// ctx ends with Stop, and with it a pass in progress.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a worker over store; a retention under MinRetention is an
// error.
func New(store Store, cfg Config) (*Worker, error) {
	cfg.defaults()
	if cfg.Retention < MinRetention {
		return nil, fmt.Errorf("idempotency retention %s is under the contract's %s", cfg.Retention, MinRetention)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Worker{cfg: cfg, store: store, stop: make(chan struct{}), ctx: ctx, cancel: cancel}, nil
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
			// A pass is bounded by twice the interval (the next one goes on
			// where it stopped) and ended by Stop between chunks.
			ctx, cancel := context.WithTimeout(w.ctx, max(2*w.cfg.Interval, w.cfg.Lease))
			p, err := w.RunOnce(ctx)
			cancel()
			if err != nil && w.ctx.Err() == nil {
				w.cfg.Logger.Error("idempotency retention pass", "err", err, "pruned", p.Pruned)
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
		w.cfg.Logger.Warn("release the idempotency retention lease", "err", err)
	}
}

// Stop ends the worker, a pass in progress after its current chunk. It may
// be called more than once, and without Start.
func (w *Worker) Stop() {
	w.stopOnce.Do(func() {
		close(w.stop)
		w.cancel()
	})
	w.wg.Wait()
}

// RunOnce is one pass: take the lease (or do nothing while another replica
// holds it), then delete the usage keys written before now less the
// retention, a chunk per transaction, renewing the lease between chunks,
// until a chunk comes back short. A pass that loses its lease stops there;
// had it gone on, no harm: two replicas deleting the same old rows delete
// each once.
func (w *Worker) RunOnce(ctx context.Context) (Pass, error) {
	now := w.cfg.Clock.Now()
	p := Pass{Before: now.Add(-w.cfg.Retention)}
	held, err := w.store.TakeLease(ctx, LeaseName, w.cfg.Owner, now, w.cfg.Lease)
	if err != nil || !held {
		return p, err
	}
	p.Leased = true
	start := time.Now()
	for {
		n, err := w.store.PruneUsageKeys(ctx, p.Before, w.cfg.Batch)
		if err != nil {
			return p, err
		}
		if n > 0 {
			p.Pruned += n
			p.Chunks++
			if w.cfg.OnPrune != nil {
				w.cfg.OnPrune(n)
			}
		}
		if n < w.cfg.Batch {
			break
		}
		held, err := w.store.TakeLease(ctx, LeaseName, w.cfg.Owner, w.cfg.Clock.Now(), w.cfg.Lease)
		if err != nil {
			return p, err
		}
		if !held {
			w.cfg.Logger.Warn("idempotency retention lease lost to another replica during a pass", "pruned", p.Pruned)
			break
		}
	}
	level := slog.LevelDebug
	if p.Pruned > 0 {
		level = slog.LevelInfo
	}
	w.cfg.Logger.Log(ctx, level, "usage idempotency keys pruned", "pruned", p.Pruned, "chunks", p.Chunks,
		"before", p.Before.UTC().Format(time.RFC3339), "took", time.Since(start).Round(time.Millisecond))
	return p, nil
}
