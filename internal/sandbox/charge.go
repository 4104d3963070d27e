package sandbox

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/topup/topup/internal/payment"
)

// Charge creates and confirms a charge on a saved card, as a PaymentIntent
// created with confirm=true. What happens follows the card's test token: a
// success, a decline with the token's decline code (an outcome, not an
// error, as with Stripe), or requires_action with a client secret for a card
// that needs 3-D Secure (declined authentication_required when off-session).
//
// The same IdempotencyKey returns the charge it made, as it now stands,
// for KeyTTL; reusing a key with another amount, currency, customer or
// payment method is an error wrapping ErrKeyReused, as Stripe answers 400.
// The charge is recorded before the Latency wait, so a context that ends
// during the wait gives an error wrapping payment.ErrUnknownOutcome for a
// charge that exists. An unknown or detached payment method is a plain
// error (an invalid request: retrying cannot help); a failure of the
// sandbox's own storage wraps ErrUnknownOutcome, like a 5xx from Stripe.
// A Hook's Fault can change all of that, call by call.
func (p *Provider) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	op := "sandbox: charge top-up " + req.TopUpID
	if err := ctx.Err(); err != nil {
		return payment.Charge{}, fmt.Errorf("%s: %w: %w", op, payment.ErrUnknownOutcome, err)
	}
	if err := validate(req); err != nil {
		return payment.Charge{}, fmt.Errorf("%s: %w", op, err)
	}
	forget := p.forgetBefore()
	prev, replay, err := p.store.SandboxChargeForKey(ctx, req.IdempotencyKey, forget)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("%s: %w: %w", op, payment.ErrUnknownOutcome, err)
	}
	f := p.fault(Call{Op: OpCharge, Request: req, Replay: replay})
	if err := f.refused(op); err != nil {
		return payment.Charge{}, err
	}
	if !replay {
		c, err := p.decide(ctx, req, f)
		if err != nil {
			return payment.Charge{}, fmt.Errorf("%s: %w", op, err)
		}
		// From here on the charge is as good as sent: it is recorded even
		// if the caller stops waiting, as Stripe finishes a request whose
		// client went away.
		var inserted bool
		prev, inserted, err = p.store.SandboxInsertCharge(context.WithoutCancel(ctx), c, forget)
		if err != nil {
			return payment.Charge{}, fmt.Errorf("%s: %w: %w", op, payment.ErrUnknownOutcome, err)
		}
		if inserted {
			p.changed(prev)
		}
	}
	if err := sameRequest(prev, req); err != nil {
		return payment.Charge{}, fmt.Errorf("%s: %w", op, err)
	}
	return p.answer(ctx, op, f, p.latency, prev.Payment())
}

// answer ends a call that did its work: the fault's During, the wait, and
// the answer, unless the fault loses it.
func (p *Provider) answer(ctx context.Context, op string, f Fault, wait time.Duration, c payment.Charge) (payment.Charge, error) {
	if err := p.finish(ctx, f, wait); err != nil {
		return payment.Charge{}, fmt.Errorf("%s: %w", op, err)
	}
	return c, nil
}

// finish is the end of any call that did its work: the fault's During, the
// wait, and an error wrapping payment.ErrUnknownOutcome if the caller
// stopped waiting or the fault loses the answer.
func (p *Provider) finish(ctx context.Context, f Fault, wait time.Duration) error {
	if f.During != nil {
		f.During()
	}
	if err := sleep(ctx, wait+max(f.Delay, 0)); err != nil {
		return fmt.Errorf("%w: %w", payment.ErrUnknownOutcome, err)
	}
	if f.Lose {
		return fmt.Errorf("%w: the answer was lost", payment.ErrUnknownOutcome)
	}
	return nil
}

func validate(req payment.ChargeRequest) error {
	switch {
	case req.IdempotencyKey == "":
		return errors.New("an idempotency key is required")
	case req.Amount <= 0:
		return fmt.Errorf("amount %d is not positive", req.Amount)
	case req.Currency == "":
		return errors.New("a currency is required")
	case req.PaymentMethod == "":
		return errors.New("a payment method is required")
	}
	return nil
}

