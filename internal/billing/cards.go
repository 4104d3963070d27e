package billing

import (
	"context"
	"errors"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
)

// Customer returns the account's provider customer, creating it once
// (two racing requests keep the first). It refuses nothing itself; a
// provider failure is returned as it is.
func (s *Service) Customer(ctx context.Context, acct ledger.Account) (string, error) {
	c, err := s.store.CustomerID(ctx, acct.ID)
	if err != nil || c != "" {
		return c, err
	}
	c, err = s.provider.EnsureCustomer(ctx, "", acct.ID, acct.Email)
	if err != nil {
		return "", err
	}
	return s.store.SetCustomerID(ctx, acct.ID, c)
}

// AttachCard attaches a payment method token (POST …/payment_methods) to
// the account's customer and saves it. Refusals: AccountClosed; Invalid
// on "payment_method" when the provider refuses the card; LimitExceeded
// or Conflict from the store, after which the provider keeps no card that
// Topup does not list.
func (s *Service) AttachCard(ctx context.Context, acct ledger.Account, pm string) (topup.Card, error) {
	if err := acct.May(ledger.ActAddCard); err != nil {
		return topup.Card{}, err
	}
	cust, err := s.Customer(ctx, acct)
	if err != nil {
		return topup.Card{}, err
	}
	card, err := s.provider.AttachPaymentMethod(ctx, cust, pm)
	if errors.Is(err, payment.ErrCardRefused) {
		return topup.Card{}, apperr.Invalidf("payment_method", "%v", err)
	}
	if err != nil {
		return topup.Card{}, err
	}
	saved, err := s.store.AddCard(ctx, acct.ID, card)
	if err != nil {
		// Refused (closed since, or at the limit): the provider keeps no
		// card that Topup does not list.
		if derr := s.provider.DetachPaymentMethod(ctx, card.ID); derr != nil {
			s.log.Warn("detach a refused payment method", "payment_method", card.ID, "err", derr)
		}
		return topup.Card{}, err
	}
	return saved, nil
}

// StartCardSetup returns the provider's hosted card page (Stripe Checkout
// in setup mode, or the sandbox's), which sends the browser back to
// returnURL with the session id, or to cancelURL. AccountClosed refuses.
func (s *Service) StartCardSetup(ctx context.Context, acct ledger.Account, returnURL, cancelURL string) (string, error) {
	if err := acct.May(ledger.ActAddCard); err != nil {
		return "", err
	}
	cust, err := s.Customer(ctx, acct)
	if err != nil {
		return "", err
	}
	return s.provider.SetupURL(ctx, cust, acct.ID, returnURL, cancelURL)
}

// CompleteCardSetup records the card a hosted setup session saved (the
// return URL of the API's and the console's setup): the provider refuses
// a session of another customer or one not completed (Invalid on
// session_id, also when it is empty); a session already used, or a card
// removed since, is a Conflict and adds nothing; a closed account refuses
// (AccountClosed); LimitExceeded at the account's card limit.
func (s *Service) CompleteCardSetup(ctx context.Context, acct ledger.Account, sessionID string) (topup.Card, error) {
	if sessionID == "" {
		return topup.Card{}, apperr.Invalidf("session_id", "is required")
	}
	if err := acct.May(ledger.ActAddCard); err != nil {
		return topup.Card{}, err
	}
	cust, err := s.store.CustomerID(ctx, acct.ID)
	if err != nil {
		return topup.Card{}, err
	}
	used, err := s.store.SetupSessionUsed(ctx, sessionID)
	if err != nil {
		return topup.Card{}, err
	}
	if used {
		// Said before the provider is asked: its card may have been
		// removed (and detached) since, and this is the clearer answer.
		return topup.Card{}, errSetupUsed()
	}
	card, err := s.provider.CompleteSetup(ctx, cust, sessionID)
	if err != nil || cust == "" {
		return topup.Card{}, apperr.Invalidf("session_id", "the card setup is not complete: %v", err)
	}
	return s.store.AddSetupCard(ctx, acct.ID, sessionID, card)
}

// errSetupUsed answers a hosted setup session's return URL used before.
func errSetupUsed() error {
	return &apperr.Error{Code: apperr.Conflict, Field: "session_id",
		Message: "this card setup was already completed; start a new one to add another card"}
}

// RemoveCard detaches a card (DELETE …/payment_methods/{pm}, the console's
// Remove); disabled is true when Automatic Top-Up used it and was switched
// off. NotFound for a card the account does not hold; a closed account may
// still remove cards. The provider keeping the card is logged, not
// refused: Topup never charges it again.
func (s *Service) RemoveCard(ctx context.Context, accountID, cardID string) (disabled bool, err error) {
	disabled, err = s.store.RemoveCard(ctx, accountID, cardID)
	if err != nil {
		return false, err
	}
	if err := s.provider.DetachPaymentMethod(ctx, cardID); err != nil && !errors.Is(err, payment.ErrNotFound) {
		s.log.Warn("detach payment method", "payment_method", cardID, "err", err)
	}
	return disabled, nil
}

// SaveSettings validates and saves Automatic Top-Up settings (PUT
// …/auto_top_up, the console's dialog) under TOPUP_MAX_TARGET and wakes the
// engine when the save made a top-up due at once (created). A refusal
// names its field (Invalid) and saves nothing; AccountClosed for a closed
// account; NotFound for an unknown one.
func (s *Service) SaveSettings(ctx context.Context, accountID, actor string, in topup.Input) (topup.Settings, *topup.TopUp, error) {
	st, created, err := s.store.SaveSettings(ctx, accountID, actor, in, s.cfg.MaxTarget)
	if err == nil && created != nil && s.engine != nil {
		s.engine.Kick()
	}
	return st, created, err
}
