package client

import (
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"
)

// Health asks whether the server and its database answer (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, call{method: "GET", path: "/healthz", retry: true}, nil)
	return err
}

// Metrics reads the Prometheus text of GET /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	r, err := c.do(ctx, call{method: "GET", path: "/metrics", retry: true}, nil)
	if err != nil {
		return "", err
	}
	return string(r.body), nil
}

// OpenAPI reads the API's OpenAPI document (GET /v1/openapi.json).
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	r, err := c.do(ctx, call{method: "GET", path: "/v1/openapi.json", retry: true}, nil)
	if err != nil {
		return nil, err
	}
	return r.body, nil
}

// CreateAccount creates an account (admin); its APIKey is shown only here.
func (c *Client) CreateAccount(ctx context.Context, p AccountParams) (*Account, error) {
	var out Account
	_, err := c.do(ctx, call{method: "POST", path: "/v1/accounts", body: p}, &out)
	return ptr(&out, err)
}

// ListAccounts reads one page of accounts (admin).
func (c *Client) ListAccounts(ctx context.Context, p ListParams) (*List[Account], error) {
	return list[Account](ctx, c, "/v1/accounts", nil, p)
}

// Accounts walks every account (admin), newest first.
func (c *Client) Accounts(ctx context.Context) iter.Seq2[Account, error] {
	return all(ctx, c, "/v1/accounts", nil, func(a Account) string { return a.ID })
}

// GetAccount reads an account with its balance and Automatic Top-Up.
func (c *Client) GetAccount(ctx context.Context, id string) (*Account, error) {
	var out Account
	_, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s", id), retry: true}, &out)
	return ptr(&out, err)
}

// UpdateAccount changes an account's e-mail or closes or reopens it (admin).
func (c *Client) UpdateAccount(ctx context.Context, id string, p AccountUpdateParams) (*Account, error) {
	var out Account
	_, err := c.do(ctx, call{method: "PATCH", path: pathf("/v1/accounts/%s", id), body: p, retry: true}, &out)
	return ptr(&out, err)
}

// Spendable asks whether the account, or one subject of it when subject is
// not empty, may still spend.
func (c *Client) Spendable(ctx context.Context, id, subject string) (*Spendable, error) {
	var q url.Values
	if subject != "" {
		q = url.Values{"subject": {subject}}
	}
	var out Spendable
	_, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/spendable", id), query: q, retry: true}, &out)
	return ptr(&out, err)
}

// CreateAPIKey makes another key for the account; its Key is shown only here.
func (c *Client) CreateAPIKey(ctx context.Context, id, name string) (*APIKey, error) {
	var out APIKey
	body := map[string]string{}
	if name != "" {
		body["name"] = name
	}
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/api_keys", id), body: body}, &out)
	return ptr(&out, err)
}

// ListAPIKeys reads one page of the account's keys (never the keys).
func (c *Client) ListAPIKeys(ctx context.Context, id string, p ListParams) (*List[APIKey], error) {
	return list[APIKey](ctx, c, pathf("/v1/accounts/%s/api_keys", id), nil, p)
}

// RevokeAPIKey revokes a key: within a second it answers 401 everywhere.
func (c *Client) RevokeAPIKey(ctx context.Context, id, keyID string) (*Deleted, error) {
	var out Deleted
	_, err := c.do(ctx, call{method: "DELETE", path: pathf("/v1/accounts/%s/api_keys/%s", id, keyID), retry: true}, &out)
	return ptr(&out, err)
}

// RecordUsage debits usage from the account (admin). Usage is always
// recorded, whatever the balance; the result says whether the account may
// still spend. It is retried with the same key on an unknown outcome.
func (c *Client) RecordUsage(ctx context.Context, id string, p UsageParams) (*UsageResult, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out UsageResult
	r, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/usage", id), body: p, retry: true}, &out)
	if err == nil {
		out.Replayed = r.replayed()
	}
	return ptr(&out, err)
}

