// Package topuptest helps test Automatic Top-Up: a scriptable fake of the
// payment provider that remembers charges by idempotency key as Stripe does,
// and a fresh store (SQLite and PostgreSQL) per test with a manual clock,
// the sandbox, and helpers that speak in the product's units.
package topuptest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/payment"
)

// Step is what one Charge call of the Fake does. The zero Step makes a
// charge that succeeds.
type Step struct {
	// Status is the outcome of a new charge: Succeeded when empty.
	Status payment.ChargeStatus
	// DeclineCode goes with Status Declined (or RequiresAction off-session:
	// authentication_required).
	DeclineCode string
	// Lost makes (or replays) the charge and then loses the answer: the
	// caller gets an error wrapping payment.ErrUnknownOutcome, as after a
	// timeout or a 5xx once Stripe has charged.
	Lost bool
	// FailBefore answers with this error before anything is charged.
	FailBefore error
	// During runs while the call is in flight, after the charge is recorded
	// (if one is) and before the answer: heavy usage during a charge, a card
	// removed…
	During func()
}

// Succeed is a charge that succeeds.
func Succeed() Step { return Step{Status: payment.Succeeded} }

// Decline is a charge declined with code.
func Decline(code string) Step { return Step{Status: payment.Declined, DeclineCode: code} }

// RequireAction is a charge the bank wants the customer present for.
func RequireAction() Step { return Step{Status: payment.RequiresAction} }

// Pending is a charge the provider has not decided yet (processing); the
// test decides it later with SetStatus.
func Pending() Step { return Step{Status: payment.Processing} }

// LoseResponse is a charge that succeeds but whose answer never arrives.
func LoseResponse() Step { return Step{Status: payment.Succeeded, Lost: true} }

// FailBeforeCharge is a call that fails before the provider charged, in a
// way the caller cannot tell from a lost answer (a 503, a timeout before the
// request reached the provider): an error wrapping payment.ErrUnknownOutcome
// with no charge made.
func FailBeforeCharge() Step {
	return Step{FailBefore: fmt.Errorf("%w: 503 Service Unavailable", payment.ErrUnknownOutcome)}
}

// Refuse is a request the provider refuses outright, charging nothing (an
// invalid request, a payment method detached): a plain error.
func Refuse() Step {
	return Step{FailBefore: errors.New("fake: 400 invalid_request_error: the PaymentMethod was detached")}
}

// FakeCharge is the Fake's record of one charge.
type FakeCharge struct {
	payment.Charge
	IdempotencyKey string
	Customer       string
	PaymentMethod  string
	OffSession     bool
}

// Fake is a payment.Provider whose Charge answers follow a script, one Step
// per call (a charge that succeeds when the script is used up). Like Stripe
// it keeps charges by idempotency key: a replayed key returns the first
// charge as it now stands and charges nothing, for ever, or for 24 hours
// after ForgetKeys(true). It is safe for concurrent use.
type Fake struct {
	clock clock.Clock

	mu       sync.Mutex
	script   []Step
	seq      int
	forget   bool
	keys     map[string]*FakeCharge // idempotency key → charge
	charges  []*FakeCharge          // in creation order
	requests []payment.ChargeRequest
	finds    int
	gets     int
	detached []string
	misuse   []string
}

var _ payment.Provider = (*Fake)(nil)

// NewFake returns a fake provider telling time by c.
func NewFake(c clock.Clock) *Fake {
	return &Fake{clock: c, keys: map[string]*FakeCharge{}}
}

// Script appends steps, each answering one later Charge call.
func (f *Fake) Script(steps ...Step) {
	f.mu.Lock()
	f.script = append(f.script, steps...)
	f.mu.Unlock()
}

// ForgetKeys makes the fake forget idempotency keys 24 hours after their
// first use, as Stripe does: a key replayed later makes a new charge.
func (f *Fake) ForgetKeys(on bool) {
	f.mu.Lock()
	f.forget = on
	f.mu.Unlock()
}

// Name is "fake".
func (f *Fake) Name() string { return "fake" }

// EnsureCustomer returns customerID, or a new customer for the account.
func (f *Fake) EnsureCustomer(_ context.Context, customerID, accountID, _ string) (string, error) {
	if customerID != "" {
		return customerID, nil
	}
	return "cus_fake_" + accountID, nil
}

// AttachPaymentMethod saves any token under a new pm_fake_… id.
func (f *Fake) AttachPaymentMethod(_ context.Context, customerID, token string) (payment.Card, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return payment.Card{ID: fmt.Sprintf("pm_fake_%d", f.seq), Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030}, nil
}

// DetachPaymentMethod records the detachment.
func (f *Fake) DetachPaymentMethod(_ context.Context, id string) error {
	f.mu.Lock()
	f.detached = append(f.detached, id)
	f.mu.Unlock()
	return nil
}

// SetupURL is a page nobody visits.
func (f *Fake) SetupURL(_ context.Context, _, accountID, _, _ string) (string, error) {
	return "https://fake.invalid/setup/" + accountID, nil
}

