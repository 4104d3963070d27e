package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/sqlite"
)

// The simulated Stripe is the sandbox: Stripe's test cards, its memory
// (charges, idempotency keys for 24 hours, cards) kept in the run's
// database, which survives every crash of Topup, its ids from a seeded
// generator of its own and its time from the simulation's clock. What is
// simulated here is its fault hook, whose faults the current step's random
// source decides, and the network around it: crash points of Topup, the
// traces, the answers Topup was given and the webhooks Stripe sends.

// cardKind is how a simulated card behaves: one of Stripe's test tokens.
type cardKind string

// Card kinds. Visa succeeds (with an occasional random decline or slow
// answer, as real cards do); the others always answer the same way.
const (
	cardVisa         cardKind = "pm_card_visa"
	cardDeclined     cardKind = "pm_card_chargeDeclined"                  // card_declined
	cardInsufficient cardKind = "pm_card_chargeDeclinedInsufficientFunds" // insufficient_funds
	cardLost         cardKind = "pm_card_chargeDeclinedLostCard"          // lost_card: never retried
	cardStolen       cardKind = "pm_card_chargeDeclinedStolenCard"        // stolen_card: never retried
	cardAuth         cardKind = "pm_card_authenticationRequired"          // requires_action (authentication_required off-session)
	cardCustomerFail cardKind = "pm_card_chargeCustomerFail"              // attaches, then every charge is declined
)

var cardKinds = []struct {
	kind   cardKind
	weight int
}{
	{cardVisa, 70}, {cardAuth, 12}, {cardDeclined, 4}, {cardInsufficient, 4}, {cardLost, 2}, {cardStolen, 2}, {cardCustomerFail, 6},
}

// lateRequest is a charge request the provider received but finishes only
// after the caller stopped waiting: the caller saw a timeout, the charge
// lands at landAt.
type lateRequest struct {
	req    payment.ChargeRequest
	landAt time.Time
}

// decision is the later outcome of a charge the provider left processing.
type decision struct {
	id   string
	at   time.Time
	to   payment.ChargeStatus
	code string
}

// provider is the simulated Stripe, as Topup's payment.Provider and as the
// sandbox's Hook.
type provider struct {
	s   *Sim
	sb  *sandbox.Provider // on the running process's store
	ids *ids.Generator    // Stripe's, for the whole run
	// kinds are the cards' test tokens, by card id.
	kinds map[string]cardKind
	// charges is every charge the sandbox made, in order, as it told the
	// hook: the ground truth the invariants compare Topup's ledger with.
	charges   []*sandbox.Charge
	byID      map[string]*sandbox.Charge
	byKey     map[string]*sandbox.Charge // the newest charge of each idempotency key
	late      []lateRequest
	decisions []decision
	misuse    []string // keys reused with other parameters
	// disputes are the disputes opened at the provider, by charge, as
	// the provider last answered about them.
	disputes map[string]payment.Dispute
	landing  bool // a late request is landing: no faults but its outcome
	at       time.Time
}

func newProvider(s *Sim) *provider {
	p := &provider{s: s, kinds: map[string]cardKind{}, byID: map[string]*sandbox.Charge{}, byKey: map[string]*sandbox.Charge{}, disputes: map[string]payment.Dispute{}}
	p.ids = ids.NewSeeded(p, s.cfg.Seed^0x57121e)
	return p
}

var (
	_ payment.Provider = (*provider)(nil)
	_ sandbox.Hook     = (*provider)(nil)
)

// open gives the sandbox a database of its own for the run, a SQLite file
// in a directory under dir: Stripe's memory is not Topup's, no crash of
// Topup touches it, and Verify, which checks the demo's sandbox charges
// against the top-ups once everything is settled, does not see charges
// Topup has yet to hear of. close removes it.
func (p *provider) open(ctx context.Context, dir string) (close func(), err error) {
	if dir == "" {
		dir = defaultDir()
	}
	if dir, err = os.MkdirTemp(dir, "topup-sim-stripe-"); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "stripe.db"), p, p.ids)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sim: open the provider's database: %w", err)
	}
	p.sb = sandbox.New(store.Sandbox, sandbox.Config{Clock: p, IDs: p.ids, Hook: p, Events: p.event})
	return func() {
		store.Close()
		os.RemoveAll(dir)
	}, nil
}

