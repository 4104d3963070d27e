package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/topup/topup/internal/payment"
)

// cardKind is how a simulated card behaves, after Stripe's test cards.
type cardKind string

// Card kinds. Visa succeeds (with an occasional random decline or slow
// answer, as real cards do); the others always answer the same way.
const (
	cardVisa         cardKind = "visa"
	cardDeclined     cardKind = "declined"      // card_declined
	cardInsufficient cardKind = "insufficient"  // insufficient_funds
	cardLost         cardKind = "lost"          // lost_card: never retried
	cardStolen       cardKind = "stolen"        // stolen_card: never retried
	cardAuth         cardKind = "3ds"           // requires_action (authentication_required off-session)
	cardCustomerFail cardKind = "customer_fail" // attaches, then every charge is declined
)

var cardKinds = []struct {
	kind   cardKind
	weight int
}{
	{cardVisa, 70}, {cardAuth, 12}, {cardDeclined, 4}, {cardInsufficient, 4}, {cardLost, 2}, {cardStolen, 2}, {cardCustomerFail, 6},
}

// stripeCard is a payment method as the simulated provider keeps it.
type stripeCard struct {
	id       string
	customer string // "" once detached
	kind     cardKind
}

// stripeCharge is the provider's record of one charge (a PaymentIntent),
// the ground truth the invariants compare Topup's ledger with.
type stripeCharge struct {
	payment.Charge
	key        string
	customer   string
	card       string
	offSession bool
	// decideAt is when a processing charge gets its outcome; decideTo is
	// that outcome.
	decideAt    time.Time
	decideTo    payment.ChargeStatus
	decideCode  string
	finalAt     time.Time // when the status became succeeded or declined
	authenticAt time.Time // when the customer answered 3-D Secure
}

// lateRequest is a charge request the provider received but finishes only
// after the caller stopped waiting: the caller saw a timeout, the charge
// lands at landAt.
type lateRequest struct {
	req    payment.ChargeRequest
	landAt time.Time
}

// provider is the simulated Stripe. Its memory (charges, keys, cards,
// customers, webhooks not yet delivered) is Stripe's and survives every
// crash of Topup. Faults are decided by the current step's random source.
type provider struct {
	s         *Sim
	seq       int
	charges   []*stripeCharge
	keys      map[string]*stripeCharge
	cards     map[string]*stripeCard
	late      []lateRequest
	misuse    []string // keys reused with other parameters
	customers int
	at        time.Time // see now
}

func newProvider(s *Sim) *provider {
	return &provider{s: s, keys: map[string]*stripeCharge{}, cards: map[string]*stripeCard{}}
}

var _ payment.Provider = (*provider)(nil)

func (p *provider) next(prefix string) string {
	p.seq++
	return fmt.Sprintf("%s_%d", prefix, p.seq)
}

// now is the provider's time: the clock's, or the moment a late request
// lands or a charge is decided while advance catches up with a clock that
// jumped.
func (p *provider) now() time.Time {
	if !p.at.IsZero() {
		return p.at
	}
	return p.s.clock.Now()
}

// Name is "simulated".
func (p *provider) Name() string { return "simulated" }

// EnsureCustomer returns customerID, or a new customer.
func (p *provider) EnsureCustomer(_ context.Context, customerID, _, _ string) (string, error) {
	if customerID != "" {
		return customerID, nil
	}
	p.customers++
	return fmt.Sprintf("cus_%d", p.customers), nil
}

// AttachPaymentMethod saves a card whose behaviour the token names
// ("pm_card_3ds", "pm_card_visa"…).
func (p *provider) AttachPaymentMethod(_ context.Context, customerID, token string) (payment.Card, error) {
	kind := cardKind(strings.TrimPrefix(token, "pm_card_"))
	c := &stripeCard{id: p.next("pm"), customer: customerID, kind: kind}
	p.cards[c.id] = c
	return payment.Card{ID: c.id, Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2034}, nil
}

// DetachPaymentMethod detaches a card: later charges on it are refused.
func (p *provider) DetachPaymentMethod(_ context.Context, id string) error {
	c, ok := p.cards[id]
	if !ok {
		return fmt.Errorf("sim: payment method %s: %w", id, payment.ErrNotFound)
	}
	c.customer = ""
	return nil
}