// CompleteSetup knows no session.
func (f *Fake) CompleteSetup(_ context.Context, _, id string) (payment.Card, error) {
	return payment.Card{}, fmt.Errorf("fake: setup session %s: %w", id, payment.ErrNotFound)
}

// Charge answers with the next step of the script.
func (f *Fake) Charge(_ context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	step := Succeed()
	if len(f.script) > 0 {
		step, f.script = f.script[0], f.script[1:]
	}
	if step.FailBefore != nil {
		f.mu.Unlock()
		if step.During != nil {
			step.During()
		}
		return payment.Charge{}, fmt.Errorf("fake: charge top-up %s: %w", req.TopUpID, step.FailBefore)
	}
	c, ok := f.keys[req.IdempotencyKey]
	if ok && f.forget && !f.clock.Now().Before(c.Created.Add(24*time.Hour)) {
		ok = false
	}
	if ok && (c.Amount != req.Amount || c.Currency != strings.ToLower(req.Currency) || c.Customer != req.Customer || c.PaymentMethod != req.PaymentMethod) {
		// Stripe answers 400 to a key reused with other parameters.
		f.misuse = append(f.misuse, req.IdempotencyKey)
		f.mu.Unlock()
		return payment.Charge{}, fmt.Errorf("fake: idempotency key %s reused with other parameters", req.IdempotencyKey)
	}
	if !ok {
		f.seq++
		c = &FakeCharge{
			Charge: payment.Charge{ID: fmt.Sprintf("pi_fake_%d", f.seq), TopUpID: req.TopUpID, Status: step.Status,
				Amount: req.Amount, Currency: strings.ToLower(req.Currency), DeclineCode: step.DeclineCode, Created: f.clock.Now()},
			IdempotencyKey: req.IdempotencyKey, Customer: req.Customer, PaymentMethod: req.PaymentMethod, OffSession: req.OffSession,
		}
		if c.Status == "" {
			c.Status = payment.Succeeded
		}
		if c.Status == payment.RequiresAction {
			c.ClientSecret = c.ID + "_secret_fake"
			if req.OffSession && c.DeclineCode == "" {
				c.DeclineCode = "authentication_required"
			}
		}
		f.keys[req.IdempotencyKey] = c
		f.charges = append(f.charges, c)
	}
	out := c.Charge
	f.mu.Unlock()
	if step.During != nil {
		step.During()
	}
	if step.Lost {
		return payment.Charge{}, fmt.Errorf("fake: charge top-up %s: %w: context deadline exceeded", req.TopUpID, payment.ErrUnknownOutcome)
	}
	return out, nil
}

// GetCharge returns a charge as it now stands.
func (f *Fake) GetCharge(_ context.Context, id string) (payment.Charge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	for _, c := range f.charges {
		if c.ID == id {
			return c.Charge, nil
		}
	}
	return payment.Charge{}, fmt.Errorf("fake: charge %s: %w", id, payment.ErrNotFound)
}

// CancelCharge cancels a charge still waiting for the customer (declined,
// code "canceled"); any other charge is returned as it stands.
func (f *Fake) CancelCharge(_ context.Context, id string) (payment.Charge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.charges {
		if c.ID == id {
			if c.Status == payment.RequiresAction {
				c.Status, c.DeclineCode, c.ClientSecret = payment.Declined, "canceled", ""
			}
			return c.Charge, nil
		}
	}
	return payment.Charge{}, fmt.Errorf("fake: charge %s: %w", id, payment.ErrNotFound)
}

// FindCharge returns the newest charge whose metadata names topUpID.
func (f *Fake) FindCharge(_ context.Context, customerID, topUpID string) (payment.Charge, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finds++
	for i := len(f.charges) - 1; i >= 0; i-- {
		c := f.charges[i]
		if c.TopUpID == topUpID && (customerID == "" || c.Customer == customerID) {
			return c.Charge, true, nil
		}
	}
	return payment.Charge{}, false, nil
}

// SetStatus decides a charge later, as the provider does for a processing
// charge or after the customer's 3-D Secure answer, and returns it.
func (f *Fake) SetStatus(id string, s payment.ChargeStatus, declineCode string) payment.Charge {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.charges {
		if c.ID == id {
			c.Status, c.DeclineCode = s, declineCode
			if s != payment.RequiresAction {
				c.ClientSecret = ""
			}
			return c.Charge
		}
	}
	panic("topuptest: SetStatus of unknown charge " + id)
}

// Charges returns every distinct charge made, oldest first.
func (f *Fake) Charges() []FakeCharge {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FakeCharge, len(f.charges))
	for i, c := range f.charges {
		out[i] = *c
	}
	return out
}

// Requests returns every Charge request received, replays included.
func (f *Fake) Requests() []payment.ChargeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]payment.ChargeRequest(nil), f.requests...)
}

// Finds counts FindCharge calls.
func (f *Fake) Finds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finds
}

// Gets counts GetCharge calls.
func (f *Fake) Gets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

// Misuses lists keys that were replayed with other parameters (Stripe's
// 400): a caller that changed the amount of a retry.
func (f *Fake) Misuses() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.misuse...)
}
