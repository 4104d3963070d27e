package refund_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
	"github.com/topup/topup/internal/workertest"
)

// TestMain makes the PostgreSQL database the tests share (a schema each).
func TestMain(m *testing.M) { os.Exit(topuptest.Main(m)) }

// refundFaults is the sandbox's fault hook for refunds: each Refund call
// takes the next scripted Fault, and the calls are counted.
type refundFaults struct {
	mu      sync.Mutex
	script  []sandbox.Fault
	refunds []sandbox.Call
	finds   int
	// hold, when set, makes the next Refund call wait for it to close,
	// after telling held: a provider call in flight.
	hold, held chan struct{}
}

func (f *refundFaults) Script(steps ...sandbox.Fault) {
	f.mu.Lock()
	f.script = append(f.script, steps...)
	f.mu.Unlock()
}

func (f *refundFaults) Fault(c sandbox.Call) sandbox.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch c.Op {
	case sandbox.OpRefund:
		if hold, held := f.hold, f.held; hold != nil {
			f.hold, f.held = nil, nil
			f.mu.Unlock()
			close(held)
			<-hold
			f.mu.Lock()
		}
		f.refunds = append(f.refunds, c)
		if len(f.script) > 0 {
			step := f.script[0]
			f.script = f.script[1:]
			return step
		}
	case sandbox.OpFindRefund:
		f.finds++
	}
	return sandbox.Fault{}
}

func (f *refundFaults) Changed(sandbox.Charge) {}

// calls returns the Refund calls (replays included) and the FindRefund
// calls so far.
func (f *refundFaults) calls() ([]sandbox.Call, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sandbox.Call(nil), f.refunds...), f.finds
}

// world is one test's store, sandbox (with refundFaults) and a succeeded
// top-up of 25.00 to refund.
type world struct {
	*topuptest.Env
	faults *refundFaults
	sb     *sandbox.Provider
	acct   ledger.Account
	topUp  topup.TopUp
	keys   int
}