// SetupURL is not used by the simulation.
func (p *provider) SetupURL(context.Context, string, string, string, string) (string, error) {
	return "", errors.New("sim: no hosted pages")
}

// CompleteSetup is not used by the simulation.
func (p *provider) CompleteSetup(context.Context, string, string) (payment.Card, error) {
	return payment.Card{}, errors.New("sim: no hosted pages")
}

// remembered returns the charge a key made while Stripe still remembers
// the key (24 hours).
func (p *provider) remembered(key string) (*stripeCharge, bool) {
	c, ok := p.keys[key]
	if !ok || !p.now().Before(c.Created.Add(24*time.Hour)) {
		return nil, false
	}
	return c, true
}

// Charge creates and confirms a charge, or replays the one its key made.
// The step's random source decides the faults: a crash of Topup before the
// request leaves, a 503 before anything is charged, a request that lands
// only after the caller gave up, an answer lost after charging, a crash of
// Topup after the charge was made.
func (p *provider) Charge(_ context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	st := p.s.step
	p.s.crashPoint("before the charge request left")
	if st.fault(0.05) {
		st.tracef("provider: 503 before charging %s", req.TopUpID)
		p.s.stats.FailBefore++
		return payment.Charge{}, fmt.Errorf("sim: charge top-up %s: %w: 503 Service Unavailable", req.TopUpID, payment.ErrUnknownOutcome)
	}
	if _, ok := p.remembered(req.IdempotencyKey); !ok && st.fault(0.05) {
		land := p.now().Add(time.Duration(1+st.rng.IntN(120)) * time.Second)
		p.late = append(p.late, lateRequest{req: req, landAt: land})
		st.tracef("provider: request for %s lands late, at %s; the caller times out", req.TopUpID, land.Format(time.TimeOnly))
		p.s.stats.Late++
		return payment.Charge{}, fmt.Errorf("sim: charge top-up %s: %w: context deadline exceeded", req.TopUpID, payment.ErrUnknownOutcome)
	}
	c, err := p.land(req)
	if err != nil {
		st.tracef("provider: refused %s: %v", req.TopUpID, err)
		return payment.Charge{}, err
	}
	if st.fault(0.1) {
		// Stripe's webhook can reach Topup before the answer to the charge
		// request does: the webhook handler settles first.
		p.s.deliverNow(c.ID)
	}
	p.s.crashPoint("after the provider charged, before the answer")
	if st.fault(0.08) {
		st.tracef("provider: answer for %s (%s %s) lost after charging", req.TopUpID, c.ID, c.Status)
		p.s.stats.Lost++
		return payment.Charge{}, fmt.Errorf("sim: charge top-up %s: %w: context deadline exceeded", req.TopUpID, payment.ErrUnknownOutcome)
	}
	p.s.answered(c.Charge)
	return c.Charge, nil
}

