package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
)

// This file is what the API shares with the console (internal/web): the
// console's forms go through these same functions as the API's routes, so a
// manual top-up, a settings save, a card removal, a threshold, a budget or a
// webhook endpoint means one thing whichever door it came through.

// LoginLinks mints one-time console sign-in links (*web.Links).
type LoginLinks interface {
	NewLoginLink(ctx context.Context, accountID string) (link string, expiresAt time.Time, err error)
}

func (s *Server) createLoginLink(w http.ResponseWriter, r *http.Request) {
	if s.logins == nil {
		s.fail(w, r, apperr.NotFoundf("the console is not served here"))
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := acct.May(ledger.ActLoginLink); err != nil {
		s.fail(w, r, err)
		return
	}
	link, expires, err := s.logins.NewLoginLink(r.Context(), acct.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, loginLinkJSON{URL: link, ExpiresAt: formatTime(expires)})
}

// loginLinkJSON is a console sign-in link on the wire.
type loginLinkJSON struct {
	URL       string `json:"url"`
	ExpiresAt string `json:"expires_at"`
}

// ActionURL returns the page where the customer completes t's 3-D Secure
// challenge (the console's when one is served), or "" when t waits for
// nothing. The token in it is the only credential the page asks for.
func (s *Server) ActionURL(t topup.TopUp) string {
	if t.Status != topup.RequiresAction || t.ActionToken == "" {
		return ""
	}
	base := s.cfg.PublicURL + "/pay/"
	if s.cfg.ConsoleURL != "" {
		base = s.cfg.ConsoleURL + "/pay/"
	}
	return base + url.PathEscape(t.ID) + "?token=" + url.QueryEscape(t.ActionToken)
}

// Customer returns the account's provider customer, creating it once.
func (s *Server) Customer(ctx context.Context, acct ledger.Account) (string, error) {
	return s.customer(ctx, acct)
}

// ManualTopUp validates and charges a manual top-up (POST …/top_ups): the
// amount in whole minor units between the minimum charge and the operator's
// maximum, the given card or the default. It waits up to 10 seconds for the
// provider; a decline is a Failed top-up, not an error. replay is true when
// key was used before, and the first top-up is returned; a first request
// still charging gives request_in_progress.
func (s *Server) ManualTopUp(ctx context.Context, acct ledger.Account, amount money.Amount, card, key string) (t topup.TopUp, replay bool, err error) {
	if err := s.checkTopUpAmount(acct, amount); err != nil {
		return t, false, err
	}
	hash := ledger.HashKey(amount.Format(money.Currency{Minor: 6}) + "|" + card)
	t, replay, err = s.billing.CreateManual(ctx, acct.ID, amount, card, key, hash, 2*manualWait)
	if err != nil {
		return t, replay, err
	}
	if !replay {
		return s.attemptNow(t), false, nil
	}
	if (t.Status == topup.Pending || t.Status == topup.Processing) && s.clock.Now().Sub(t.CreatedAt) < manualWait {
		// The first request is still waiting for the provider.
		return t, true, apperr.New(apperr.RequestInProgress, "a request with this idempotency_key is still being processed")
	}
	return t, true, nil
}

// checkTopUpAmount refuses a manual top-up amount that is not whole minor
// units between the minimum charge and the operator's maximum.
func (s *Server) checkTopUpAmount(acct ledger.Account, amount money.Amount) error {
	c := acct.Currency
	switch {
	case amount <= 0:
		return apperr.Invalidf("amount", "must be greater than zero")
	case !amount.IsWholeMinor(c):
		return apperr.Invalidf("amount", "must be a whole number of %s minor units", c.Code)
	case amount < c.MinCharge:
		return apperr.Invalidf("amount", "must be at least the minimum charge, %s", c.MinCharge.Format(c))
	case amount > s.cfg.MaxTarget:
		return apperr.Invalidf("amount", "must be at most %s", s.cfg.MaxTarget.Format(c))
	}
	return nil
}

// SaveSettings validates and saves Automatic Top-Up settings (PUT
// …/auto_top_up) and wakes the engine when the save made a top-up due at
// once. A refusal names its field and saves nothing.
func (s *Server) SaveSettings(ctx context.Context, accountID, actor string, in topup.Input) (topup.Settings, *topup.TopUp, error) {
	st, created, err := s.billing.SaveSettings(ctx, accountID, actor, in, s.cfg.MaxTarget)
	if err == nil && created != nil && s.engine != nil {
		s.engine.Kick()
	}
	return st, created, err
}

// MaxTarget is TOPUP_MAX_TARGET, for validating settings before a save.
func (s *Server) MaxTarget() money.Amount { return s.cfg.MaxTarget }

// RemoveCard detaches a card (DELETE …/payment_methods/{pm}); disabled is
// true when Automatic Top-Up used it and was switched off.
func (s *Server) RemoveCard(ctx context.Context, accountID, cardID string) (disabled bool, err error) {
	disabled, err = s.billing.RemoveCard(ctx, accountID, cardID)
	if err != nil {
		return false, err
	}
	if err := s.provider.DetachPaymentMethod(ctx, cardID); err != nil && !errors.Is(err, payment.ErrNotFound) {
		// The card is gone from Topup, which never charges it again; the
		// provider keeping it is harmless and logged.
		s.log.Warn("detach payment method", "payment_method", cardID, "err", err)
	}
	return disabled, nil
}

// CompleteCardSetup records the card a hosted setup session saved (the
// return URL of POST …/payment_methods/setup, and the console's): the
// provider refuses a session of another customer or one not completed
// (Invalid on session_id); a session already used, or a card removed since,
// is a Conflict and adds nothing; a closed account refuses (AccountClosed).
func (s *Server) CompleteCardSetup(ctx context.Context, acct ledger.Account, sessionID string) (topup.Card, error) {
	if sessionID == "" {
		return topup.Card{}, apperr.Invalidf("session_id", "is required")
	}
	if err := acct.May(ledger.ActAddCard); err != nil {
		return topup.Card{}, err
	}
	cust, err := s.billing.CustomerID(ctx, acct.ID)
	if err != nil {
		return topup.Card{}, err
	}
	used, err := s.billing.SetupSessionUsed(ctx, sessionID)
	if err != nil {
		return topup.Card{}, err
	}
	if used {
		// Said before the provider is asked: its card may have been
		// removed (and detached) since, and this is the clearer answer.
		return topup.Card{}, errSetupUsed
	}
	card, err := s.provider.CompleteSetup(ctx, cust, sessionID)
	if err != nil || cust == "" {
		return topup.Card{}, apperr.Invalidf("session_id", "the card setup is not complete: %v", err)
	}
	return s.billing.AddSetupCard(ctx, acct.ID, sessionID, card)
}

// errSetupUsed answers a hosted setup session's return URL used before.
var errSetupUsed = &apperr.Error{Code: apperr.Conflict, Field: "session_id",
	Message: "this card setup was already completed; start a new one to add another card"}

// ActionTopUp returns the top-up behind an action page when token opens
// it (NotFound otherwise). With Stripe, a top-up still waiting is first
// brought up to date with the charge: the page reloads after Stripe.js.
func (s *Server) ActionTopUp(ctx context.Context, id, token string) (topup.TopUp, error) {
	t, err := s.billing.TopUpByID(ctx, id)
	if err != nil || t.ActionToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(t.ActionToken)) != 1 {
		return topup.TopUp{}, apperr.NotFoundf("no such payment")
	}
	if t.Status == topup.RequiresAction && s.sandbox == nil && t.ChargeID != "" {
		if ch, err := s.provider.GetCharge(ctx, t.ChargeID); err == nil {
			if o, ok := topup.ChargeOutcome(ch); ok {
				if res, err := s.billing.Settle(ctx, t.ID, o, s.engine.RetryBackoff()); err == nil {
					t = res.TopUp
				}
			}
		}
	}
	return t, nil
}