func newWorld(t *testing.T, e *topuptest.Env) *world {
	t.Helper()
	w := &world{Env: e, faults: &refundFaults{}}
	w.sb = sandbox.New(e.Store.Sandbox, sandbox.Config{Clock: e.Clock, IDs: e.IDs, BaseURL: "http://127.0.0.1:8080", Hook: w.faults})
	w.acct = e.Account()
	e.Card(e.Sandbox, w.acct.ID, "pm_card_visa")
	m, _, err := e.Store.CreateManual(t.Context(), w.acct.ID, topuptest.Amt("25.00"), "", "buy", "hash", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := e.Engine(e.Sandbox).Attempt(t.Context(), m.ID); err != nil || s.TopUp.Status != topup.Succeeded {
		t.Fatalf("top-up: %+v %v", s.TopUp, err)
	}
	w.topUp = e.TopUp(m.ID)
	return w
}

// worker is a refund worker on the world's store and scripted sandbox.
func (w *world) worker(mods ...func(*refund.Config)) *refund.Worker {
	cfg := refund.Config{Clock: w.Clock, Logger: topuptest.Logger(w.T, slog.LevelInfo)}
	for _, m := range mods {
		m(&cfg)
	}
	rw := refund.NewWorker(w.Store.Refunds, w.sb, cfg)
	w.T.Cleanup(rw.Stop)
	return rw
}

// req is a refund request of amount ("" for the whole top-up) under a
// fresh key.
func (w *world) req(amount string) refund.Request {
	w.keys++
	r := refund.Request{AccountID: w.acct.ID, TopUpID: w.topUp.ID, IdempotencyKey: fmt.Sprintf("refund-key-%d", w.keys)}
	if amount != "" {
		r.Amount, r.Explicit = topuptest.Amt(amount), true
	}
	return r
}

// sameKey checks that every Refund call carried refund id's key, and
// returns how many calls there were and how many the sandbox answered
// from the key.
func (w *world) sameKey(id string) (calls, replays int) {
	w.T.Helper()
	all, _ := w.faults.calls()
	for _, c := range all {
		if c.Refund.IdempotencyKey != "refund-"+id {
			w.T.Errorf("a call with key %q", c.Refund.IdempotencyKey)
		}
		if c.Replay {
			replays++
		}
	}
	return len(all), replays
}

func (w *world) runOnce(rw *refund.Worker) int {
	w.T.Helper()
	n, err := rw.RunOnce(w.T.Context())
	if err != nil {
		w.T.Fatalf("run once: %v", err)
	}
	return n
}

func (w *world) refunds() []refund.Refund {
	w.T.Helper()
	rs, err := w.Store.ListRefunds(w.T.Context(), w.acct.ID, w.topUp.ID)
	if err != nil {
		w.T.Fatal(err)
	}
	return rs
}

func (w *world) sandboxRefunds() []sandbox.Refund {
	w.T.Helper()
	rs, _, err := w.sb.Refunds(w.T.Context(), 100, "")
	if err != nil {
		w.T.Fatal(err)
	}
	return rs
}

// settled checks the end of every story: the sandbox's refund log equals
// the ledger's refunds (each succeeded provider refund is one succeeded
// refund of the same amount, found by its provider id, and the other way
// round), each succeeded refund has its entry exactly once, the balance
// is the top-up less what was refunded, and verify is clean.
func (w *world) settled(wantRefunded string) {
	w.T.Helper()
	succeeded := w.logEqualsLedger()
	w.entriesOnce(succeeded, wantRefunded)
	w.Verify()
}

// logEqualsLedger checks that each succeeded refund of the sandbox's log
// is one succeeded refund of the ledger, of the same amount, and that
// there are as many of each; it returns how many.
func (w *world) logEqualsLedger() int {
	w.T.Helper()
	ledgerByProvider := map[string]refund.Refund{}
	var succeeded int
	for _, r := range w.refunds() {
		if r.Status == refund.Succeeded {
			succeeded++
			ledgerByProvider[r.ProviderID] = r
		}
	}
	var made int
	for _, s := range w.sandboxRefunds() {
		if s.Status != payment.RefundSucceeded {
			continue
		}
		made++
		r, ok := ledgerByProvider[s.ID]
		want, err := money.FromMinor(s.Amount, w.acct.Currency)
		if !ok || err != nil || r.Amount != want || r.ID != s.RefundID {
			w.T.Errorf("sandbox refund %+v: the ledger has %+v (%v)", s, r, err)
		}
	}
	if made != succeeded {
		w.T.Errorf("the sandbox made %d refunds, the ledger has %d succeeded", made, succeeded)
	}
	return succeeded
}

// entriesOnce checks that the succeeded refunds have one refund entry
// each, taking wantRefunded in all from the balance and the top-up.
func (w *world) entriesOnce(succeeded int, wantRefunded string) {
	w.T.Helper()
	var entries int
	var taken money.Amount
	all, err := w.Store.EntriesAfter(w.T.Context(), w.acct.ID, 0)
	if err != nil {
		w.T.Fatal(err)
	}
	for _, e := range all {
		if e.Kind == ledger.KindRefund {
			entries++
			taken -= e.Amount
		}
	}
	if entries != succeeded || taken != topuptest.Amt(wantRefunded) {
		w.T.Errorf("%d refund entries taking %v; want %d taking %s", entries, taken, succeeded, wantRefunded)
	}
	if got, want := w.Balance(w.acct.ID), topuptest.Amt("25.00")-topuptest.Amt(wantRefunded); got != want {
		w.T.Errorf("balance %v, want %v", got, want)
	}
	if tu := w.TopUp(w.topUp.ID); tu.AmountRefunded != topuptest.Amt(wantRefunded) {
		w.T.Errorf("amount_refunded %v, want %s", tu.AmountRefunded, wantRefunded)
	}
}

// TestRefundCrashBeforeCalling: a process stored the refund and died
// before it called the provider (kill -9 between storing and calling).
// No worker takes it while the dead process's lease runs; then one of two
// replicas claims it, refunds it once, and the other finds nothing.
func TestRefundCrashBeforeCalling(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		w := newWorld(t, e)
		req := w.req("")
		req.Lease = 2 * time.Minute
		r, _, err := w.Store.CreateRefund(t.Context(), req) // and then the process died
		if err != nil {
			t.Fatal(err)
		}
		a, b := w.worker(), w.worker()
		if n := w.runOnce(a); n != 0 {
			t.Fatalf("a worker took a refund whose lease still runs: %d", n)
		}
		e.Clock.Advance(2*time.Minute + time.Second)
		if n := w.runOnce(a) + w.runOnce(b); n != 1 {
			t.Fatalf("two replicas attempted %d refunds, want 1", n)
		}
		if got := w.refunds(); len(got) != 1 || got[0].ID != r.ID || got[0].Status != refund.Succeeded || got[0].ProviderID == "" {
			t.Fatalf("refunds %+v", got)
		}
		if calls, _ := w.faults.calls(); len(calls) != 1 || calls[0].Refund.IdempotencyKey != "refund-"+r.ID ||
			calls[0].Refund.Amount != 2500 || calls[0].Refund.ChargeID != w.topUp.ChargeID || calls[0].Refund.RefundID != r.ID {
			t.Fatalf("refund calls %+v", calls)
		}
		e.Clock.Advance(time.Hour)
		if n := w.runOnce(a); n != 0 {
			t.Fatalf("a succeeded refund was attempted again: %d", n)
		}
		w.settled("25.00")
	})
}