// sameRequest checks that a request whose key made prev asks for the same
// charge (for a new charge, trivially).
func sameRequest(prev Charge, req payment.ChargeRequest) error {
	if prev.Amount != req.Amount || prev.Currency != strings.ToLower(req.Currency) ||
		prev.Customer != req.Customer || prev.PaymentMethod != req.PaymentMethod {
		return fmt.Errorf("%w: %q was used for charge %s (%d %s on %s of %q)",
			ErrKeyReused, req.IdempotencyKey, prev.ID, prev.Amount, prev.Currency, prev.PaymentMethod, prev.Customer)
	}
	return nil
}

// decide builds the charge a new request makes, from its card's test token
// or the fault's Status.
func (p *Provider) decide(ctx context.Context, req payment.ChargeRequest, f Fault) (Charge, error) {
	card, err := p.store.SandboxCard(ctx, req.PaymentMethod)
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return Charge{}, fmt.Errorf("no such payment method: '%s'", req.PaymentMethod)
	case err != nil:
		return Charge{}, fmt.Errorf("%w: %w", payment.ErrUnknownOutcome, err)
	case card.Customer == "":
		return Charge{}, fmt.Errorf("PaymentMethod %s was detached from its Customer and may not be used again", card.ID)
	case card.Customer != req.Customer:
		return Charge{}, fmt.Errorf("PaymentMethod %s does not belong to Customer %q", card.ID, req.Customer)
	}
	tc, ok := lookupTestCard(card.Token)
	if !ok {
		return Charge{}, fmt.Errorf("PaymentMethod %s has unknown test token %q", card.ID, card.Token)
	}
	c := Charge{
		ID:             p.ids.New("pi"),
		IdempotencyKey: req.IdempotencyKey,
		TopUpID:        req.TopUpID,
		Customer:       req.Customer,
		PaymentMethod:  card.ID,
		Amount:         req.Amount,
		Currency:       strings.ToLower(req.Currency),
		Status:         payment.Succeeded,
		OffSession:     req.OffSession,
		CreatedAt:      p.clock.Now(),
	}
	switch {
	case f.Status != "":
		p.outcome(&c, f)
	case tc.authenticate:
		c.Status, c.ClientSecret = payment.RequiresAction, p.clientSecret(c.ID)
		if req.OffSession {
			c.DeclineCode = codeAuthenticationRequired
		}
	case tc.decline != "":
		c.Status, c.DeclineCode = payment.Declined, tc.decline
	}
	return c, nil
}

// clientSecret is "<charge id>_secret_<random>", as Stripe's. The random
// part is a secret of the id generator, so a seeded generator gives the
// same secrets.
func (p *Provider) clientSecret(chargeID string) string {
	return chargeID + "_secret_" + p.ids.Secret("")
}

func (p *Provider) forgetBefore() time.Time {
	if p.keyTTL < 0 {
		return time.Time{}
	}
	return p.clock.Now().Add(-p.keyTTL)
}

// sleep waits d (a charge's Latency, a fault's Delay), cut short when ctx
// ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// GetCharge returns a charge by id; an unknown id gives an error wrapping
// payment.ErrNotFound.
func (p *Provider) GetCharge(ctx context.Context, chargeID string) (payment.Charge, error) {
	op := "sandbox: get charge " + chargeID
	f := p.fault(Call{Op: OpGet, ID: chargeID})
	if err := f.refused(op); err != nil {
		return payment.Charge{}, err
	}
	c, err := p.store.SandboxCharge(ctx, chargeID)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("%s: %w", op, err)
	}
	return p.answer(ctx, op, f, 0, c.Payment())
}

// FindCharge returns the newest charge made for topUpID, of customerID
// unless it is empty; ok is false when there is none. Unlike Stripe's
// search it never lags.
func (p *Provider) FindCharge(ctx context.Context, customerID, topUpID string) (payment.Charge, bool, error) {
	if topUpID == "" {
		return payment.Charge{}, false, errors.New("sandbox: find charge: empty top-up id")
	}
	op := "sandbox: find charge for top-up " + topUpID
	f := p.fault(Call{Op: OpFind, ID: topUpID})
	if err := f.refused(op); err != nil {
		return payment.Charge{}, false, err
	}
	cs, err := p.store.SandboxChargesForTopUp(ctx, customerID, topUpID)
	if err != nil {
		return payment.Charge{}, false, fmt.Errorf("%s: %w", op, err)
	}
	var found payment.Charge
	if len(cs) > 0 {
		found = cs[0].Payment()
	}
	if found, err = p.answer(ctx, op, f, 0, found); err != nil {
		return payment.Charge{}, false, err
	}
	return found, len(cs) > 0, nil
}

