// Package clock passes time in, so that tests and the simulator can move it
// instead of sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time. Real code gets System; tests get a *Manual.
type Clock interface {
	Now() time.Time
}

// System is the wall clock, in UTC.
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now().UTC() }

// Manual is a clock that only moves when told to.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a clock standing at t.
func NewManual(t time.Time) *Manual { return &Manual{now: t.UTC()} }

// Now returns the clock's current time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.mu.Unlock()
}

// Set moves the clock to t.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	m.now = t.UTC()
	m.mu.Unlock()
}
