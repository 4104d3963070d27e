package retention

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
)

// TestNewRefusesShortRetention: a retention under a day would let a
// client's next-day retry of a usage call debit twice; it is refused.
func TestNewRefusesShortRetention(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{-time.Hour, time.Second, MinRetention - time.Nanosecond} {
		if _, err := New(nil, Config{Retention: d}); err == nil || !strings.Contains(err.Error(), "24h") {
			t.Errorf("retention %s: %v, want refused", d, err)
		}
	}
	for _, d := range []time.Duration{0, MinRetention, DefaultRetention} {
		if _, err := New(nil, Config{Retention: d}); err != nil {
			t.Errorf("retention %s: %v", d, err)
		}
	}
}

// chunks is a store holding left old usage keys, which it deletes limit
// at a time; with fail set every delete fails.
type chunks struct {
	left, calls int
	before      []time.Time
	fail        error
	lost        bool // the lease is taken by another replica after the first chunk
}

func (c *chunks) PruneUsageKeys(_ context.Context, before time.Time, limit int) (int, error) {
	c.calls++
	c.before = append(c.before, before)
	if c.fail != nil {
		return 0, c.fail
	}
	n := min(c.left, limit)
	c.left -= n
	return n, nil
}

func (c *chunks) TakeLease(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	return !(c.lost && c.calls > 0), nil
}

func (c *chunks) ReleaseLease(context.Context, string, string) error { return nil }

// TestPassDeletesInChunks: a pass cuts at now less the retention, deletes
// chunk after chunk until one comes back short, counts each, and stops
// when its lease is lost or the store fails.
func TestPassDeletesInChunks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	var counted int
	store := &chunks{left: 12}
	w, err := New(store, Config{Batch: 5, Clock: clock.NewManual(now), OnPrune: func(n int) { counted += n }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.RunOnce(t.Context())
	if err != nil || !p.Leased || p.Pruned != 12 || p.Chunks != 3 || counted != 12 || store.calls != 3 {
		t.Fatalf("pass %+v, %v (%d calls, %d counted); want 12 pruned in chunks of 5, 5, 2", p, err, store.calls, counted)
	}
	if want := now.Add(-30 * 24 * time.Hour); !store.before[0].Equal(want) || !p.Before.Equal(want) {
		t.Errorf("cut at %s, want 30 days before now, %s", store.before[0], want)
	}
	lost := &chunks{left: 12, lost: true}
	w, _ = New(lost, Config{Batch: 5, Clock: clock.NewManual(now)})
	if p, err := w.RunOnce(t.Context()); err != nil || p.Pruned != 5 || lost.calls != 1 {
		t.Errorf("a pass whose lease was lost after one chunk: %+v, %v, %d calls; want it to stop after 5", p, err, lost.calls)
	}
	boom := errors.New("disk full")
	w, _ = New(&chunks{left: 12, fail: boom}, Config{Batch: 5, Clock: clock.NewManual(now)})
	if _, err := w.RunOnce(t.Context()); !errors.Is(err, boom) {
		t.Errorf("a failing store: %v, want its error", err)
	}
}