// Authenticate settles a requires_action charge the way the customer's
// answer to the simulated 3-D Secure challenge says: ok makes it succeed,
// otherwise it is declined with Stripe's
// payment_intent_authentication_failure. It returns the charge as it then
// is; a charge that is no longer waiting is returned unchanged, so
// answering twice changes nothing. An unknown id wraps payment.ErrNotFound.
func (p *Provider) Authenticate(ctx context.Context, chargeID string, ok bool) (payment.Charge, error) {
	to, code := payment.Succeeded, ""
	if !ok {
		to, code = payment.Declined, codeAuthenticationFailure
	}
	c, err := p.update(ctx, chargeID, payment.RequiresAction, to, code)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("sandbox: authenticate charge %s: %w", chargeID, err)
	}
	return c.Payment(), nil
}

// Decide gives a processing charge its outcome, as Stripe does later for a
// charge it could not decide at once (a Fault's Status Processing), and
// returns the charge as it then is: one no longer processing is returned
// unchanged. An unknown id wraps payment.ErrNotFound.
func (p *Provider) Decide(ctx context.Context, chargeID string, to payment.ChargeStatus, declineCode string) (payment.Charge, error) {
	c, err := p.update(ctx, chargeID, payment.Processing, to, declineCode)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("sandbox: decide charge %s: %w", chargeID, err)
	}
	return c.Payment(), nil
}

// CancelCharge cancels a charge still waiting for 3-D Secure (it becomes
// declined, code "canceled", as Stripe's canceled PaymentIntents read), so
// that a late answer to the challenge charges nothing. Any other charge is
// returned as it is.
func (p *Provider) CancelCharge(ctx context.Context, chargeID string) (payment.Charge, error) {
	op := "sandbox: cancel charge " + chargeID
	f := p.fault(Call{Op: OpCancel, ID: chargeID})
	if err := f.refused(op); err != nil {
		return payment.Charge{}, err
	}
	c, err := p.update(ctx, chargeID, payment.RequiresAction, payment.Declined, "canceled")
	if err != nil {
		return payment.Charge{}, fmt.Errorf("%s: %w", op, err)
	}
	return p.answer(ctx, op, f, 0, c.Payment())
}

// update moves a charge in status from to status to, and tells the hook
// when it did.
func (p *Provider) update(ctx context.Context, id string, from, to payment.ChargeStatus, code string) (Charge, error) {
	if p.hook == nil {
		return p.store.SandboxUpdateCharge(ctx, id, from, to, code)
	}
	before, err := p.store.SandboxCharge(ctx, id)
	if err != nil {
		return Charge{}, err
	}
	c, err := p.store.SandboxUpdateCharge(ctx, id, from, to, code)
	if err == nil && before.Status == from && c.Status == to {
		p.changed(c)
	}
	return c, err
}

// AuthenticateSecret is Authenticate for a browser that holds only the
// charge's client secret, as Stripe.js confirms a PaymentIntent. A secret
// that does not match gives an error wrapping payment.ErrNotFound.
func (p *Provider) AuthenticateSecret(ctx context.Context, clientSecret string, ok bool) (payment.Charge, error) {
	id, _, found := strings.Cut(clientSecret, "_secret_")
	if !found {
		return payment.Charge{}, fmt.Errorf("sandbox: authenticate: %w: malformed client secret", payment.ErrNotFound)
	}
	c, err := p.store.SandboxCharge(ctx, id)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("sandbox: authenticate charge %s: %w", id, err)
	}
	if c.ClientSecret == "" || subtle.ConstantTimeCompare([]byte(c.ClientSecret), []byte(clientSecret)) != 1 {
		return payment.Charge{}, fmt.Errorf("sandbox: authenticate charge %s: %w: wrong client secret", id, payment.ErrNotFound)
	}
	return p.Authenticate(ctx, id, ok)
}

// Charges lists the durable log of every charge the sandbox was asked for,
// newest first, for the admin (GET /v1/sandbox/charges): anyone can check
// there that no top-up was charged twice.
func (p *Provider) Charges(ctx context.Context, limit int, startingAfter string) ([]Charge, bool, error) {
	if limit <= 0 {
		limit = 10
	}
	cs, more, err := p.store.SandboxCharges(ctx, limit, startingAfter)
	if err != nil {
		return nil, false, fmt.Errorf("sandbox: list charges: %w", err)
	}
	return cs, more, nil
}