// land makes the charge a request asks for, or returns the one its key
// made (Stripe's idempotency, for 24 hours).
func (p *provider) land(req payment.ChargeRequest) (*stripeCharge, error) {
	st := p.s.step
	if prev, ok := p.remembered(req.IdempotencyKey); ok {
		if prev.Amount != req.Amount || prev.Currency != strings.ToLower(req.Currency) || prev.customer != req.Customer || prev.card != req.PaymentMethod {
			p.misuse = append(p.misuse, req.IdempotencyKey)
			return nil, fmt.Errorf("sim: idempotency key %s was used with other parameters", req.IdempotencyKey)
		}
		st.tracef("provider: key %s replays %s (%s)", req.IdempotencyKey, prev.ID, prev.Status)
		return prev, nil
	}
	card, ok := p.cards[req.PaymentMethod]
	switch {
	case req.Amount <= 0 || req.IdempotencyKey == "":
		return nil, fmt.Errorf("sim: invalid charge request %+v", req)
	case !ok:
		return nil, fmt.Errorf("sim: no such payment method %s", req.PaymentMethod)
	case card.customer == "":
		return nil, fmt.Errorf("sim: payment method %s was detached and may not be used again", card.id)
	case card.customer != req.Customer:
		return nil, fmt.Errorf("sim: payment method %s does not belong to %s", card.id, req.Customer)
	}
	now := p.now()
	c := &stripeCharge{
		Charge: payment.Charge{ID: p.next("pi"), TopUpID: req.TopUpID, Status: payment.Succeeded, Amount: req.Amount,
			Currency: strings.ToLower(req.Currency), Created: now},
		key: req.IdempotencyKey, customer: req.Customer, card: card.id, offSession: req.OffSession,
	}
	switch card.kind {
	case cardDeclined, cardCustomerFail:
		c.Status, c.DeclineCode = payment.Declined, "card_declined"
	case cardInsufficient:
		c.Status, c.DeclineCode = payment.Declined, "insufficient_funds"
	case cardLost:
		c.Status, c.DeclineCode = payment.Declined, "lost_card"
	case cardStolen:
		c.Status, c.DeclineCode = payment.Declined, "stolen_card"
	case cardAuth:
		c.Status, c.ClientSecret = payment.RequiresAction, c.ID+"_secret"
		if req.OffSession {
			c.DeclineCode = "authentication_required"
		}
	default:
		switch {
		case st.fault(0.04):
			c.Status, c.DeclineCode = payment.Declined, "insufficient_funds"
		case st.fault(0.05):
			// The provider has not decided yet: a webhook (or a later look)
			// tells.
			c.Status = payment.Processing
			c.decideAt = now.Add(time.Duration(1+st.rng.IntN(1800)) * time.Second)
			c.decideTo = payment.Succeeded
			if st.rng.IntN(4) == 0 {
				c.decideTo, c.decideCode = payment.Declined, "card_declined"
			}
		}
	}
	p.charges = append(p.charges, c)
	p.keys[req.IdempotencyKey] = c
	p.s.stats.Charges++
	st.tracef("provider: charged %s for %s: %d %s %s %s", c.ID, req.TopUpID, c.Amount, c.Currency, c.Status, c.DeclineCode)
	p.changed(c)
	return c, nil
}

// changed records a status change: the final time, and the webhooks Stripe
// sends (a final charge; a failed off-session authentication too, which
// Topup must ignore).
func (p *provider) changed(c *stripeCharge) {
	switch c.Status {
	case payment.Succeeded:
		c.finalAt = p.now()
		p.s.emit("payment_intent.succeeded", c.Charge)
	case payment.Declined:
		c.finalAt = p.now()
		p.s.emit("payment_intent.payment_failed", c.Charge)
	case payment.RequiresAction:
		if c.DeclineCode == "authentication_required" {
			// Stripe reports the off-session attempt as failed
			// (requires_payment_method, authentication_required).
			ev := c.Charge
			ev.Status = payment.Declined
			p.s.emit("payment_intent.payment_failed", ev)
		}
	}
}

// GetCharge returns a charge as it now stands.
func (p *provider) GetCharge(_ context.Context, id string) (payment.Charge, error) {
	st := p.s.step
	p.s.crashPoint("before a charge lookup")
	if st.fault(0.03) {
		st.tracef("provider: 503 on get %s", id)
		return payment.Charge{}, fmt.Errorf("sim: get charge %s: %w: 503", id, payment.ErrUnknownOutcome)
	}
	for _, c := range p.charges {
		if c.ID == id {
			st.tracef("provider: get %s: %s", id, c.Status)
			p.s.answered(c.Charge)
			return c.Charge, nil
		}
	}
	return payment.Charge{}, fmt.Errorf("sim: charge %s: %w", id, payment.ErrNotFound)
}

// CancelCharge cancels a charge still waiting for the customer, as Stripe
// cancels a PaymentIntent (payment_intent.canceled, which Topup ignores);
// any other charge is returned as it stands.
func (p *provider) CancelCharge(_ context.Context, id string) (payment.Charge, error) {
	st := p.s.step
	p.s.crashPoint("before a charge cancel")
	if st.fault(0.03) {
		st.tracef("provider: 503 on cancel %s", id)
		return payment.Charge{}, fmt.Errorf("sim: cancel charge %s: %w: 503", id, payment.ErrUnknownOutcome)
	}
	for _, c := range p.charges {
		if c.ID != id {
			continue
		}
		if c.Status == payment.RequiresAction {
			c.Status, c.DeclineCode, c.ClientSecret, c.finalAt = payment.Declined, "canceled", "", p.now()
			p.s.emit("payment_intent.canceled", c.Charge)
		}
		st.tracef("provider: cancel %s: %s", id, c.Status)
		p.s.answered(c.Charge)
		return c.Charge, nil
	}
	return payment.Charge{}, fmt.Errorf("sim: charge %s: %w", id, payment.ErrNotFound)
}

