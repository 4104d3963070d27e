// Package workertest holds what the tests of Topup's background workers
// (the committer, the top-up engine, the notifier) share. It imports no
// database, so any package's tests may use it.
package workertest

import (
	"testing"
	"time"
)

// StopReturns calls stop and fails the test if it panics or has not
// returned within 10 seconds: a worker's Stop must be safe to call twice,
// and without Start.
func StopReturns(t testing.TB, what string, stop func()) {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		stop()
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Fatalf("%s panicked: %v", what, p)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10s", what)
	}
}