// renewals is a refund.Store that tells each claim renewal.
type renewals struct {
	refund.Store
	until chan time.Time
}

func (r renewals) RenewRefund(ctx context.Context, id string, until time.Time) error {
	err := r.Store.RenewRefund(ctx, id, until)
	if err == nil {
		select {
		case r.until <- until:
		default:
		}
	}
	return err
}

// TestRefundClaimRenewed: a provider call slower than the lease keeps its
// claim, renewed while it runs, so that another replica's worker does not
// take the refund up meanwhile; the refund is made once.
func TestRefundClaimRenewed(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		w := newWorld(t, e)
		req := w.req("")
		req.Lease = time.Second
		r, _, err := w.Store.CreateRefund(t.Context(), req) // and then the process died
		if err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(2 * time.Second)
		const lease = 300 * time.Millisecond
		spy := renewals{Store: w.Store.Refunds, until: make(chan time.Time, 64)}
		a := refund.NewWorker(spy, w.sb, refund.Config{Clock: w.Clock, Lease: lease, Logger: topuptest.Logger(t, slog.LevelInfo)})
		b := w.worker(func(c *refund.Config) { c.Lease = lease })
		hold, held := make(chan struct{}), make(chan struct{})
		w.faults.mu.Lock()
		w.faults.hold, w.faults.held = hold, held
		w.faults.mu.Unlock()
		attempted := make(chan int, 1)
		go func() {
			n, _ := a.RunOnce(context.Background())
			attempted <- n
		}()
		<-held // a's provider call is in flight
		// Far past a's claim: only a renewal made after this keeps it.
		e.Clock.Advance(10 * lease)
		now := e.Clock.Now()
		deadline := time.After(10 * time.Second)
		for renewed := false; !renewed; {
			select {
			case until := <-spy.until:
				renewed = until.After(now)
			case <-deadline:
				close(hold)
				t.Fatal("the claim was not renewed while the provider call ran")
			}
		}
		if n := w.runOnce(b); n != 0 {
			t.Errorf("another worker took up a refund whose provider call was running: %d", n)
		}
		close(hold)
		if n := <-attempted; n != 1 {
			t.Fatalf("a attempted %d refunds, want 1", n)
		}
		if got := w.refunds(); len(got) != 1 || got[0].ID != r.ID || got[0].Status != refund.Succeeded {
			t.Fatalf("refunds %+v", got)
		}
		if calls, _ := w.sameKey(r.ID); calls != 1 {
			t.Fatalf("%d Refund calls, want 1", calls)
		}
		w.settled("25.00")
	})
}