// Now is the provider's time: the clock's, or the moment a late request
// lands or a charge is decided while advance catches up with a clock that
// jumped.
func (p *provider) Now() time.Time {
	if !p.at.IsZero() {
		return p.at
	}
	return p.s.clock.Now()
}

// Name is the sandbox's.
func (p *provider) Name() string { return p.sb.Name() }

// EnsureCustomer returns customerID, or a new customer.
func (p *provider) EnsureCustomer(ctx context.Context, customerID, accountID, email string) (string, error) {
	return p.sb.EnsureCustomer(ctx, customerID, accountID, email)
}

// AttachPaymentMethod saves a card whose behaviour the test token names.
func (p *provider) AttachPaymentMethod(ctx context.Context, customerID, token string) (payment.Card, error) {
	c, err := p.sb.AttachPaymentMethod(ctx, customerID, token)
	if err == nil {
		p.kinds[c.ID] = cardKind(token)
	}
	return c, err
}

// DetachPaymentMethod detaches a card: later charges on it are refused.
func (p *provider) DetachPaymentMethod(ctx context.Context, id string) error {
	return p.sb.DetachPaymentMethod(ctx, id)
}

// SetupURL is not used by the simulation.
func (p *provider) SetupURL(ctx context.Context, customerID, accountID, successURL, cancelURL string) (string, error) {
	return p.sb.SetupURL(ctx, customerID, accountID, successURL, cancelURL)
}

// CompleteSetup is not used by the simulation.
func (p *provider) CompleteSetup(ctx context.Context, customerID, sessionID string) (payment.Card, error) {
	return p.sb.CompleteSetup(ctx, customerID, sessionID)
}

// Charge is the sandbox's, after a crash point of Topup before the request
// leaves; the hook decides the faults on the way (Fault).
func (p *provider) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	p.s.crashPoint("before the charge request left")
	ch, err := p.sb.Charge(ctx, req)
	if err != nil {
		p.refused(req, err)
		return payment.Charge{}, err
	}
	p.s.answered(ch)
	return ch, nil
}

// refused notes a charge request the sandbox refused, of which a key
// reused with other parameters breaks an invariant.
func (p *provider) refused(req payment.ChargeRequest, err error) {
	if errors.Is(err, sandbox.ErrKeyReused) {
		p.misuse = append(p.misuse, req.IdempotencyKey)
	}
	if !errors.Is(err, payment.ErrUnknownOutcome) {
		p.s.step.tracef("provider: refused %s: %v", req.TopUpID, err)
	}
}

// Fault decides how a call misbehaves. A charge: a 503 before anything is
// charged, a request that lands only after the caller gave up, a random
// outcome of a card that would succeed, a webhook that reaches Topup before
// the answer, a crash of Topup after the charge was made, an answer lost
// after charging. A look-up, a cancel or a search: a 503.
func (p *provider) Fault(c sandbox.Call) sandbox.Fault {
	st := p.s.step
	if c.Op == sandbox.OpRefund {
		return p.refundFault(c)
	}
	if c.Op != sandbox.OpCharge {
		if st.fault(0.03) {
			st.tracef("provider: 503 on %s %s", c.Op, c.ID)
			return sandbox.Fault{Refuse: fmt.Errorf("%w: 503", payment.ErrUnknownOutcome)}
		}
		return sandbox.Fault{}
	}
	req := c.Request
	if prev := p.byKey[req.IdempotencyKey]; c.Replay && prev != nil {
		st.tracef("provider: key %s replays %s (%s)", req.IdempotencyKey, prev.ID, prev.Status)
	}
	if p.landing {
		return p.outcome(c)
	}
	if st.fault(0.05) {
		st.tracef("provider: 503 before charging %s", req.TopUpID)
		p.s.stats.FailBefore++
		return sandbox.Fault{Refuse: fmt.Errorf("%w: 503 Service Unavailable", payment.ErrUnknownOutcome)}
	}
	if !c.Replay && st.fault(0.05) {
		land := p.Now().Add(time.Duration(1+st.rng.IntN(120)) * time.Second)
		p.late = append(p.late, lateRequest{req: req, landAt: land})
		st.tracef("provider: request for %s lands late, at %s; the caller times out", req.TopUpID, land.Format(time.TimeOnly))
		p.s.stats.Late++
		return sandbox.Fault{Late: true}
	}
	f := p.outcome(c)
	f.Lose = st.fault(0.08)
	f.During = func() { p.inFlight(req, f.Lose) }
	return f
}