// RecordUsageBatch records up to 10,000 events of any accounts at once
// (admin). An event refused alone carries its Error; the others are
// applied. Events without a key get one, so the whole batch is retried
// safely on an unknown outcome.
func (c *Client) RecordUsageBatch(ctx context.Context, events []BatchEvent) (*BatchResult, error) {
	evs := make([]BatchEvent, len(events))
	for i, e := range events {
		if e.IdempotencyKey == "" {
			e.IdempotencyKey = NewIdempotencyKey()
		}
		evs[i] = e
	}
	var out BatchResult
	body := struct {
		Events []BatchEvent `json:"events"`
	}{evs}
	_, err := c.do(ctx, call{method: "POST", path: "/v1/usage/batch", body: body, retry: true}, &out)
	return ptr(&out, err)
}

// Credit adds credit to the account (admin), retried with the same key on
// an unknown outcome.
func (c *Client) Credit(ctx context.Context, id string, p CreditParams) (*UsageResult, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out UsageResult
	r, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/credits", id), body: p, retry: true}, &out)
	if err == nil {
		out.Replayed = r.replayed()
	}
	return ptr(&out, err)
}

// ListTransactions reads one page of the account's ledger, newest first.
func (c *Client) ListTransactions(ctx context.Context, id string, p ListParams) (*List[Entry], error) {
	return list[Entry](ctx, c, pathf("/v1/accounts/%s/transactions", id), nil, p)
}

// Transactions walks the account's whole ledger, newest first.
func (c *Client) Transactions(ctx context.Context, id string) iter.Seq2[Entry, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/transactions", id), nil, func(e Entry) string { return e.ID })
}

// Receipt reads the receipt of a succeeded top-up as a PDF: its number,
// the operator, the customer, the amount and the card. A top-up that has
// not succeeded has none (an *Error with CodeNotFound).
func (c *Client) Receipt(ctx context.Context, id, topUpID string) ([]byte, error) {
	r, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/top_ups/%s/receipt", id, topUpID), retry: true, accept: "application/pdf"}, nil)
	if err != nil {
		return nil, err
	}
	return r.body, nil
}

// ReceiptHTML reads the same receipt as a printable HTML page.
func (c *Client) ReceiptHTML(ctx context.Context, id, topUpID string) ([]byte, error) {
	r, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/top_ups/%s/receipt", id, topUpID), retry: true, accept: "text/html"}, nil)
	if err != nil {
		return nil, err
	}
	return r.body, nil
}

// Statement reads the account's statement of month ("2026-11", a UTC
// month) as JSON, its entries oldest first: OpeningBalance plus the
// entries' amounts is ClosingBalance. A month of very many entries is
// better read with StatementCSV, which streams.
func (c *Client) Statement(ctx context.Context, id, month string) (*Statement, error) {
	var out Statement
	_, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/statement", id), query: url.Values{"month": {month}, "format": {"json"}}, retry: true}, &out)
	return &out, err
}

// StatementCSV opens the account's statement of month as CSV (a header
// row created_at,id,kind,description,amount,balance_after, then one row
// per entry, oldest first) and returns it as it streams in: read it, then
// close it. A statement cut short by the server ends in an error from
// Read, never in a clean end of file.
func (c *Client) StatementCSV(ctx context.Context, id, month string) (io.ReadCloser, error) {
	return c.stream(ctx, pathf("/v1/accounts/%s/statement", id), url.Values{"month": {month}, "format": {"csv"}}, "text/csv")
}

// ListGrants reads one page of the account's grants, newest first.
func (c *Client) ListGrants(ctx context.Context, id string, p GrantListParams) (*List[Grant], error) {
	q := url.Values{}
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	return list[Grant](ctx, c, pathf("/v1/accounts/%s/grants", id), q, p.ListParams)
}