// TestRefundLostAnswers: the provider refunds but the answer is lost, or
// arrives after the caller gave up, or the request never arrived (a 503):
// each is retried with the same key after a back-off, and the money moves
// once.
func TestRefundLostAnswers(t *testing.T) {
	t.Parallel()
	unavailable := sandbox.Fault{Refuse: fmt.Errorf("%w: 503 Service Unavailable", payment.ErrUnknownOutcome)}
	for _, tc := range []struct {
		name    string
		faults  []sandbox.Fault
		replays int // how many later calls the sandbox answered from the key
	}{
		{"answer lost", []sandbox.Fault{{Lose: true}}, 1},
		{"answer too late", []sandbox.Fault{{Delay: 5 * time.Second}}, 1},
		{"503 twice, then through", []sandbox.Fault{unavailable, unavailable}, 0},
		{"lost, then the retry's answer lost too", []sandbox.Fault{{Lose: true}, {Lose: true}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
				w := newWorld(t, e)
				w.faults.Script(tc.faults...)
				rw := w.worker(func(c *refund.Config) { c.CallTimeout = 200 * time.Millisecond })
				first, replayed, err := rw.Request(t.Context(), w.req("10.00"))
				if err != nil || replayed || first.Status != refund.Pending {
					t.Fatalf("request: %+v %v %v", first, replayed, err)
				}
				for range len(tc.faults) {
					if n := w.runOnce(rw); n != 0 {
						t.Fatal("retried before the back-off ended")
					}
					e.Clock.Advance(10 * time.Minute)
					if n := w.runOnce(rw); n != 1 {
						t.Fatalf("retry attempted %d", n)
					}
				}
				calls, replays := w.sameKey(first.ID)
				if calls != len(tc.faults)+1 || replays != tc.replays {
					t.Errorf("%d refund calls, %d replayed; want %d, %d", calls, replays, len(tc.faults)+1, tc.replays)
				}
				if got := w.refunds(); len(got) != 1 || got[0].Status != refund.Succeeded {
					t.Fatalf("refunds %+v", got)
				}
				w.settled("10.00")
			})
		})
	}
}

// TestRefundKeyForgotten: a refund whose answer was lost is retried only
// after the provider forgot its key (24 hours): the worker looks it up
// first and applies what it finds, instead of sending it again (which
// would refund a second time).
func TestRefundKeyForgotten(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		w := newWorld(t, e)
		w.faults.Script(sandbox.Fault{Lose: true})
		rw := w.worker()
		if _, _, err := rw.Request(t.Context(), w.req("10.00")); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(refund.KeyTTL + time.Hour)
		if n := w.runOnce(rw); n != 1 {
			t.Fatalf("attempted %d", n)
		}
		calls, finds := w.faults.calls()
		if len(calls) != 1 || finds == 0 {
			t.Fatalf("after the key's 24 hours: %d refund calls, %d lookups; want 1 (the first) and a lookup", len(calls), finds)
		}
		w.settled("10.00")

		// A refund whose first call never reached the provider is sent
		// after the lookup finds nothing: once.
		w.faults.Script(sandbox.Fault{Refuse: fmt.Errorf("%w: timeout", payment.ErrUnknownOutcome)})
		if _, _, err := rw.Request(t.Context(), w.req("5.00")); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(refund.KeyTTL + time.Hour)
		if n := w.runOnce(rw); n != 1 {
			t.Fatalf("attempted %d", n)
		}
		if calls, _ := w.faults.calls(); len(calls) != 3 {
			t.Fatalf("%d refund calls, want 3", len(calls))
		}
		w.settled("15.00")
	})
}

// TestRefundReplayedKey: the API's idempotency key replays the refund (no
// second provider call); another request under it is a conflict; more
// than what is left is refused before the provider is asked.
func TestRefundReplayedKey(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		w := newWorld(t, e)
		rw := w.worker()
		req := w.req("20.00")
		first, _, err := rw.Request(t.Context(), req)
		if err != nil || first.Status != refund.Succeeded {
			t.Fatalf("refund: %+v %v", first, err)
		}
		again, replayed, err := rw.Request(t.Context(), req)
		if err != nil || !replayed || again.ID != first.ID || again.Status != refund.Succeeded {
			t.Fatalf("replay: %+v %v %v", again, replayed, err)
		}
		other := req
		other.Amount = topuptest.Amt("1.00")
		if _, _, err := rw.Request(t.Context(), other); !isCode(err, apperr.IdempotencyConflict) {
			t.Fatalf("another request under the key: %v", err)
		}
		if _, _, err := rw.Request(t.Context(), w.req("5.01")); !isCode(err, apperr.Invalid) {
			t.Fatalf("more than is left: %v", err)
		}
		if calls, _ := w.faults.calls(); len(calls) != 1 {
			t.Fatalf("%d provider calls, want 1", len(calls))
		}
		w.settled("20.00")
	})
}

// TestRefundInProgress: a replay while the first request still waits for
// the provider answers request_in_progress.
func TestRefundInProgress(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		w := newWorld(t, e)
		w.faults.Script(sandbox.Fault{Lose: true})
		rw := w.worker()
		req := w.req("")
		if _, _, err := rw.Request(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		if _, replayed, err := rw.Request(t.Context(), req); !replayed || !isCode(err, apperr.RequestInProgress) {
			t.Fatalf("replay while unknown: %v %v", replayed, err)
		}
		e.Clock.Advance(time.Minute)
		w.runOnce(rw)
		if r, replayed, err := rw.Request(t.Context(), req); err != nil || !replayed || r.Status != refund.Succeeded {
			t.Fatalf("replay once known: %+v %v %v", r, replayed, err)
		}
		w.settled("25.00")
	})
}

