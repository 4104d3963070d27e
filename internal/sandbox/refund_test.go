package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
)

// sink records the events the sandbox sends, and fails while fail is set.
type sink struct {
	mu   sync.Mutex
	evs  []payment.Event
	fail error
}

func (s *sink) send(_ context.Context, ev payment.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.evs = append(s.evs, ev)
	return nil
}

// take returns the events received since the last take, as "type id status".
func (s *sink) take() []payment.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.evs
	s.evs = nil
	return out
}

// types returns the types of evs.
func types(evs []payment.Event) string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return strings.Join(out, ",")
}

// refunding is a sandbox that sends its events to a sink, with a script as
// its hook, and a succeeded charge of 2500 on token.
func refunding(t *testing.T, token string) (*fixture, *sink, *script, payment.Charge) {
	t.Helper()
	s, h := &sink{}, &script{}
	f := setup(t, sandbox.Config{Events: s.send, Hook: h})
	card := f.card("cus_1", token)
	c := f.charge(request("cus_1", card.ID, "topup-tu_1"))
	if c.Status != payment.Succeeded {
		t.Fatalf("charge = %+v, want succeeded", c)
	}
	h.calls = nil
	return f, s, h, c
}

func refundOf(c payment.Charge, refundID string, amount int64) payment.RefundRequest {
	return payment.RefundRequest{
		RefundID: refundID, IdempotencyKey: "refund-" + refundID, ChargeID: c.ID, TopUpID: c.TopUpID,
		Amount: amount, Currency: "USD", Reason: "requested_by_customer",
	}
}

// TestRefundSucceeds: a refund succeeds at once, is sent as refund.created,
// is found by Topup's refund id and is in the refund log; the same key
// gives the same refund and sends the same event again.
func TestRefundSucceeds(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_visa")
	ctx := t.Context()
	r, err := f.p.Refund(ctx, refundOf(c, "rf_1", 1000))
	if err != nil {
		t.Fatal(err)
	}
	want := payment.Refund{ID: r.ID, RefundID: "rf_1", ChargeID: c.ID, TopUpID: c.TopUpID, Amount: 1000, Currency: "usd",
		Status: payment.RefundSucceeded, Created: epoch}
	if !strings.HasPrefix(r.ID, "re_") || r != want {
		t.Fatalf("refund = %+v, want %+v", r, want)
	}
	evs := s.take()
	if types(evs) != "refund.created" || evs[0].ID != "evt_"+r.ID+"_created" || *evs[0].Refund != want {
		t.Fatalf("events = %+v, want one refund.created of %+v", evs, want)
	}
	again, err := f.p.Refund(ctx, refundOf(c, "rf_1", 1000))
	if err != nil || again != r {
		t.Fatalf("replayed key = %+v, %v; want %+v", again, err, r)
	}
	if re := s.take(); len(re) != 1 || re[0].ID != evs[0].ID {
		t.Fatalf("replay sent %+v, want the same event again", re)
	}
	found, ok, err := f.p.FindRefund(ctx, c.ID, "rf_1")
	if err != nil || !ok || found != r {
		t.Fatalf("FindRefund = %+v, %v, %v; want %+v", found, ok, err, r)
	}
	if _, ok, err := f.p.FindRefund(ctx, c.ID, "rf_other"); ok || err != nil {
		t.Fatalf("FindRefund of another refund id = %v, %v; want none", ok, err)
	}
	if _, _, err := f.p.FindRefund(ctx, "pi_unknown", "rf_1"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("FindRefund of an unknown charge = %v, want ErrNotFound", err)
	}
	log, more, err := f.p.Refunds(ctx, 10, "")
	if err != nil || more || len(log) != 1 || log[0].Payment() != r || log[0].IdempotencyKey != "refund-rf_1" || log[0].Reason != "requested_by_customer" {
		t.Fatalf("refund log = %+v, %v, %v", log, more, err)
	}
}

