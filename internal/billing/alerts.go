package billing

import (
	"context"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
)

// SetLowBalanceAlerts replaces an account's low balance alert thresholds
// (PUT …/low_balance_alerts, the console's form). A refusal is Invalid
// naming "thresholds[i]", the element at fault in the order given, or
// "thresholds" for too many; nothing is saved then. AccountClosed for a
// closed account; NotFound when no alerts are kept here.
func (s *Service) SetLowBalanceAlerts(ctx context.Context, accountID string, thresholds []money.Amount) ([]alert.Threshold, error) {
	a, err := s.alertStore()
	if err != nil {
		return nil, err
	}
	return a.SetLowBalanceAlerts(ctx, accountID, thresholds)
}

// CreateBudget validates and saves a new budget (POST …/budgets): Invalid
// naming the field, Conflict for a second budget of one subject (or a
// second without subject), LimitExceeded past the account's limit,
// AccountClosed.
func (s *Service) CreateBudget(ctx context.Context, accountID string, in alert.BudgetInput) (alert.Budget, error) {
	a, err := s.alertStore()
	if err != nil {
		return alert.Budget{}, err
	}
	return a.CreateBudget(ctx, accountID, in)
}

// UpdateBudget changes a budget's limit and keeps what was spent (PUT
// …/budgets/{budget_id}): NotFound for another account's budget, Invalid
// naming the field, AccountClosed.
func (s *Service) UpdateBudget(ctx context.Context, accountID, id string, in alert.BudgetInput) (alert.Budget, error) {
	a, err := s.alertStore()
	if err != nil {
		return alert.Budget{}, err
	}
	return a.UpdateBudget(ctx, accountID, id, in)
}

// DeleteBudget removes a budget (DELETE …/budgets/{budget_id}); NotFound
// for another account's budget. A closed account may still remove them.
func (s *Service) DeleteBudget(ctx context.Context, accountID, id string) error {
	a, err := s.alertStore()
	if err != nil {
		return err
	}
	return a.DeleteBudget(ctx, accountID, id)
}

// CreateEndpoint registers a webhook endpoint (POST …/webhook_endpoints):
// the URL is required and checked by notify.CheckURL under
// TOPUP_WEBHOOKS_ALLOW_PRIVATE (Invalid naming "url"), and the endpoint
// gets a new signing secret, which only this answer carries whole.
// LimitExceeded past the account's limit, AccountClosed.
func (s *Service) CreateEndpoint(ctx context.Context, accountID, rawURL string) (notify.Endpoint, error) {
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
// to it (DELETE …/webhook_endpoints/{endpoint_id}); NotFound for another
// account's endpoint.
func (s *Service) DeleteEndpoint(ctx context.Context, accountID, id string) error {
	a, err := s.alertStore()
	if err != nil {
		return err
	}
	return a.DeleteEndpoint(ctx, accountID, id)
}