// TestRefundProviderOutcomes: a refusal fails the refund and moves
// nothing; a refund the provider leaves pending is asked about again until
// it settles; one that fails at the provider moves nothing.
func TestRefundProviderOutcomes(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		w := newWorld(t, e)
		rw := w.worker()

		w.faults.Script(sandbox.Fault{Refuse: errors.New("400 invalid_request_error: charge_disputed")})
		r, _, err := rw.Request(t.Context(), w.req("5.00"))
		if err != nil || r.Status != refund.Failed {
			t.Fatalf("refused: %+v %v", r, err)
		}

		r = w.pendingThenSucceeded(rw, "5.00")

		w.faults.Script(sandbox.Fault{RefundStatus: payment.RefundFailed, FailureReason: "lost_or_stolen_card"})
		f, _, err := rw.Request(t.Context(), w.req("5.00"))
		if err != nil || f.Status != refund.Pending {
			t.Fatalf("failing: %+v %v", f, err)
		}
		e.Clock.Advance(2 * time.Minute)
		w.runOnce(rw)

		byID := map[string]refund.Status{}
		for _, x := range w.refunds() {
			byID[x.ID] = x.Status
		}
		if byID[r.ID] != refund.Succeeded || byID[f.ID] != refund.Failed || len(byID) != 3 {
			t.Fatalf("refunds %v", byID)
		}
		if calls, _ := w.faults.calls(); len(calls) != 3 {
			t.Fatalf("%d refund calls; the pending one was sent again instead of looked up", len(calls))
		}
		w.settled("5.00")
	})
}

// pendingThenSucceeded makes a refund the provider leaves pending, lets
// the worker ask about it, settles it at the provider, and lets the worker
// learn that; it returns the refund as first answered.
func (w *world) pendingThenSucceeded(rw *refund.Worker, amount string) refund.Refund {
	w.T.Helper()
	w.faults.Script(sandbox.Fault{RefundStatus: payment.RefundPending})
	r, _, err := rw.Request(w.T.Context(), w.req(amount))
	if err != nil || r.Status != refund.Pending || r.ProviderID == "" {
		w.T.Fatalf("pending: %+v %v", r, err)
	}
	w.Clock.Advance(2 * time.Minute)
	if n := w.runOnce(rw); n != 1 {
		w.T.Fatalf("the pending refund was not asked about: %d", n)
	}
	if _, err := w.sb.SettleRefund(w.T.Context(), r.ProviderID, payment.RefundSucceeded, ""); err != nil {
		w.T.Fatal(err)
	}
	w.Clock.Advance(5 * time.Minute)
	if n := w.runOnce(rw); n != 1 {
		w.T.Fatalf("the pending refund was not asked about again: %d", n)
	}
	return r
}

// TestWorkerStartStop: the running worker takes up a refund a dead
// process left, at its first pass after the lease; Stop returns (twice,
// and without Start).
func TestWorkerStartStop(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		w := newWorld(t, e)
		never := w.worker()
		workertest.StopReturns(t, "Stop without Start", never.Stop)
		workertest.StopReturns(t, "a second Stop without Start", never.Stop)

		req := w.req("")
		req.Lease = time.Minute
		if _, _, err := w.Store.CreateRefund(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(2 * time.Minute)
		passes := make(chan int, 100)
		rw := w.worker(func(c *refund.Config) {
			c.Interval = time.Hour
			c.OnPass = func(n int, err error) {
				if err != nil {
					t.Errorf("pass: %v", err)
				}
				passes <- n
			}
		})
		rw.Start()
		select {
		case n := <-passes:
			if n != 1 {
				t.Errorf("first pass attempted %d, want 1", n)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no pass within 10s")
		}
		workertest.StopReturns(t, "Stop", rw.Stop)
		workertest.StopReturns(t, "a second Stop", rw.Stop)
		w.settled("25.00")
	})
}

func isCode(err error, c apperr.Code) bool {
	var e *apperr.Error
	return errors.As(err, &e) && e.Code == c
}