// TestRefundRefusals: what Stripe answers 400 to refunds nothing and is a
// plain error, never an unknown outcome worth retrying.
func TestRefundRefusals(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_visa")
	ctx := t.Context()
	for _, amount := range []int64{1000, 1500} {
		if _, err := f.p.Refund(ctx, refundOf(c, fmt.Sprint("rf_", amount), amount)); err != nil {
			t.Fatalf("refund %d: %v", amount, err)
		}
	}
	declined := f.charge(request("cus_1", f.card("cus_1", "pm_card_chargeDeclined").ID, "topup-tu_2"))
	other := refundOf(c, "rf_eur", 1)
	other.Currency = "EUR"
	reused := refundOf(c, "rf_1000", 999)
	tests := []struct {
		name string
		req  payment.RefundRequest
		is   error
	}{
		{"more than is left", refundOf(c, "rf_more", 1), sandbox.ErrNotRefundable},
		{"a declined charge", refundOf(declined, "rf_d", 100), sandbox.ErrNotRefundable},
		{"another currency", other, sandbox.ErrNotRefundable},
		{"a key reused with another amount", reused, sandbox.ErrKeyReused},
		{"an unknown charge", refundOf(payment.Charge{ID: "pi_unknown"}, "rf_u", 100), payment.ErrNotFound},
		{"no key", payment.RefundRequest{ChargeID: c.ID, Amount: 1, Currency: "usd"}, nil},
		{"no amount", refundOf(c, "rf_0", 0), nil},
	}
	for _, tt := range tests {
		_, err := f.p.Refund(ctx, tt.req)
		if err == nil || errors.Is(err, payment.ErrUnknownOutcome) || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: err = %v, want a plain error wrapping %v", tt.name, err, tt.is)
		}
	}
	s.take()
	log, _, _ := f.p.Refunds(ctx, 10, "")
	if len(log) != 2 {
		t.Errorf("refund log holds %d refunds, want the 2 made", len(log))
	}
}

// TestRefundPendingThenSettled: the pendingRefund test card leaves a
// refund pending until SettleRefund, which sends refund.updated; a failed
// refund gives its amount back to what may be refunded.
func TestRefundPendingThenSettled(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_pendingRefund")
	ctx := t.Context()
	r, err := f.p.Refund(ctx, refundOf(c, "rf_1", 2500))
	if err != nil || r.Status != payment.RefundPending {
		t.Fatalf("refund = %+v, %v; want pending", r, err)
	}
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_2", 1)); !errors.Is(err, sandbox.ErrNotRefundable) {
		t.Fatalf("a refund beyond a pending one = %v, want ErrNotRefundable", err)
	}
	s.take()
	f.clock.Advance(time.Hour)
	failed, err := f.p.SettleRefund(ctx, r.ID, payment.RefundFailed, "insufficient_funds")
	if err != nil || failed.Status != payment.RefundFailed || failed.FailureReason != "insufficient_funds" {
		t.Fatalf("settle = %+v, %v; want failed insufficient_funds", failed, err)
	}
	evs := s.take()
	if types(evs) != "refund.updated,refund.failed" || *evs[1].Refund != failed || !evs[1].Created.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("events = %+v, want refund.updated and refund.failed of %+v", evs, failed)
	}
	if again, err := f.p.SettleRefund(ctx, r.ID, payment.RefundSucceeded, ""); err != nil || again != failed || len(s.take()) != 0 {
		t.Fatalf("settling a failed refund = %+v, %v; want it unchanged and nothing sent", again, err)
	}
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_3", 2500)); err != nil {
		t.Fatalf("refund after a failed one: %v; the failed amount is refundable again", err)
	}
	if _, err := f.p.SettleRefund(ctx, "re_unknown", payment.RefundSucceeded, ""); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("settle unknown = %v, want ErrNotFound", err)
	}
}

// TestRefundFailsAfterSucceeding: the refundFail test card, as Stripe's
// 4000000000005126: the answer says succeeded, then the refund fails at
// once (expired_or_canceled_card) and the events say so before Refund
// answers; a replay answers it as it now stands.
func TestRefundFailsAfterSucceeding(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_refundFail")
	ctx := t.Context()
	r, err := f.p.Refund(ctx, refundOf(c, "rf_1", 2500))
	if err != nil || r.Status != payment.RefundSucceeded {
		t.Fatalf("refund = %+v, %v; want succeeded", r, err)
	}
	evs := s.take()
	if types(evs) != "refund.created,refund.updated,refund.failed" || evs[0].Refund.Status != payment.RefundSucceeded ||
		evs[2].Refund.Status != payment.RefundFailed || evs[2].Refund.FailureReason != "expired_or_canceled_card" {
		t.Fatalf("events = %+v", evs)
	}
	if again, err := f.p.Refund(ctx, refundOf(c, "rf_1", 2500)); err != nil || again.Status != payment.RefundFailed {
		t.Fatalf("replay = %+v, %v; want the refund failed", again, err)
	}
	if found, ok, err := f.p.FindRefund(ctx, c.ID, "rf_1"); err != nil || !ok || found.Status != payment.RefundFailed {
		t.Fatalf("FindRefund = %+v, %v, %v; want failed", found, ok, err)
	}
}

