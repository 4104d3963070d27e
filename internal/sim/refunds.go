package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/sqlstore"
)

// refundBook is what the checks have read of refunds and disputes: the
// clawback entries of the ledger by what they are about (entries never
// change, so each is read once), and the requests the client sent.
type refundBook struct {
	// entries are the refund, refund_reversal, dispute and
	// dispute_reversal entries, by kind and idempotency key (the refund's
	// or dispute's id).
	entries map[clawKey][]string
	// accts are the accounts that had a refund asked for or a dispute
	// opened: the refunded-within-amount check reads theirs.
	accts []string
	// topUps are the top-ups a refund was asked for: the refunds all
	// come from the client's requests.
	topUps []string
	// sent are the refund requests the client sent, which it may send
	// again (a replay).
	sent []refund.Request
}

type clawKey struct {
	kind ledger.Kind
	ref  string
}

func newRefundBook() refundBook { return refundBook{entries: map[clawKey][]string{}} }

func (b *refundBook) asked(topUp string) {
	if !slices.Contains(b.topUps, topUp) {
		b.topUps = append(b.topUps, topUp)
	}
}

func (b *refundBook) touch(acct string) {
	for _, a := range b.accts {
		if a == acct {
			return
		}
	}
	b.accts = append(b.accts, acct)
}

// refundStore is the store as the refund worker sees it, with crash points
// around the calls that write (ApplyRefund's are engineStore's).
type refundStore struct {
	s *Sim
	p *process
}

var _ refund.Store = refundStore{}

func (h refundStore) CreateRefund(ctx context.Context, req refund.Request) (refund.Refund, bool, error) {
	return h.p.store.CreateRefund(ctx, req)
}

func (h refundStore) ClaimRefunds(ctx context.Context, lease time.Duration, limit int) ([]refund.Due, error) {
	h.s.crashPoint("before a refund claim")
	due, err := h.p.store.ClaimRefunds(ctx, lease, limit)
	if err == nil && len(due) > 0 {
		for _, d := range due {
			h.s.step.tracef("refund worker claimed %s (%s of %s, attempt %d)", d.ID, d.Amount.Format(d.Currency), d.TopUpID, d.Attempts)
		}
		h.s.crashPoint("after a refund claim")
	}
	return due, err
}

func (h refundStore) RefundDue(ctx context.Context, id string) (refund.Due, error) {
	return h.p.store.RefundDue(ctx, id)
}

func (h refundStore) ApplyRefund(ctx context.Context, w refund.Word) (refund.Refund, bool, error) {
	return engineStore(h).ApplyRefund(ctx, w)
}

func (h refundStore) RenewRefund(ctx context.Context, id string, until time.Time) error {
	return h.p.store.RenewRefund(ctx, id, until)
}

func (h refundStore) RetryRefund(ctx context.Context, id string, at time.Time) error {
	h.s.crashPoint("before RetryRefund")
	return h.p.store.RetryRefund(ctx, id, at)
}