// outcome is a random decline or slow answer of a card that succeeds.
func (p *provider) outcome(c sandbox.Call) sandbox.Fault {
	st := p.s.step
	if c.Replay || p.kinds[c.Request.PaymentMethod] != cardVisa {
		return sandbox.Fault{}
	}
	switch {
	case st.fault(0.04):
		return sandbox.Fault{Status: payment.Declined, DeclineCode: "insufficient_funds"}
	case st.fault(0.05):
		// The provider has not decided yet: a webhook (or a later look)
		// tells.
		return sandbox.Fault{Status: payment.Processing}
	}
	return sandbox.Fault{}
}

// inFlight is what happens between a charge and its answer: Stripe's
// webhook can reach Topup before the answer does (the webhook handler
// settles first), Topup can die, the answer can be lost.
func (p *provider) inFlight(req payment.ChargeRequest, lose bool) {
	st := p.s.step
	c := p.byKey[req.IdempotencyKey]
	if st.fault(0.1) {
		p.s.deliverNow(c.ID)
	}
	p.s.crashPoint("after the provider charged, before the answer")
	if lose {
		st.tracef("provider: answer for %s (%s %s) lost after charging", req.TopUpID, c.ID, c.Status)
		p.s.stats.Lost++
	}
}

// Changed keeps the sandbox's news of a charge: a new one (left processing,
// it is decided at a random later time), or a change of its status; and
// sends the webhooks Stripe sends.
func (p *provider) Changed(c sandbox.Charge) {
	st := p.s.step
	if old, ok := p.byID[c.ID]; ok {
		*old = c
	} else {
		n := c
		p.charges = append(p.charges, &n)
		p.byID[c.ID], p.byKey[c.IdempotencyKey] = &n, &n
		p.s.stats.Charges++
		st.tracef("provider: charged %s for %s: %d %s %s %s", c.ID, c.TopUpID, c.Amount, c.Currency, c.Status, c.DeclineCode)
		if c.Status == payment.Processing {
			d := decision{id: c.ID, at: p.Now().Add(time.Duration(1+st.rng.IntN(1800)) * time.Second), to: payment.Succeeded}
			if st.rng.IntN(4) == 0 {
				d.to, d.code = payment.Declined, "card_declined"
			}
			p.decisions = append(p.decisions, d)
		}
	}
	p.webhook(c)
}

// webhook sends what Stripe sends about a charge: a final charge, a
// canceled one, a failed off-session authentication too (Topup must ignore
// the two last).
func (p *provider) webhook(c sandbox.Charge) {
	ch := c.Payment()
	switch {
	case c.Status == payment.Succeeded:
		p.s.emit("payment_intent.succeeded", ch)
	case c.Status == payment.Declined && c.DeclineCode == "canceled":
		p.s.emit("payment_intent.canceled", ch)
	case c.Status == payment.Declined:
		p.s.emit("payment_intent.payment_failed", ch)
	case c.Status == payment.RequiresAction && c.DeclineCode == "authentication_required":
		// Stripe reports the off-session attempt as failed
		// (requires_payment_method, authentication_required).
		ch.Status = payment.Declined
		p.s.emit("payment_intent.payment_failed", ch)
	}
}

