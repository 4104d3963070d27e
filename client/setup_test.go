package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/topup/topup/client"
)

// TestAccountSetupRoutes: the routes a customer sets an account up with
// decode into their types: keys, alerts, budgets, endpoints (rotation and
// resend), sign-in links, closing and reopening, and the public routes.
func TestAccountSetupRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t)
	c := srv.admin()
	acct := newAccount(t, c, "10.00")
	key, err := c.CreateAPIKey(ctx, acct.ID, "ci")
	if err != nil || key.Key == "" || key.Name != "ci" {
		t.Fatalf("new key %+v %v", key, err)
	}
	if keys, err := c.ListAPIKeys(ctx, acct.ID, client.ListParams{}); err != nil || len(keys.Data) != 2 {
		t.Errorf("keys %+v %v", keys, err)
	}
	if d, err := c.RevokeAPIKey(ctx, acct.ID, key.ID); err != nil || !d.Deleted {
		t.Errorf("revoke %+v %v", d, err)
	}
	alerts, err := c.SetLowBalanceAlerts(ctx, acct.ID, []client.Money{"20", "5.00"})
	if err != nil || len(alerts.Thresholds) != 2 {
		t.Errorf("alerts %+v %v", alerts, err)
	}
	b, err := c.CreateBudget(ctx, acct.ID, client.BudgetParams{Subject: "key_123", Kind: "monthly", Limit: client.MoneyPtr("50.00")})
	if err != nil || b.PeriodEnd == nil || *b.Limit != "50.00" || *b.Subject != "key_123" {
		t.Fatalf("budget %+v %v", b, err)
	}
	if _, err := c.CreateBudget(ctx, acct.ID, client.BudgetParams{Subject: "key_123", Kind: "unlimited"}); !errors.Is(err, client.ErrConflict) {
		t.Errorf("a second budget for the subject: %v, want conflict", err)
	}
	if b, err = c.UpdateBudget(ctx, acct.ID, b.ID, client.BudgetParams{Kind: "monthly", Limit: client.MoneyPtr("60")}); err != nil || *b.Limit != "60.00" {
		t.Errorf("budget changed %+v %v", b, err)
	}
	if sp, err := c.Spendable(ctx, acct.ID, "key_123"); err != nil || !sp.Spendable {
		t.Errorf("spendable for the subject %+v %v", sp, err)
	}
	ep, err := c.CreateWebhookEndpoint(ctx, acct.ID, "http://127.0.0.1:9/hooks")
	if err != nil {
		t.Fatal(err)
	}
	if rot, err := c.RotateWebhookSecret(ctx, acct.ID, ep.ID); err != nil || rot.Secret == "" || rot.Secret == ep.Secret {
		t.Errorf("rotated %+v %v", rot, err)
	}
	if _, err := c.ResendEvent(ctx, acct.ID, ep.ID, "evt_nope"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("resend of an unknown event: %v, want not_found", err)
	}
	if link, err := c.CreateLoginLink(ctx, acct.ID); err != nil || link.URL == "" || link.ExpiresAt.IsZero() {
		t.Errorf("login link %+v %v", link, err)
	}
	if closed, err := c.UpdateAccount(ctx, acct.ID, client.AccountUpdateParams{Status: "closed"}); err != nil || closed.Status != "closed" || closed.Spendable {
		t.Errorf("closed %+v %v", closed, err)
	}
	if _, err := c.Credit(ctx, acct.ID, client.CreditParams{Amount: "1"}); !errors.Is(err, client.ErrAccountClosed) {
		t.Errorf("credit to a closed account: %v, want account_closed", err)
	}
	if err := c.Health(ctx); err != nil {
		t.Error(err)
	}
	if doc, err := c.OpenAPI(ctx); err != nil || len(doc) < 1000 {
		t.Errorf("openapi: %d bytes, %v", len(doc), err)
	}
}