// refundStep is a refund asked for through the API, as POST
// …/top_ups/{id}/refunds does it: a refund of a top-up Topup credited
// (the whole refundable amount, a part, more than was paid, or an earlier
// request sent again), stored pending before the provider is called, then
// attempted at once by the worker's Attempt. The process may die between
// storing and calling, or after the provider answered: the worker's
// RunOnce takes it up once its lease ran out.
func (s *Sim) refundStep(step Step) {
	rng := s.step.rng
	s.step.refunds = true
	var req refund.Request
	if len(s.rf.sent) > 0 && rng.IntN(6) == 0 {
		req = s.rf.sent[rng.IntN(len(s.rf.sent))]
		s.step.tracef("client re-sends refund request %s", req.IdempotencyKey)
	} else {
		ids := sortedKeys(s.credits)
		if len(ids) == 0 {
			return
		}
		id := ids[step.Acct%len(ids)]
		c := s.credits[id]
		req = refund.Request{AccountID: c.acct, TopUpID: id, IdempotencyKey: fmt.Sprintf("r%d", step.N), Reason: "requested_by_customer", Lease: lease}
		cur := s.currency(c.acct)
		minor, err := c.amount.MinorUnits(cur)
		if err != nil {
			panic(simError{err})
		}
		switch n := rng.IntN(10); {
		case n < 4:
		case n < 9:
			req.Amount, req.Explicit = mustMinor(1+rng.Int64N(max(minor/2, 1)), cur), true
		default:
			req.Amount, req.Explicit = mustMinor(minor+1, cur), true
		}
		s.rf.sent = append(s.rf.sent, req)
		s.rf.touch(c.acct)
		s.rf.asked(id)
		s.step.tracef("refund %s of top-up %s of %s (explicit %v)", req.IdempotencyKey, id, req.Amount.Format(cur), req.Explicit)
	}
	s.crashPoint("before CreateRefund")
	r, replayed, err := s.proc.store.CreateRefund(s.ctx, req)
	switch code := apperr.CodeOf(err); {
	case err == nil:
	case code == apperr.Invalid || code == apperr.Conflict:
		s.stats.RefundsRefused++
		s.step.tracef("refund refused: %v", err)
		return
	default:
		s.internal("create refund", err)
		return
	}
	s.step.tracef("refund %s stored: %s %s (replay %v)", r.ID, r.Amount, r.Status, replayed)
	if replayed {
		return
	}
	s.stats.RefundsAsked++
	s.crashPoint("after a refund was stored, before the provider was called")
	d, err := s.proc.store.RefundDue(s.ctx, r.ID)
	if err != nil {
		s.internal("refund due", err)
		return
	}
	got, err := s.proc.refunds.Attempt(s.ctx, d)
	if err != nil {
		s.internal("refund attempt", err)
		return
	}
	s.step.tracef("refund %s is %s (%s)", got.ID, got.Status, got.ProviderID)
	s.crashPoint("after the refund was attempted, before the answer")
}

func mustMinor(units int64, cur money.Currency) money.Amount {
	a, err := money.FromMinor(units, cur)
	if err != nil {
		panic(simError{err})
	}
	return a
}

// refundPass is one pass of the refund worker: the refunds whose lease
// ran out (their caller died) or whose retry time came.
func (s *Sim) refundPass() {
	s.step.refunds = true
	n, err := s.proc.refunds.RunOnce(s.ctx)
	if err != nil {
		s.internal("refund worker pass", err)
	}
	if n > 0 {
		s.stats.RefundPasses++
		s.step.tracef("refund worker attempted %d", n)
	}
}

// drainRefunds runs refund worker passes in a quiet period until none
// attempts anything, the clock moving past every retry wait and lease.
func (s *Sim) drainRefunds() {
	for range 10 {
		s.clock.Advance(lease + 5*time.Minute + time.Second)
		n, err := s.proc.refunds.RunOnce(s.ctx)
		if err != nil {
			s.internal("refund worker pass", err)
		}
		if n == 0 {
			return
		}
	}
}

// dispute is the cardholder's bank at the provider: it opens a dispute of
// a credited top-up's charge (its funds withdrawn at once), or closes an
// open one won (funds reinstated) or lost. The provider's events go to the
// webhook queue.
func (s *Sim) dispute(step Step) {
	rng := s.step.rng
	s.step.refunds = true
	var open, all []*sandbox.Charge
	for _, c := range s.stripe.charges {
		if _, credited := s.credits[c.TopUpID]; c.Status != payment.Succeeded || !credited {
			continue
		}
		all = append(all, c)
		if d, ok := s.stripe.disputes[c.ID]; ok && d.Status == payment.DisputeNeedsResponse {
			open = append(open, c)
		}
	}
	if len(all) == 0 {
		return
	}
	if len(open) > 0 && rng.IntN(3) > 0 {
		s.closeDispute(open[rng.IntN(len(open))])
		return
	}
	c := all[step.Acct%len(all)]
	d, err := s.stripe.sb.Dispute(s.ctx, c.ID, "")
	switch {
	case errors.Is(err, sandbox.ErrNotDisputable):
		s.step.tracef("dispute of %s (%s) refused: %v", c.TopUpID, c.ID, err)
		return
	case err != nil:
		panic(simError{fmt.Errorf("dispute %s: %w", c.ID, err)})
	}
	if _, again := s.stripe.disputes[c.ID]; !again {
		s.stats.Disputes++
	}
	s.stripe.disputes[c.ID] = d
	s.rf.touch(s.accountOfTopUp(c.TopUpID))
	s.step.tracef("dispute %s of %s (%s) opened: %d %s, %s", d.ID, c.TopUpID, c.ID, d.Amount, d.Currency, d.Status)
}

