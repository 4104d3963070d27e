package billing

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// ManualWait is how long a manual top-up waits for the provider before it
// answers processing; the worker finishes it and the client polls. The
// top-up is made claimed by its request for the engine's lease, renewed
// while the request charges it, so that the worker leaves it alone
// meanwhile and another replica resumes it soon after the request's
// replica dies.
const ManualWait = 10 * time.Second

// ManualHash is the idempotency hash of a manual top-up request: its amount
// and the card it names (or "" for the default). A key replayed with
// another amount or card is a conflict; with the same, a replay.
func ManualHash(amount money.Amount, card string) string {
	return ledger.HashKey(amount.Format(money.Currency{Minor: 6}) + "|" + card)
}

// checkTopUpAmount refuses (Invalid on "amount") a manual top-up amount
// that is not whole minor units between the minimum charge and maxTarget.
func checkTopUpAmount(c money.Currency, amount, maxTarget money.Amount) error {
	switch {
	case amount <= 0:
		return apperr.Invalidf("amount", "must be greater than zero")
	case !amount.IsWholeMinor(c):
		return apperr.Invalidf("amount", "must be a whole number of %s minor units", c.Code)
	case amount < c.MinCharge:
		return apperr.Invalidf("amount", "must be at least the minimum charge, %s", c.MinCharge.Format(c))
	case amount > maxTarget:
		return apperr.Invalidf("amount", "must be at most %s", maxTarget.Format(c))
	}
	return nil
}

// RecordManualTopUp checks a manual top-up and records it under key,
// leased to the caller, who charges it (engine.Attempt) at once; it charges
// nothing itself. replay is true when key was used before, and the first
// top-up is returned. Refusals: Invalid on "amount" (checkTopUpAmount) or
// "payment_method" (no such card, no card at all), IdempotencyConflict
// for key used with another amount or card, AccountClosed, NotFound for
// an unknown account. The simulator records through this, with crashes
// between recording and charging.
func (s *Service) RecordManualTopUp(ctx context.Context, acct ledger.Account, amount money.Amount, card, key string) (topup.TopUp, bool, error) {
	if err := checkTopUpAmount(acct.Currency, amount, s.cfg.MaxTarget); err != nil {
		return topup.TopUp{}, false, err
	}
	lease := 2 * ManualWait // the simulator, without an engine here, charges at once
	if s.engine != nil {
		lease = s.engine.Lease()
	}
	return s.store.CreateManual(ctx, acct.ID, amount, card, key, ManualHash(amount, card), lease)
}

// ManualTopUp is POST …/top_ups and the console's Add credit: it records
// the top-up (RecordManualTopUp, with its refusals) and charges it, waiting
// up to ManualWait for the provider; a decline is a Failed top-up, not an
// error, and past the wait the top-up is returned Processing. A replay
// returns the first top-up, or RequestInProgress while the first request
// is still waiting for the provider. It needs Deps.Engine.
func (s *Service) ManualTopUp(ctx context.Context, acct ledger.Account, amount money.Amount, card, key string) (t topup.TopUp, replay bool, err error) {
	t, replay, err = s.RecordManualTopUp(ctx, acct, amount, card, key)
	if err != nil {
		return t, replay, err
	}
	if !replay {
		return s.attemptNow(t), false, nil
	}
	if (t.Status == topup.Pending || t.Status == topup.Processing) && s.clock.Now().Sub(t.CreatedAt) < ManualWait {
		// The first request is still waiting for the provider.
		return t, true, apperr.New(apperr.RequestInProgress, "a request with this idempotency_key is still being processed")
	}
	return t, true, nil
}

// attemptNow charges a new manual top-up and waits up to ManualWait for the
// outcome; past that the worker finishes it and the client polls.
func (s *Service) attemptNow(t topup.TopUp) topup.TopUp {
	done := make(chan topup.Settled, 1)
	go func() {
		res, err := s.engine.Attempt(context.Background(), t.ID)
		if err != nil {
			s.log.Error("manual top-up", "top_up_id", t.ID, "err", err)
		}
		done <- res
	}()
	select {
	case res := <-done:
		if res.TopUp.ID != "" {
			return res.TopUp
		}
	case <-time.After(ManualWait):
	}
	t.Status = topup.Processing
	return t
}

// ActionTopUp returns the top-up behind an action page when token opens
// it, and NotFound otherwise (an unknown id and a wrong token look the
// same). With Stripe, a top-up still waiting is first brought up to date
// with the charge: the page reloads after Stripe.js.
func (s *Service) ActionTopUp(ctx context.Context, id, token string) (topup.TopUp, error) {
	t, err := s.store.TopUpByID(ctx, id)
	if err != nil || t.ActionToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(t.ActionToken)) != 1 {
		return topup.TopUp{}, apperr.NotFoundf("no such payment")
	}
	if t.Status == topup.RequiresAction && s.sandbox == nil && t.ChargeID != "" {
		if ch, err := s.provider.GetCharge(ctx, t.ChargeID); err == nil {
			if o, ok := topup.ChargeOutcome(ch); ok {
				if res, err := s.store.Settle(ctx, t.ID, o, s.engine.RetryBackoff()); err == nil {
					t = res.TopUp
				}
			}
		}
	}
	return t, nil
}

// AnswerChallenge gives the sandbox's simulated 3-D Secure challenge the
// customer's answer and settles the top-up with the outcome. Answering a
// top-up that no longer waits changes nothing. NotFound when the sandbox
// is off (Stripe authenticates on its own page).
func (s *Service) AnswerChallenge(ctx context.Context, t topup.TopUp, ok bool) (topup.TopUp, error) {
	if s.sandbox == nil {
		return t, apperr.NotFoundf("the sandbox is off")
	}
	if t.Status != topup.RequiresAction {
		return t, nil
	}
	ch, err := s.sandbox.Authenticate(ctx, t.ChargeID, ok)
	if err != nil {
		return t, err
	}
	if o, known := topup.ChargeOutcome(ch); known {
		res, err := s.store.Settle(ctx, t.ID, o, s.engine.RetryBackoff())
		if err != nil {
			return t, err
		}
		return res.TopUp, nil
	}
	return t, nil
}
