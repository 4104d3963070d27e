package app

import (
	"context"

	"github.com/topup/topup/internal/httpapi"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
)

// sandboxPages adapts the sandbox provider to the API's hosted pages and
// charge log.
type sandboxPages struct{ p *sandbox.Provider }

func (s sandboxPages) CardChoices() []httpapi.CardChoice {
	var out []httpapi.CardChoice
	for _, c := range sandbox.CardOptions() {
		out = append(out, httpapi.CardChoice{Token: c.Token, Label: c.Label})
	}
	return out
}

func (s sandboxPages) ChooseCard(ctx context.Context, sessionID, token string) (string, error) {
	return s.p.ChooseCard(ctx, sessionID, token)
}

func (s sandboxPages) Authenticate(ctx context.Context, chargeID string, ok bool) (payment.Charge, error) {
	return s.p.Authenticate(ctx, chargeID, ok)
}

func (s sandboxPages) ChargeLog(ctx context.Context, limit int, startingAfter string) ([]httpapi.SandboxCharge, bool, error) {
	charges, more, err := s.p.Charges(ctx, limit, startingAfter)
	out := make([]httpapi.SandboxCharge, 0, len(charges))
	for _, c := range charges {
		out = append(out, httpapi.SandboxCharge{ID: c.ID, IdempotencyKey: c.IdempotencyKey, TopUpID: c.TopUpID, Amount: c.Amount,
			Currency: c.Currency, Status: string(c.Status), CreatedAt: c.CreatedAt})
	}
	return out, more, err
}

func (s sandboxPages) Dispute(ctx context.Context, chargeID, reason string) (payment.Dispute, error) {
	return s.p.Dispute(ctx, chargeID, reason)
}

func (s sandboxPages) CloseDispute(ctx context.Context, chargeID, outcome string) (payment.Dispute, error) {
	return s.p.CloseDispute(ctx, chargeID, outcome)
}