// GetCharge returns a charge as it now stands.
func (p *provider) GetCharge(ctx context.Context, id string) (payment.Charge, error) {
	p.s.crashPoint("before a charge lookup")
	ch, err := p.sb.GetCharge(ctx, id)
	if err != nil {
		return ch, err
	}
	p.s.step.tracef("provider: get %s: %s", id, ch.Status)
	p.s.answered(ch)
	return ch, nil
}

// CancelCharge cancels a charge still waiting for the customer, as Stripe
// cancels a PaymentIntent (payment_intent.canceled, which Topup ignores);
// any other charge is returned as it stands.
func (p *provider) CancelCharge(ctx context.Context, id string) (payment.Charge, error) {
	p.s.crashPoint("before a charge cancel")
	ch, err := p.sb.CancelCharge(ctx, id)
	if err != nil {
		return ch, err
	}
	p.s.step.tracef("provider: cancel %s: %s", id, ch.Status)
	p.s.answered(ch)
	return ch, nil
}

// FindCharge finds the newest charge whose metadata names the top-up,
// whatever key made it.
func (p *provider) FindCharge(ctx context.Context, customerID, topUpID string) (payment.Charge, bool, error) {
	p.s.crashPoint("before a charge search")
	p.s.stats.Finds++
	ch, ok, err := p.sb.FindCharge(ctx, customerID, topUpID)
	switch {
	case err != nil:
	case ok:
		p.s.step.tracef("provider: search for %s finds %s (%s)", topUpID, ch.ID, ch.Status)
		p.s.answered(ch)
	default:
		p.s.step.tracef("provider: search for %s finds nothing", topUpID)
	}
	return ch, ok, err
}

// Refund is the sandbox's, with crash points of Topup before the request
// leaves and after the provider refunded, before the answer; the hook
// decides its faults (Fault), and the sandbox's refund events go to the
// webhook queue (event) before it answers.
func (p *provider) Refund(ctx context.Context, req payment.RefundRequest) (payment.Refund, error) {
	p.s.crashPoint("before the refund request left")
	re, err := p.sb.Refund(ctx, req)
	if errors.Is(err, sandbox.ErrKeyReused) {
		p.misuse = append(p.misuse, req.IdempotencyKey)
	}
	if err != nil {
		p.s.step.tracef("provider: refund %s of %s: %v", req.RefundID, req.ChargeID, err)
		return re, err
	}
	p.s.step.tracef("provider: refund %s is %s (%s) of %s: %d %s", req.RefundID, re.ID, re.Status, req.ChargeID, re.Amount, re.Currency)
	return re, nil
}

// FindRefund is the sandbox's, after a crash point.
func (p *provider) FindRefund(ctx context.Context, chargeID, refundID string) (payment.Refund, bool, error) {
	p.s.crashPoint("before a refund lookup")
	re, ok, err := p.sb.FindRefund(ctx, chargeID, refundID)
	if err == nil {
		p.s.step.tracef("provider: lookup of refund %s finds %v (%s %s)", refundID, ok, re.ID, re.Status)
	}
	return re, ok, err
}

// event is the sandbox's sink of refund and dispute events: it notes what
// the provider now says of each refund and dispute, and queues the event
// for delivery by webhook steps (out of order, duplicated), under the id
// the sandbox gave it.
func (p *provider) event(_ context.Context, ev payment.Event) error {
	p.s.step.tracef("provider: sends %s", describeEvent(ev))
	p.s.queueEvent(ev)
	return nil
}