// AnswerChallenge gives the sandbox's simulated 3-D Secure challenge the
// customer's answer and settles the top-up with the outcome. Answering a
// top-up that no longer waits changes nothing.
func (s *Server) AnswerChallenge(ctx context.Context, t topup.TopUp, ok bool) (topup.TopUp, error) {
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
		res, err := s.billing.Settle(ctx, t.ID, o, s.engine.RetryBackoff())
		if err != nil {
			return t, err
		}
		return res.TopUp, nil
	}
	return t, nil
}

// Payments says how the action page authenticates: the sandbox's simulated
// challenge, or Stripe.js with this publishable key.
func (s *Server) Payments() (sandbox bool, publishableKey string) {
	return s.sandbox != nil, s.cfg.StripePublishableKey
}

// alertStore returns the storage of alerts, budgets and endpoints, or
// NotFound when this server keeps none.
func (s *Server) alertStore() (Alerts, error) {
	if s.alerts == nil {
		return nil, apperr.NotFoundf("alerts and budgets are not served here")
	}
	return s.alerts, nil
}

// SetLowBalanceAlerts replaces an account's low balance alert thresholds
// (PUT …/low_balance_alerts). A refusal names "thresholds[i]", the element
// at fault in the order given, or "thresholds" for too many; nothing is
// saved then.
func (s *Server) SetLowBalanceAlerts(ctx context.Context, accountID string, thresholds []money.Amount) ([]alert.Threshold, error) {
	a, err := s.alertStore()
	if err != nil {
		return nil, err
	}
	return a.SetLowBalanceAlerts(ctx, accountID, thresholds)
}