// closeDispute closes the open dispute of charge c, won or lost.
func (s *Sim) closeDispute(c *sandbox.Charge) {
	outcome := sandbox.OutcomeWon
	if s.step.rng.IntN(2) == 0 {
		outcome = sandbox.OutcomeLost
	}
	d, err := s.stripe.sb.CloseDispute(s.ctx, c.ID, outcome)
	if err != nil {
		panic(simError{fmt.Errorf("close dispute of %s: %w", c.ID, err)})
	}
	s.stripe.disputes[c.ID] = d
	if outcome == sandbox.OutcomeWon {
		s.stats.DisputesWon++
	} else {
		s.stats.DisputesLost++
	}
	s.step.tracef("dispute %s of %s (%s) closed %s", d.ID, c.TopUpID, c.ID, d.Status)
}

func (s *Sim) accountOfTopUp(id string) string { return s.credits[id].acct }

// describeEvent is a webhook as the traces print it.
func describeEvent(ev payment.Event) string {
	switch {
	case ev.Charge != nil:
		return fmt.Sprintf("%s %s for %s (%s %s)", ev.ID, ev.Type, ev.Charge.TopUpID, ev.Charge.ID, ev.Charge.Status)
	case ev.Refund != nil:
		return fmt.Sprintf("%s %s: refund %s (%s) of %s: %d %s", ev.ID, ev.Type, ev.Refund.ID, ev.Refund.RefundID, ev.Refund.ChargeID, ev.Refund.Amount, ev.Refund.Status)
	case ev.Dispute != nil:
		return fmt.Sprintf("%s %s: dispute %s of %s: %d %s", ev.ID, ev.Type, ev.Dispute.ID, ev.Dispute.ChargeID, ev.Dispute.Amount, ev.Dispute.Status)
	case ev.Card != nil:
		return fmt.Sprintf("%s %s for card %s", ev.ID, ev.Type, ev.Card.ID)
	}
	return ev.ID + " " + ev.Type
}

// readClaw records a refund's or a dispute's entry, or its reversal (by
// kind and the refund's or dispute's id): each at most once, and a
// reversal only after its entry (refund-in-ledger-once,
// dispute-entries-once). No other kind of entry is made in the simulation.
func (s *Sim) readClaw(e ledger.Entry) {
	switch e.Kind {
	case ledger.KindRefund, ledger.KindRefundReversal, ledger.KindDispute, ledger.KindDisputeReversal:
	default:
		s.step.fail("idempotent-postings", "entry %s of kind %s, which nothing in the simulation makes", e.ID, e.Kind)
		return
	}
	k := clawKey{e.Kind, e.IdempotencyKey}
	prev := s.rf.entries[k]
	s.rf.entries[k] = append(prev, e.ID)
	inv, first := "refund-in-ledger-once", ledger.KindRefund
	if e.Kind == ledger.KindDispute || e.Kind == ledger.KindDisputeReversal {
		inv, first = "dispute-entries-once", ledger.KindDispute
	}
	if len(prev) > 0 {
		s.step.fail(inv, "%s %s is in the ledger twice: %s and %s", e.Kind, e.IdempotencyKey, prev[0], e.ID)
	}
	if e.Kind != first && len(s.rf.entries[clawKey{first, e.IdempotencyKey}]) == 0 {
		s.step.fail(inv, "%s entry %s reverses %s %s, which has no entry", e.Kind, e.ID, first, e.IdempotencyKey)
	}
	s.rf.touch(e.AccountID)
}

// checkRefunds checks, after a step that may have changed a refund or a
// dispute (stepState.refunds) and wrote, every account that had a
// refund or a dispute (refunded-within-amount): what its top-ups' refunds
// that succeeded and its disputes whose funds were withdrawn and not
// reinstated add up to is at most the top-up's amount; and a refund that
// succeeded with something taken has its entry (refund-in-ledger-once).
func (s *Sim) checkRefunds(wrote bool) {
	if !wrote || !s.step.refunds {
		return
	}
	for _, acct := range s.rf.accts {
		out := map[string]money.Amount{}
		for _, d := range s.disputesOf(acct) {
			if d.WasDrawn && !d.Reinstated {
				out[d.TopUpID] += d.Amount
			}
		}
		for _, r := range s.refundsOf(acct) {
			if r.Status == refund.Succeeded {
				out[r.TopUpID] += r.Amount
				if n := len(s.rf.entries[clawKey{ledger.KindRefund, r.ID}]); (r.Taken > 0) != (n == 1) {
					s.step.fail("refund-in-ledger-once", "refund %s succeeded having taken %s, and the ledger holds %d refund entries for it", r.ID, r.Taken, n)
				}
			}
		}
		for _, id := range sortedKeys(out) {
			if c, ok := s.credits[id]; !ok || out[id] > c.amount {
				s.step.fail("refunded-within-amount", "top-up %s of %s has %s refunded or withdrawn by disputes (credited: %v)", id, c.amount, out[id], ok)
			}
		}
	}
}