// refundFault is how a refund request misbehaves: a 503 before anything
// is refunded, a refund the bank fails at once (created pending, then
// failed), an answer lost after refunding with a crash point of Topup in
// between.
func (p *provider) refundFault(c sandbox.Call) sandbox.Fault {
	st := p.s.step
	switch {
	case st.fault(0.04):
		st.tracef("provider: 503 before refunding %s", c.Refund.RefundID)
		return sandbox.Fault{Refuse: fmt.Errorf("%w: 503 Service Unavailable", payment.ErrUnknownOutcome)}
	case c.Replay:
		return sandbox.Fault{}
	}
	var f sandbox.Fault
	if st.fault(0.1) {
		f.RefundStatus, f.FailureReason = payment.RefundFailed, "declined"
	}
	f.Lose = st.fault(0.08)
	f.During = func() {
		p.s.crashPoint("after the provider refunded, before the answer")
		if f.Lose {
			st.tracef("provider: answer to refund %s lost after refunding", c.Refund.RefundID)
		}
	}
	return f
}

// authenticate is the customer's answer to 3-D Secure, given to the
// provider (the sandbox challenge, or Stripe.js): the charge succeeds or is
// declined; a charge no longer waiting is returned unchanged.
func (p *provider) authenticate(id string, ok bool) (payment.Charge, bool) {
	waiting := p.byID[id] != nil && p.byID[id].Status == payment.RequiresAction
	ch, err := p.sb.Authenticate(p.s.ctx, id, ok)
	if errors.Is(err, payment.ErrNotFound) {
		return payment.Charge{}, false
	}
	if err != nil {
		panic(simError{err})
	}
	if waiting {
		p.s.step.tracef("provider: customer authenticated %s: %s", id, ch.Status)
	}
	return ch, true
}

// advance does what the provider finished by now (everything, when all
// is set), in the order of time and each at its own time: late requests
// land (a key still remembered then replays instead of charging again),
// processing charges are decided. It runs when the clock moves.
func (p *provider) advance(all bool) {
	now := p.s.clock.Now()
	defer func() { p.at = time.Time{} }()
	for {
		late, dec, when := p.nextDue(now, all)
		if when.IsZero() {
			return
		}
		p.at = when
		if when.After(now) {
			p.at = now
		}
		if late >= 0 {
			p.land(late)
		} else {
			p.decide(dec)
		}
	}
}

// nextDue is the earliest late request (its index) or decision (its
// index) due by now, and its time; zero when nothing is.
func (p *provider) nextDue(now time.Time, all bool) (late, dec int, when time.Time) {
	late, dec = -1, -1
	for i, l := range p.late {
		if (all || !l.landAt.After(now)) && (late < 0 || l.landAt.Before(when)) {
			late, when = i, l.landAt
		}
	}
	for i, d := range p.decisions {
		if (all || !d.at.After(now)) && (when.IsZero() || d.at.Before(when)) {
			dec, when, late = i, d.at, -1
		}
	}
	return late, dec, when
}

// land makes a late request reach the sandbox.
func (p *provider) land(i int) {
	l := p.late[i]
	p.late = append(p.late[:i:i], p.late[i+1:]...)
	p.s.step.tracef("provider: late request for %s lands", l.req.TopUpID)
	p.landing = true
	defer func() { p.landing = false }()
	if _, err := p.sb.Charge(p.s.ctx, l.req); err != nil {
		p.refused(l.req, err)
	}
}

// decide gives a processing charge its outcome.
func (p *provider) decide(i int) {
	d := p.decisions[i]
	p.decisions = append(p.decisions[:i:i], p.decisions[i+1:]...)
	ch, err := p.sb.Decide(p.s.ctx, d.id, d.to, d.code)
	if err != nil {
		panic(simError{err})
	}
	p.s.step.tracef("provider: decided %s for %s: %s", ch.ID, ch.TopUpID, ch.Status)
}

// succeededFor returns the succeeded charges of each top-up.
func (p *provider) succeededFor() map[string][]*sandbox.Charge {
	out := map[string][]*sandbox.Charge{}
	for _, c := range p.charges {
		if c.Status == payment.Succeeded {
			out[c.TopUpID] = append(out[c.TopUpID], c)
		}
	}
	return out
}