// CreateHold reserves credit on the account (admin): a 402
// insufficient_balance when available credit is short. The same key again
// answers the hold it made (Replayed).
func (c *Client) CreateHold(ctx context.Context, id string, p HoldParams) (*Hold, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out Hold
	r, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/holds", id), body: p, retry: true}, &out)
	if err == nil {
		out.Replayed = r.replayed()
	}
	return ptr(&out, err)
}

// VoidGrant takes what remains of a grant out of the balance (admin) and
// returns the grant, voided; retried with the same key on an unknown
// outcome (a replay answers the same). A grant used up, expired or voided
// is ErrConflict to a new key.
func (c *Client) VoidGrant(ctx context.Context, id, grantID string, p VoidParams) (*Grant, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out Grant
	r, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/grants/%s/void", id, grantID), body: p, retry: true}, &out)
	if err == nil {
		out.Replayed = r.replayed()
	}
	return ptr(&out, err)
}

// ListHolds reads one page of the account's holds, newest first.
func (c *Client) ListHolds(ctx context.Context, id string, p HoldListParams) (*List[Hold], error) {
	q := url.Values{}
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	return list[Hold](ctx, c, pathf("/v1/accounts/%s/holds", id), q, p.ListParams)
}

// CaptureHold records usage of a hold (admin), all of it unless
// p.Amount is set, and releases the rest; a 409 conflict when the hold is
// no longer active.
func (c *Client) CaptureHold(ctx context.Context, id, holdID string, p CaptureParams) (*CaptureResult, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out CaptureResult
	r, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/holds/%s/capture", id, holdID), body: p, retry: true}, &out)
	if err == nil {
		out.Replayed = r.replayed()
	}
	return ptr(&out, err)
}

// ReleaseHold releases a hold (admin); releasing it again answers it
// unchanged.
func (c *Client) ReleaseHold(ctx context.Context, id, holdID string) (*Hold, error) {
	var out Hold
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/holds/%s/release", id, holdID), retry: true}, &out)
	return ptr(&out, err)
}

// GetAutoTopUp reads the account's Automatic Top-Up settings.
func (c *Client) GetAutoTopUp(ctx context.Context, id string) (*AutoTopUp, error) {
	var out AutoTopUp
	_, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/auto_top_up", id), retry: true}, &out)
	return ptr(&out, err)
}

// SetAutoTopUp replaces the settings; a 400 names the field at fault and
// saves nothing.
func (c *Client) SetAutoTopUp(ctx context.Context, id string, p AutoTopUpParams) (*AutoTopUp, error) {
	var out AutoTopUp
	_, err := c.do(ctx, call{method: "PUT", path: pathf("/v1/accounts/%s/auto_top_up", id), body: p, retry: true}, &out)
	return ptr(&out, err)
}

// ListAutoTopUpAudit reads one page of the settings' changes.
func (c *Client) ListAutoTopUpAudit(ctx context.Context, id string, p ListParams) (*List[AuditEntry], error) {
	return list[AuditEntry](ctx, c, pathf("/v1/accounts/%s/auto_top_up/audit", id), nil, p)
}

// AttachPaymentMethod saves a provider's card id (pm_card_visa in the
// sandbox and Stripe test mode) to the account.
func (c *Client) AttachPaymentMethod(ctx context.Context, id, paymentMethod string) (*PaymentMethod, error) {
	var out PaymentMethod
	body := map[string]string{"payment_method": paymentMethod}
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/payment_methods", id), body: body}, &out)
	return ptr(&out, err)
}

// ListPaymentMethods reads one page of the account's cards.
func (c *Client) ListPaymentMethods(ctx context.Context, id string, p ListParams) (*List[PaymentMethod], error) {
	return list[PaymentMethod](ctx, c, pathf("/v1/accounts/%s/payment_methods", id), nil, p)
}

// SetupPaymentMethod returns the hosted page where a person adds a card.
func (c *Client) SetupPaymentMethod(ctx context.Context, id string) (*SetupURL, error) {
	var out SetupURL
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/payment_methods/setup", id)}, &out)
	return ptr(&out, err)
}

