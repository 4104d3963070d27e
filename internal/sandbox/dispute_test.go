package sandbox_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
)

// TestDisputeWon: a dispute withdraws its funds at once
// (charge.dispute.created, then funds_withdrawn), blocks refunds while
// open, and a won one reinstates them (funds_reinstated, closed); every
// step repeated returns the same dispute and sends the same events again.
func TestDisputeWon(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_visa")
	ctx := t.Context()
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_1", 500)); err != nil {
		t.Fatal(err)
	}
	s.take()
	d, err := f.p.Dispute(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	want := payment.Dispute{ID: d.ID, ChargeID: c.ID, TopUpID: c.TopUpID, Amount: 2000, Currency: "usd",
		Status: payment.DisputeNeedsResponse, Reason: "fraudulent", FundsWithdrawn: true, Created: epoch}
	if !strings.HasPrefix(d.ID, "dp_") || d != want {
		t.Fatalf("dispute = %+v, want %+v (the amount not refunded)", d, want)
	}
	evs := s.take()
	if types(evs) != "charge.dispute.created,charge.dispute.funds_withdrawn" ||
		evs[0].Dispute.FundsWithdrawn || !evs[1].Dispute.FundsWithdrawn || evs[1].ID != "evt_"+d.ID+"_funds_withdrawn" {
		t.Fatalf("events = %+v", evs)
	}
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_2", 100)); !errors.Is(err, sandbox.ErrNotRefundable) {
		t.Fatalf("refund while disputed = %v, want ErrNotRefundable", err)
	}
	if again, err := f.p.Dispute(ctx, c.ID, "duplicate"); err != nil || again != d {
		t.Fatalf("second dispute = %+v, %v; want the first", again, err)
	}
	if re := s.take(); len(re) != 2 || re[1].ID != evs[1].ID {
		t.Fatalf("second dispute sent %+v, want the same events again", re)
	}
	f.clock.Advance(24 * time.Hour)
	won, err := f.p.CloseDispute(ctx, d.ID, sandbox.OutcomeWon)
	if err != nil || won.Status != payment.DisputeWon || !won.FundsWithdrawn || !won.FundsReinstated {
		t.Fatalf("won = %+v, %v", won, err)
	}
	evs = s.take()
	if types(evs) != "charge.dispute.created,charge.dispute.funds_withdrawn,charge.dispute.funds_reinstated,charge.dispute.closed" ||
		*evs[3].Dispute != won || !evs[3].Created.Equal(epoch.Add(24*time.Hour)) {
		t.Fatalf("events = %+v", evs)
	}
	if again, err := f.p.CloseDispute(ctx, c.ID, sandbox.OutcomeWon); err != nil || again != won {
		t.Fatalf("closing again by charge = %+v, %v; want it unchanged", again, err)
	}
	if _, err := f.p.CloseDispute(ctx, d.ID, sandbox.OutcomeLost); !errors.Is(err, sandbox.ErrDisputeClosed) || apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("closing a won dispute as lost = %v, want ErrDisputeClosed, a conflict", err)
	}
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_3", 2000)); err != nil {
		t.Fatalf("refund after a won dispute: %v", err)
	}
}

// TestDisputeLost: a lost dispute keeps the funds withdrawn: what it took
// can no longer be refunded.
func TestDisputeLost(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_visa")
	ctx := t.Context()
	d, err := f.p.Dispute(ctx, c.ID, "product_not_received")
	if err != nil || d.Reason != "product_not_received" || d.Amount != 2500 {
		t.Fatalf("dispute = %+v, %v", d, err)
	}
	s.take()
	lost, err := f.p.CloseDispute(ctx, c.ID, sandbox.OutcomeLost)
	if err != nil || lost.Status != payment.DisputeLost || lost.FundsReinstated {
		t.Fatalf("lost = %+v, %v", lost, err)
	}
	if evs := s.take(); types(evs) != "charge.dispute.created,charge.dispute.funds_withdrawn,charge.dispute.closed" {
		t.Fatalf("events = %s", types(evs))
	}
	if _, err := f.p.Refund(ctx, refundOf(c, "rf_1", 1)); !errors.Is(err, sandbox.ErrNotRefundable) {
		t.Fatalf("refund after a lost dispute of the whole charge = %v, want ErrNotRefundable", err)
	}
}

