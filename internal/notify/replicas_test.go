package notify_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/topup/topuptest"
)

// stuckReceiver is a webhook endpoint whose first request hangs until its
// sender gives up (the sender's replica dies); later ones answer 200.
type stuckReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	hits    int
	posting chan struct{} // closed when the first request arrives
	acked   chan time.Time
}

func newStuckReceiver(t *testing.T) *stuckReceiver {
	r := &stuckReceiver{posting: make(chan struct{}), acked: make(chan time.Time, 16)}
	gone := make(chan struct{})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Read to the end: only then does the server notice a sender that
		// hangs up (req.Context ends).
		io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.hits++
		first := r.hits == 1
		r.mu.Unlock()
		if first {
			close(r.posting)
			select {
			case <-req.Context().Done():
			case <-gone:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
		r.acked <- time.Now()
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(gone) }) // first: the server's Close waits for its handlers
	return r
}

func (r *stuckReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

// TestDeadReplicaDeliveryResumed: two replicas on one PostgreSQL, a
// one-second lease. While the first replica's webhook POST hangs, its
// claim is renewed and the other replica sends nothing; once the first
// replica dies (its context ends, nothing released) the other sends the
// webhook within three leases, and records it delivered.
func TestDeadReplicaDeliveryResumed(t *testing.T) {
	t.Parallel()
	const lease = time.Second
	reps := topuptest.NewLiveReplicas(t, 2)
	a, b := reps[0], reps[1]
	recv := newStuckReceiver(t)
	acct := a.Account()
	if _, err := a.Store.CreateEndpoint(t.Context(), acct.ID, recv.srv.URL); err != nil {
		t.Fatal(err)
	}
	a.Credit(acct.ID, "30")
	if _, err := a.Store.SetLowBalanceAlerts(t.Context(), acct.ID, []money.Amount{topuptest.Amt("20")}); err != nil {
		t.Fatal(err)
	}
	a.Use(acct.ID, "15") // balance.low: one e-mail (only recorded) and one webhook

	newWorker := func(e *topuptest.Env) *notify.Worker {
		w, err := notify.New(e.Store.Outbox, notify.Config{AllowPrivate: true, Lease: lease, PollInterval: 20 * time.Millisecond,
			Clock: clock.System, Logger: topuptest.Logger(t, slog.LevelInfo)})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	alive, kill := context.WithCancel(context.Background())
	defer kill()
	passDone := make(chan struct{})
	go func() {
		defer close(passDone)
		if _, err := newWorker(a).RunOnce(alive); err != nil {
			t.Logf("the dead replica's pass: %v", err)
		}
	}()
	select {
	case <-recv.posting:
	case <-time.After(10 * time.Second):
		t.Fatal("the first replica never posted the webhook")
	}
	survivor := newWorker(b)
	survivor.Start()
	defer survivor.Stop()

	time.Sleep(3 * lease)
	if n := recv.count(); n != 1 {
		t.Fatalf("%d requests while the first replica's POST hung, want 1: its claim was not kept", n)
	}
	kill()
	killed := time.Now()
	select {
	case at := <-recv.acked:
		resumed := at.Sub(killed)
		t.Logf("a dead replica's webhook was sent again %s after its death (lease %s)", resumed.Round(time.Millisecond), lease)
		if resumed > 3*lease {
			t.Errorf("sent again %s after the death, want within 3 leases (%s)", resumed, 3*lease)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook was not sent again within 10s of the first replica's death")
	}
	<-passDone
	// Recorded delivered: nobody sends it again.
	time.Sleep(2 * lease)
	if n := recv.count(); n != 2 {
		t.Errorf("%d requests in all, want 2 (the dead replica's and the survivor's)", n)
	}
}