// CompleteSetup is the hosted page's return (GET …/setup/return): it
// records the card the session saved, once.
func (c *Client) CompleteSetup(ctx context.Context, id, sessionID string) (*PaymentMethod, error) {
	var out PaymentMethod
	q := url.Values{"session_id": {sessionID}}
	_, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/payment_methods/setup/return", id), query: q}, &out)
	return ptr(&out, err)
}

// DeletePaymentMethod removes a card; removing the one Automatic Top-Up
// uses switches it off, and the answer says so.
func (c *Client) DeletePaymentMethod(ctx context.Context, id, pm string) (*PaymentMethodDeleted, error) {
	var out PaymentMethodDeleted
	_, err := c.do(ctx, call{method: "DELETE", path: pathf("/v1/accounts/%s/payment_methods/%s", id, pm), retry: true}, &out)
	return ptr(&out, err)
}

// SetDefaultPaymentMethod makes a card the account's default.
func (c *Client) SetDefaultPaymentMethod(ctx context.Context, id, pm string) (*PaymentMethod, error) {
	var out PaymentMethod
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/payment_methods/%s/default", id, pm), retry: true}, &out)
	return ptr(&out, err)
}

// CreateTopUp charges a card now. A decline is an *Error with Status 402,
// Code card_declined, DeclineCode and TopUpID; a 3-D Secure card answers a
// TopUp with Status requires_action and its ActionURL. It is retried with
// the same key on an unknown outcome, so it never charges twice.
func (c *Client) CreateTopUp(ctx context.Context, id string, p TopUpParams) (*TopUp, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out TopUp
	r, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/top_ups", id), body: p, retry: true}, &out)
	if err == nil {
		out.Replayed = r.replayed()
	}
	return ptr(&out, err)
}

// CreateRefund refunds a succeeded top-up through the payment provider,
// exactly once per IdempotencyKey (the operator's key only). A refund is
// usually succeeded at once; pending while the provider decides; failed
// when the provider refused it. More than is left answers 400 on amount;
// a top-up that has not succeeded or is disputed, 409.
func (c *Client) CreateRefund(ctx context.Context, id, topUpID string, p RefundParams) (*Refund, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out Refund
	r, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/top_ups/%s/refunds", id, topUpID), body: p, retry: true}, &out)
	if err == nil {
		out.Replayed = r.replayed()
	}
	return ptr(&out, err)
}

// ListRefunds reads one page of a top-up's refunds, newest first.
func (c *Client) ListRefunds(ctx context.Context, id, topUpID string, p ListParams) (*List[Refund], error) {
	return list[Refund](ctx, c, pathf("/v1/accounts/%s/top_ups/%s/refunds", id, topUpID), nil, p)
}

// ListTopUps reads one page of the account's top-ups, newest first.
func (c *Client) ListTopUps(ctx context.Context, id string, p ListParams) (*List[TopUp], error) {
	return list[TopUp](ctx, c, pathf("/v1/accounts/%s/top_ups", id), nil, p)
}

// TopUps walks every top-up of the account, newest first.
func (c *Client) TopUps(ctx context.Context, id string) iter.Seq2[TopUp, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/top_ups", id), nil, func(t TopUp) string { return t.ID })
}

// GetTopUp reads one top-up (poll a processing one until it settles).
func (c *Client) GetTopUp(ctx context.Context, id, topUpID string) (*TopUp, error) {
	var out TopUp
	_, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/top_ups/%s", id, topUpID), retry: true}, &out)
	return ptr(&out, err)
}

// ListNotifications reads one page of what the account was told.
func (c *Client) ListNotifications(ctx context.Context, id string, p ListParams) (*List[Event], error) {
	return list[Event](ctx, c, pathf("/v1/accounts/%s/notifications", id), nil, p)
}

// Notifications walks everything the account was told, newest first.
func (c *Client) Notifications(ctx context.Context, id string) iter.Seq2[Event, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/notifications", id), nil, func(e Event) string { return e.ID })
}