// FindCharge finds the newest charge whose metadata names the top-up,
// whatever key made it.
func (p *provider) FindCharge(_ context.Context, customerID, topUpID string) (payment.Charge, bool, error) {
	st := p.s.step
	p.s.crashPoint("before a charge search")
	p.s.stats.Finds++
	if st.fault(0.03) {
		st.tracef("provider: 503 on search for %s", topUpID)
		return payment.Charge{}, false, fmt.Errorf("sim: find charge %s: %w: 503", topUpID, payment.ErrUnknownOutcome)
	}
	for i := len(p.charges) - 1; i >= 0; i-- {
		c := p.charges[i]
		if c.TopUpID == topUpID && (customerID == "" || c.customer == customerID) {
			st.tracef("provider: search for %s finds %s (%s)", topUpID, c.ID, c.Status)
			p.s.answered(c.Charge)
			return c.Charge, true, nil
		}
	}
	st.tracef("provider: search for %s finds nothing", topUpID)
	return payment.Charge{}, false, nil
}

// authenticate is the customer's answer to 3-D Secure, given to the
// provider (the sandbox challenge, or Stripe.js): the charge succeeds or is
// declined; a charge no longer waiting is returned unchanged.
func (p *provider) authenticate(id string, ok bool) (payment.Charge, bool) {
	for _, c := range p.charges {
		if c.ID != id {
			continue
		}
		if c.Status == payment.RequiresAction {
			c.ClientSecret, c.authenticAt = "", p.now()
			if ok {
				c.Status, c.DeclineCode = payment.Succeeded, ""
			} else {
				c.Status, c.DeclineCode = payment.Declined, "payment_intent_authentication_failure"
			}
			p.s.step.tracef("provider: customer authenticated %s: %s", c.ID, c.Status)
			p.changed(c)
		}
		return c.Charge, true
	}
	return payment.Charge{}, false
}

// advance does what the provider finished by now (everything, when all
// is set), in the order of time and each at its own time: late requests
// land (a key still remembered then replays instead of charging again),
// processing charges are decided. It runs when the clock moves.
func (p *provider) advance(all bool) {
	now := p.s.clock.Now()
	defer func() { p.at = time.Time{} }()
	for {
		// The earliest thing due.
		var when time.Time
		late, charge := -1, (*stripeCharge)(nil)
		for i, l := range p.late {
			if (all || !l.landAt.After(now)) && (late < 0 || l.landAt.Before(when)) {
				late, when = i, l.landAt
			}
		}
		for _, c := range p.charges {
			if c.Status == payment.Processing && (all || !c.decideAt.After(now)) && (when.IsZero() || c.decideAt.Before(when)) {
				charge, when, late = c, c.decideAt, -1
			}
		}
		if when.IsZero() {
			return
		}
		p.at = when
		if when.After(now) {
			p.at = now
		}
		if late >= 0 {
			l := p.late[late]
			p.late = append(p.late[:late:late], p.late[late+1:]...)
			p.s.step.tracef("provider: late request for %s lands", l.req.TopUpID)
			if _, err := p.land(l.req); err != nil {
				p.s.step.tracef("provider: late request for %s refused: %v", l.req.TopUpID, err)
			}
			continue
		}
		charge.Status, charge.DeclineCode = charge.decideTo, charge.decideCode
		p.s.step.tracef("provider: decided %s for %s: %s", charge.ID, charge.TopUpID, charge.Status)
		p.changed(charge)
	}
}

// succeededFor returns the succeeded charges of each top-up.
func (p *provider) succeededFor() map[string][]*stripeCharge {
	out := map[string][]*stripeCharge{}
	for _, c := range p.charges {
		if c.Status == payment.Succeeded {
			out[c.TopUpID] = append(out[c.TopUpID], c)
		}
	}
	return out
}