// refundsOf is every refund of an account's top-ups.
func (s *Sim) refundsOf(acct string) []refund.Refund {
	var out []refund.Refund
	for _, id := range s.rf.topUps {
		if s.credits[id].acct != acct {
			continue
		}
		rs, err := s.proc.store.ListRefunds(s.ctx, acct, id)
		if err != nil {
			panic(simError{err})
		}
		out = append(out, rs...)
	}
	return out
}

func (s *Sim) disputesOf(acct string) []sqlstore.Dispute {
	ds, err := s.proc.store.ListDisputes(s.ctx, acct)
	if err != nil {
		panic(simError{err})
	}
	return ds
}

// refundsFinal checks, at the end of a quiet period (refunds-final), that
// no refund is pending, and that the provider's refund log equals Topup's
// refunds: each refund the provider made is Topup's (by its id), with the
// same status, succeeded exactly when Topup's succeeded, its entry in the
// ledger once (when it took something) and not reversed; a failed one has
// as many reversals as entries.
func (s *Sim) refundsFinal() {
	st := s.step
	s.readEntries() // what the quiet period wrote
	mine := map[string]refund.Refund{}
	for _, acct := range s.rf.accts {
		for _, r := range s.refundsOf(acct) {
			mine[r.ID] = r
			if r.Status == refund.Pending {
				st.fail("refunds-final", "refund %s of %s is still pending after a quiet period", r.ID, r.TopUpID)
			}
		}
	}
	seen := map[string]bool{}
	s.stats.RefundsSucceeded, s.stats.RefundsFailed = 0, 0
	for _, pr := range s.providerRefunds() {
		seen[pr.RefundID] = true
		r, ok := mine[pr.RefundID]
		want := refund.StatusOf(pr.Status)
		switch {
		case !ok:
			st.fail("refunds-final", "the provider's refund %s (%s, %s) is not a refund Topup has", pr.ID, pr.RefundID, pr.Status)
		case r.Status != want || r.ProviderID != pr.ID:
			st.fail("refunds-final", "refund %s is %s (%s) in Topup, %s (%s) at the provider", r.ID, r.Status, r.ProviderID, pr.Status, pr.ID)
		}
		s.refundEntries(r, want)
		if want == refund.Succeeded {
			s.stats.RefundsSucceeded++
		} else {
			s.stats.RefundsFailed++
		}
	}
	for _, id := range sortedKeys(mine) {
		if r := mine[id]; r.Status == refund.Succeeded && !seen[id] {
			st.fail("refunds-final", "refund %s succeeded in Topup, but the provider never made it", id)
		}
	}
}

// providerRefunds is the provider's refund log, every page of it.
func (s *Sim) providerRefunds() []sandbox.Refund {
	var out []sandbox.Refund
	after := ""
	for {
		log, more, err := s.stripe.sb.Refunds(s.ctx, 100, after)
		if err != nil {
			panic(simError{err})
		}
		out = append(out, log...)
		if !more || len(log) == 0 {
			return out
		}
		after = log[len(log)-1].ID
	}
}

// refundEntries checks a refund's entries once it is final: a succeeded
// refund has one refund entry (none when it took nothing) and no
// reversal; a failed one as many reversals as entries.
func (s *Sim) refundEntries(r refund.Refund, want refund.Status) {
	n := len(s.rf.entries[clawKey{ledger.KindRefund, r.ID}])
	rev := len(s.rf.entries[clawKey{ledger.KindRefundReversal, r.ID}])
	switch {
	case want == refund.Succeeded && ((r.Taken > 0) != (n == 1) || rev != 0):
		s.step.fail("refund-in-ledger-once", "refund %s succeeded at the provider (taken %s): the ledger holds %d refund entries and %d reversals", r.ID, r.Taken, n, rev)
	case want == refund.Failed && n != rev:
		s.step.fail("refund-in-ledger-once", "refund %s failed at the provider: the ledger holds %d refund entries and %d reversals", r.ID, n, rev)
	}
}