// TestRefundFaults: a refund refused before it was made records nothing; a
// lost answer or a caller that stopped waiting leaves a refund the retry
// with the same key finds; a fault may make a refund fail.
func TestRefundFaults(t *testing.T) {
	t.Parallel()
	f, s, h, c := refunding(t, "pm_card_visa")
	ctx := t.Context()
	h.faults = []sandbox.Fault{
		{Refuse: fmt.Errorf("%w: 503", payment.ErrUnknownOutcome)},
		{Lose: true},
		{Delay: time.Minute},
		{}, {}, // the retries
		{RefundStatus: payment.RefundFailed},
		{Refuse: errors.New("400")},
	}
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_1", 500)); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("refused: %v", err)
	}
	if log, _, _ := f.p.Refunds(ctx, 10, ""); len(log) != 0 || len(s.take()) != 0 {
		t.Fatalf("a refused refund left %+v", log)
	}
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_1", 500)); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("lost answer: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := f.p.Refund(short, refundOf(c, "rf_2", 500)); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("caller gave up: %v", err)
	}
	for _, id := range []string{"rf_1", "rf_2"} {
		if r, err := f.p.Refund(ctx, refundOf(c, id, 500)); err != nil || r.Status != payment.RefundSucceeded {
			t.Fatalf("retry of %s = %+v, %v; want the refund made", id, r, err)
		}
	}
	s.take()
	r, err := f.p.Refund(ctx, refundOf(c, "rf_3", 500))
	if err != nil || r.Status != payment.RefundPending {
		t.Fatalf("refund a fault fails = %+v, %v; want pending", r, err)
	}
	if evs := s.take(); types(evs) != "refund.created,refund.updated,refund.failed" || evs[2].Refund.FailureReason != "declined" {
		t.Fatalf("events = %+v", evs)
	}
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_4", 500)); err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("refused outright: %v, want a plain error", err)
	}
	log, _, _ := f.p.Refunds(ctx, 10, "")
	if len(log) != 3 {
		t.Fatalf("refund log = %+v, want rf_1, rf_2, rf_3", log)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, call := range h.calls {
		if call.Op != sandbox.OpRefund || call.ID != c.ID || call.Refund.ChargeID != c.ID {
			t.Errorf("hook asked %+v, want refunds of %s", call, c.ID)
		}
	}
	if len(h.calls) != 7 || !h.calls[3].Replay || h.calls[1].Replay {
		t.Errorf("calls = %+v; want 7, the retry of rf_1 flagged as a replay, its first try not", h.calls)
	}
}

// TestRefundEventsUndelivered: when the events cannot be delivered the
// refund exists but the caller is told the outcome is unknown; the retry
// with the same key delivers them.
func TestRefundEventsUndelivered(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_visa")
	ctx := t.Context()
	s.fail = errors.New("database is locked")
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_1", 500)); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("undelivered: %v, want ErrUnknownOutcome", err)
	}
	s.fail = nil
	r, err := f.p.Refund(ctx, refundOf(c, "rf_1", 500))
	if err != nil {
		t.Fatal(err)
	}
	if evs := s.take(); types(evs) != "refund.created" || evs[0].Refund.ID != r.ID {
		t.Fatalf("events = %+v, want refund.created of %s", evs, r.ID)
	}
}

// TestRefundRace: refunds racing on one charge never take more than it.
func TestRefundRace(t *testing.T) {
	t.Parallel()
	f, _, _, c := refunding(t, "pm_card_visa")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = f.p.Refund(t.Context(), refundOf(c, fmt.Sprint("rf_", i), 1000))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, sandbox.ErrNotRefundable):
			t.Errorf("racing refund: %v", err)
		}
	}
	if ok != 2 {
		t.Errorf("%d refunds of 1000 on a charge of 2500 succeeded, want 2", ok)
	}
}