// TestDisputeRefusals: unknown charges and disputes are ErrNotFound, a
// charge that did not succeed or was refunded in whole cannot be
// disputed, and reasons and outcomes are Stripe's.
func TestDisputeRefusals(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_visa")
	ctx := t.Context()
	declined := f.charge(request("cus_1", f.card("cus_1", "pm_card_chargeDeclined").ID, "topup-tu_2"))
	refunded := f.charge(request("cus_1", f.card("cus_1", "pm_card_visa").ID, "topup-tu_3"))
	if _, err := f.p.Refund(ctx, refundOf(refunded, "rf_all", 2500)); err != nil {
		t.Fatal(err)
	}
	s.take()
	// Each refusal wraps the sandbox's sentinel and carries the code the
	// API answers with.
	refusals := []struct {
		name  string
		err   func() error
		is    error
		code  apperr.Code
		field string
	}{
		{"dispute of an unknown charge", func() error { _, err := f.p.Dispute(ctx, "pi_unknown", ""); return err }, payment.ErrNotFound, apperr.NotFound, ""},
		{"dispute of a declined charge", func() error { _, err := f.p.Dispute(ctx, declined.ID, ""); return err }, sandbox.ErrNotDisputable, apperr.Conflict, ""},
		{"dispute of a refunded charge", func() error { _, err := f.p.Dispute(ctx, refunded.ID, ""); return err }, sandbox.ErrNotDisputable, apperr.Conflict, ""},
		{"a reason that is not Stripe's", func() error { _, err := f.p.Dispute(ctx, c.ID, "because"); return err }, nil, apperr.Invalid, "reason"},
		{"closing a charge without a dispute", func() error { _, err := f.p.CloseDispute(ctx, c.ID, sandbox.OutcomeWon); return err }, payment.ErrNotFound, apperr.NotFound, ""},
		{"closing an unknown dispute", func() error { _, err := f.p.CloseDispute(ctx, "dp_unknown", sandbox.OutcomeWon); return err }, payment.ErrNotFound, apperr.NotFound, ""},
		{"an outcome other than won or lost", func() error { _, err := f.p.CloseDispute(ctx, c.ID, "draw"); return err }, nil, apperr.Invalid, "outcome"},
	}
	for _, tt := range refusals {
		err := tt.err()
		e := apperr.As(err)
		if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || e == nil || e.Code != tt.code || e.Field != tt.field {
			t.Errorf("%s: %v (%+v), want %v with code %s on %q", tt.name, err, e, tt.is, tt.code, tt.field)
		}
	}
	if _, err := f.p.Dispute(ctx, c.ID, ""); err != nil {
		t.Fatal(err)
	}
	if evs := s.take(); types(evs) != "charge.dispute.created,charge.dispute.funds_withdrawn" {
		t.Errorf("events = %s, want only those of the one dispute opened", types(evs))
	}
}

// TestDisputeEventsUndelivered: when the events of a dispute cannot be
// delivered the dispute exists and the caller is told the outcome is
// unknown; disputing again delivers them, with the same ids.
func TestDisputeEventsUndelivered(t *testing.T) {
	t.Parallel()
	f, s, _, c := refunding(t, "pm_card_visa")
	ctx := t.Context()
	s.fail = errors.New("database is locked")
	if _, err := f.p.Dispute(ctx, c.ID, ""); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("undelivered: %v, want ErrUnknownOutcome", err)
	}
	s.fail = nil
	d, err := f.p.Dispute(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if evs := s.take(); types(evs) != "charge.dispute.created,charge.dispute.funds_withdrawn" || evs[0].ID != "evt_"+d.ID+"_created" {
		t.Fatalf("events = %+v", evs)
	}
}