// GetLowBalanceAlerts reads the account's low balance alert thresholds.
func (c *Client) GetLowBalanceAlerts(ctx context.Context, id string) (*LowBalanceAlerts, error) {
	var out LowBalanceAlerts
	_, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/low_balance_alerts", id), retry: true}, &out)
	return ptr(&out, err)
}

// SetLowBalanceAlerts replaces the thresholds (at most 5, at least 5.00
// apart).
func (c *Client) SetLowBalanceAlerts(ctx context.Context, id string, thresholds []Money) (*LowBalanceAlerts, error) {
	if thresholds == nil {
		thresholds = []Money{}
	}
	var out LowBalanceAlerts
	_, err := c.do(ctx, call{method: "PUT", path: pathf("/v1/accounts/%s/low_balance_alerts", id),
		body: LowBalanceAlerts{Thresholds: thresholds}, retry: true}, &out)
	return ptr(&out, err)
}

// ListBudgets reads one page of the account's budgets.
func (c *Client) ListBudgets(ctx context.Context, id string, p ListParams) (*List[Budget], error) {
	return list[Budget](ctx, c, pathf("/v1/accounts/%s/budgets", id), nil, p)
}

// CreateBudget adds a budget; a second one for the same subject is 409.
func (c *Client) CreateBudget(ctx context.Context, id string, p BudgetParams) (*Budget, error) {
	var out Budget
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/budgets", id), body: p}, &out)
	return ptr(&out, err)
}

// GetBudget reads one budget with what it has spent.
func (c *Client) GetBudget(ctx context.Context, id, budgetID string) (*Budget, error) {
	var out Budget
	_, err := c.do(ctx, call{method: "GET", path: pathf("/v1/accounts/%s/budgets/%s", id, budgetID), retry: true}, &out)
	return ptr(&out, err)
}

// UpdateBudget changes a budget; its spend is kept.
func (c *Client) UpdateBudget(ctx context.Context, id, budgetID string, p BudgetParams) (*Budget, error) {
	var out Budget
	_, err := c.do(ctx, call{method: "PUT", path: pathf("/v1/accounts/%s/budgets/%s", id, budgetID), body: p, retry: true}, &out)
	return ptr(&out, err)
}

// DeleteBudget removes a budget.
func (c *Client) DeleteBudget(ctx context.Context, id, budgetID string) (*Deleted, error) {
	var out Deleted
	_, err := c.do(ctx, call{method: "DELETE", path: pathf("/v1/accounts/%s/budgets/%s", id, budgetID), retry: true}, &out)
	return ptr(&out, err)
}

// CreateWebhookEndpoint registers a URL for the account's events; the
// answer's Secret (whsec_…) is shown only here: keep it to verify them.
func (c *Client) CreateWebhookEndpoint(ctx context.Context, id, endpointURL string) (*WebhookEndpoint, error) {
	var out WebhookEndpoint
	body := map[string]string{"url": endpointURL}
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/webhook_endpoints", id), body: body}, &out)
	return ptr(&out, err)
}

// ListWebhookEndpoints reads one page of the account's endpoints.
func (c *Client) ListWebhookEndpoints(ctx context.Context, id string, p ListParams) (*List[WebhookEndpoint], error) {
	return list[WebhookEndpoint](ctx, c, pathf("/v1/accounts/%s/webhook_endpoints", id), nil, p)
}

// DeleteWebhookEndpoint removes an endpoint.
func (c *Client) DeleteWebhookEndpoint(ctx context.Context, id, endpointID string) (*Deleted, error) {
	var out Deleted
	_, err := c.do(ctx, call{method: "DELETE", path: pathf("/v1/accounts/%s/webhook_endpoints/%s", id, endpointID), retry: true}, &out)
	return ptr(&out, err)
}

// ListDeliveries reads one page of the delivery attempts to an endpoint.
func (c *Client) ListDeliveries(ctx context.Context, id, endpointID string, p ListParams) (*List[Delivery], error) {
	return list[Delivery](ctx, c, pathf("/v1/accounts/%s/webhook_endpoints/%s/deliveries", id, endpointID), nil, p)
}