// CreateBudget validates and saves a new budget (POST …/budgets): a second
// budget for one subject, or a second without subject, is a Conflict.
func (s *Server) CreateBudget(ctx context.Context, accountID string, in alert.BudgetInput) (alert.Budget, error) {
	a, err := s.alertStore()
	if err != nil {
		return alert.Budget{}, err
	}
	return a.CreateBudget(ctx, accountID, in)
}

// UpdateBudget changes a budget's limit and keeps what was spent (PUT
// …/budgets/{budget_id}).
func (s *Server) UpdateBudget(ctx context.Context, accountID, id string, in alert.BudgetInput) (alert.Budget, error) {
	a, err := s.alertStore()
	if err != nil {
		return alert.Budget{}, err
	}
	return a.UpdateBudget(ctx, accountID, id, in)
}

// DeleteBudget removes a budget (DELETE …/budgets/{budget_id}).
func (s *Server) DeleteBudget(ctx context.Context, accountID, id string) error {
	a, err := s.alertStore()
	if err != nil {
		return err
	}
	return a.DeleteBudget(ctx, accountID, id)
}

// CreateEndpoint registers a webhook endpoint (POST …/webhook_endpoints):
// the URL is checked by notify.CheckURL under TOPUP_WEBHOOKS_ALLOW_PRIVATE
// (refusals name "url") and the endpoint gets a new signing secret, which
// only this answer carries whole.
func (s *Server) CreateEndpoint(ctx context.Context, accountID, rawURL string) (notify.Endpoint, error) {
	a, err := s.alertStore()
	if err != nil {
		return notify.Endpoint{}, err
	}
	if rawURL == "" {
		return notify.Endpoint{}, apperr.Invalidf("url", "is required: the https URL that receives the events")
	}
	u, err := notify.CheckURL(ctx, rawURL, s.cfg.WebhooksAllowPrivate, nil)
	if err != nil {
		return notify.Endpoint{}, err
	}
	return a.CreateEndpoint(ctx, accountID, u)
}

// DeleteEndpoint removes a webhook endpoint and what was still to be sent
// to it (DELETE …/webhook_endpoints/{endpoint_id}).
func (s *Server) DeleteEndpoint(ctx context.Context, accountID, id string) error {
	a, err := s.alertStore()
	if err != nil {
		return err
	}
	return a.DeleteEndpoint(ctx, accountID, id)
}
