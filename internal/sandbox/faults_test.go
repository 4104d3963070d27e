package sandbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
)

// script is a Hook that answers each call with the next fault of its list
// and keeps what the sandbox told it.
type script struct {
	mu      sync.Mutex
	faults  []sandbox.Fault
	calls   []sandbox.Call
	changed []sandbox.Charge
}

func (s *script) Fault(c sandbox.Call) sandbox.Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	if len(s.faults) == 0 {
		return sandbox.Fault{}
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f
}

func (s *script) Changed(c sandbox.Charge) {
	s.mu.Lock()
	s.changed = append(s.changed, c)
	s.mu.Unlock()
}

// hooked is a sandbox with a script as its hook and a card that succeeds.
func hooked(t *testing.T) (*fixture, *script, payment.Card) {
	t.Helper()
	h := &script{}
	f := setup(t, sandbox.Config{Hook: h})
	return f, h, f.card("cus_1", "pm_card_visa")
}

// TestHookLostAnswer: an answer lost after the charge was made; the retry
// replays the first charge whatever the hook says of its outcome, a key
// reused with other parameters is refused, and keys are still forgotten
// after Stripe's 24 hours.
func TestHookLostAnswer(t *testing.T) {
	t.Parallel()
	f, h, card := hooked(t)
	req := request("cus_1", card.ID, "topup-tu_1")
	h.faults = []sandbox.Fault{{Lose: true}, {Status: payment.Declined, DeclineCode: "card_declined"}}
	if _, err := f.p.Charge(t.Context(), req); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("lost answer: err %v, want ErrUnknownOutcome", err)
	}
	got := f.charge(req)
	if got.Status != payment.Succeeded || len(f.logged()) != 1 {
		t.Fatalf("replay = %+v with %d charges; want the first charge, succeeded, whatever the hook says next", got, len(f.logged()))
	}
	if !h.calls[1].Replay || h.calls[0].Replay {
		t.Errorf("calls %+v: only the second is a replay", h.calls)
	}
	other := req
	other.Amount++
	if _, err := f.p.Charge(t.Context(), other); !errors.Is(err, sandbox.ErrKeyReused) {
		t.Fatalf("a key reused with another amount: err %v, want ErrKeyReused", err)
	}
	f.clock.Advance(sandbox.DefaultKeyTTL - time.Second)
	f.charge(req)
	if n := len(f.logged()); n != 1 {
		t.Fatalf("a key within its 24 hours made a new charge (%d)", n)
	}
	f.clock.Advance(2 * time.Second)
	f.charge(req)
	if n := len(f.logged()); n != 2 {
		t.Fatalf("a key past its 24 hours: %d charges, want a second one", n)
	}
}

// TestHookRefusals: a 503 before anything, a request refused outright and
// one that lands only after the caller gave up charge nothing; the caller
// can tell only the refusal from a lost answer.
func TestHookRefusals(t *testing.T) {
	t.Parallel()
	f, h, card := hooked(t)
	req := request("cus_1", card.ID, "topup-tu_2")
	ran := 0
	h.faults = []sandbox.Fault{
		{Refuse: payment.ErrUnknownOutcome, During: func() { ran++ }},
		{Refuse: errors.New("400 invalid_request_error")},
		{Late: true},
		{Refuse: payment.ErrUnknownOutcome},
		{Lose: true},
	}
	if _, err := f.p.Charge(t.Context(), req); !errors.Is(err, payment.ErrUnknownOutcome) || ran != 1 {
		t.Errorf("fail before charge: %v (During ran %d times), want ErrUnknownOutcome", err, ran)
	}
	if _, err := f.p.Charge(t.Context(), req); err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
		t.Errorf("refused: %v, want a plain error", err)
	}
	if _, err := f.p.Charge(t.Context(), req); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Errorf("late: %v, want ErrUnknownOutcome", err)
	}
	if _, err := f.p.GetCharge(t.Context(), "pi_unknown"); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Errorf("get with a 503: %v", err)
	}
	if _, _, err := f.p.FindCharge(t.Context(), "", "tu_topup-tu_2"); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Errorf("find with its answer lost: %v", err)
	}
	if n := len(f.logged()); n != 0 {
		t.Errorf("%d charges for requests refused or not yet landed", n)
	}
}

// TestHookProcessing: a charge left processing by the hook is decided
// later, once, and the hook hears of each change, as Stripe's webhooks
// tell.
func TestHookProcessing(t *testing.T) {
	t.Parallel()
	f, h, card := hooked(t)
	h.faults = []sandbox.Fault{{Status: payment.Processing}}
	pending := f.charge(request("cus_1", card.ID, "topup-tu_3"))
	if pending.Status != payment.Processing {
		t.Fatalf("charge = %+v, want processing", pending)
	}
	decided, err := f.p.Decide(t.Context(), pending.ID, payment.Succeeded, "")
	if err != nil || decided.Status != payment.Succeeded {
		t.Fatalf("decide = %+v, %v", decided, err)
	}
	if again, _ := f.p.Decide(t.Context(), pending.ID, payment.Declined, "card_declined"); again.Status != payment.Succeeded {
		t.Errorf("a decided charge decided again: %+v", again)
	}
	if len(h.changed) != 2 || h.changed[0].Status != payment.Processing || h.changed[1].Status != payment.Succeeded {
		t.Errorf("the hook was told of %+v; want the charge and its decision", h.changed)
	}
}

// TestHookDelay: a fault's delay is waited like Latency, and a caller who
// stops waiting meanwhile gets an unknown outcome for a charge that was
// made.
func TestHookDelay(t *testing.T) {
	t.Parallel()
	f, h, card := hooked(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h.faults = []sandbox.Fault{{Delay: time.Minute, During: cancel}}
	if _, err := f.p.Charge(ctx, request("cus_1", card.ID, "k")); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("err %v, want ErrUnknownOutcome", err)
	}
	if n := len(f.logged()); n != 1 {
		t.Fatalf("%d charges, want the one made before the delay", n)
	}
}