// RotateWebhookSecret gives the endpoint a new secret; for 24 hours
// deliveries are signed with both.
func (c *Client) RotateWebhookSecret(ctx context.Context, id, endpointID string) (*WebhookEndpoint, error) {
	var out WebhookEndpoint
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/webhook_endpoints/%s/rotate_secret", id, endpointID)}, &out)
	return ptr(&out, err)
}

// ResendEvent sends an event to an endpoint again, with the same
// webhook-id (admin).
func (c *Client) ResendEvent(ctx context.Context, id, endpointID, eventID string) (*ResendQueued, error) {
	var out ResendQueued
	body := map[string]string{"event_id": eventID}
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/webhook_endpoints/%s/resend", id, endpointID), body: body, retry: true}, &out)
	return ptr(&out, err)
}

// CreateLoginLink mints a one-time console sign-in link (admin).
func (c *Client) CreateLoginLink(ctx context.Context, id string) (*LoginLink, error) {
	var out LoginLink
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/accounts/%s/login_links", id)}, &out)
	return ptr(&out, err)
}

// ForwardStripeWebhook posts a Stripe event with its Stripe-Signature
// header to POST /v1/stripe/webhook, as Stripe does (a relay, a replay of a
// missed event).
func (c *Client) ForwardStripeWebhook(ctx context.Context, payload []byte, stripeSignature string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/stripe/webhook", strings.NewReader(string(payload)))
	if err != nil {
		return err
	}
	req.Header.Set("Stripe-Signature", stripeSignature)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return &transportError{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return errorOf(&response{status: resp.StatusCode, header: resp.Header, body: b})
	}
	return nil
}

// ListSandboxCharges reads one page of the sandbox's charge log (admin).
func (c *Client) ListSandboxCharges(ctx context.Context, p ListParams) (*List[SandboxCharge], error) {
	return list[SandboxCharge](ctx, c, "/v1/sandbox/charges", nil, p)
}

// SandboxCharges walks the sandbox's whole charge log (admin): the proof
// that nothing was charged twice.
func (c *Client) SandboxCharges(ctx context.Context) iter.Seq2[SandboxCharge, error] {
	return all(ctx, c, "/v1/sandbox/charges", nil, func(s SandboxCharge) string { return s.ID })
}

// ListDisputes lists the disputes of the account's top-ups, newest first
// (admin or owner).
func (c *Client) ListDisputes(ctx context.Context, id string, p ListParams) (*List[Dispute], error) {
	return list[Dispute](ctx, c, pathf("/v1/accounts/%s/disputes", id), nil, p)
}

// DisputeSandboxCharge disputes a sandbox charge as a cardholder's bank
// would (admin; sandbox only): reason is one of Stripe's dispute reasons,
// "" for fraudulent. The funds are withdrawn at once. A charge has one
// dispute: disputing it again answers that one.
func (c *Client) DisputeSandboxCharge(ctx context.Context, chargeID, reason string) (*SandboxDispute, error) {
	var out SandboxDispute
	var body any
	if reason != "" {
		body = map[string]string{"reason": reason}
	}
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/sandbox/charges/%s/dispute", chargeID), body: body, retry: true}, &out)
	return ptr(&out, err)
}

// CloseSandboxDispute closes the dispute of a sandbox charge, outcome "won"
// (the funds come back) or "lost" (admin; sandbox only).
func (c *Client) CloseSandboxDispute(ctx context.Context, chargeID, outcome string) (*SandboxDispute, error) {
	var out SandboxDispute
	body := map[string]string{"outcome": outcome}
	_, err := c.do(ctx, call{method: "POST", path: pathf("/v1/sandbox/charges/%s/dispute/close", chargeID), body: body, retry: true}, &out)
	return ptr(&out, err)
}

func ptr[T any](v *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}
