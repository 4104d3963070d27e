package client_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/topup/topup/client"
	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
)

// clientOf names the client's method for each route of the server's
// table.
var clientOf = map[string]string{
	"GET /healthz":                                                         "Health",
	"GET /metrics":                                                         "Metrics",
	"GET /v1/openapi.json":                                                 "OpenAPI",
	"POST /v1/accounts":                                                    "CreateAccount",
	"GET /v1/accounts":                                                     "ListAccounts",
	"GET /v1/accounts/{id}":                                                "GetAccount",
	"PATCH /v1/accounts/{id}":                                              "UpdateAccount",
	"GET /v1/accounts/{id}/spendable":                                      "Spendable",
	"POST /v1/accounts/{id}/api_keys":                                      "CreateAPIKey",
	"GET /v1/accounts/{id}/api_keys":                                       "ListAPIKeys",
	"DELETE /v1/accounts/{id}/api_keys/{key_id}":                           "RevokeAPIKey",
	"POST /v1/accounts/{id}/usage":                                         "RecordUsage",
	"POST /v1/usage/batch":                                                 "RecordUsageBatch",
	"POST /v1/accounts/{id}/credits":                                       "Credit",
	"GET /v1/accounts/{id}/transactions":                                   "ListTransactions",
	"GET /v1/accounts/{id}/grants":                                         "ListGrants",
	"POST /v1/accounts/{id}/holds":                                         "CreateHold",
	"GET /v1/accounts/{id}/holds":                                          "ListHolds",
	"POST /v1/accounts/{id}/holds/{hold_id}/capture":                       "CaptureHold",
	"POST /v1/accounts/{id}/holds/{hold_id}/release":                       "ReleaseHold",
	"GET /v1/accounts/{id}/statement":                                      "Statement",
	"POST /v1/accounts/{id}/grants/{grant_id}/void":                        "VoidGrant",
	"GET /v1/accounts/{id}/auto_top_up":                                    "GetAutoTopUp",
	"PUT /v1/accounts/{id}/auto_top_up":                                    "SetAutoTopUp",
	"GET /v1/accounts/{id}/auto_top_up/audit":                              "ListAutoTopUpAudit",
	"POST /v1/accounts/{id}/payment_methods":                               "AttachPaymentMethod",
	"GET /v1/accounts/{id}/payment_methods":                                "ListPaymentMethods",
	"POST /v1/accounts/{id}/payment_methods/setup":                         "SetupPaymentMethod",
	"GET /v1/accounts/{id}/payment_methods/setup/return":                   "CompleteSetup",
	"DELETE /v1/accounts/{id}/payment_methods/{pm}":                        "DeletePaymentMethod",
	"POST /v1/accounts/{id}/payment_methods/{pm}/default":                  "SetDefaultPaymentMethod",
	"POST /v1/accounts/{id}/top_ups":                                       "CreateTopUp",
	"GET /v1/accounts/{id}/top_ups":                                        "ListTopUps",
	"GET /v1/accounts/{id}/top_ups/{top_up_id}":                            "GetTopUp",
	"GET /v1/accounts/{id}/top_ups/{top_up_id}/receipt":                    "Receipt",
	"GET /v1/accounts/{id}/disputes":                                       "ListDisputes",
	"GET /v1/accounts/{id}/notifications":                                  "ListNotifications",
	"GET /v1/accounts/{id}/low_balance_alerts":                             "GetLowBalanceAlerts",
	"PUT /v1/accounts/{id}/low_balance_alerts":                             "SetLowBalanceAlerts",
	"GET /v1/accounts/{id}/budgets":                                        "ListBudgets",
	"POST /v1/accounts/{id}/budgets":                                       "CreateBudget",
	"GET /v1/accounts/{id}/budgets/{budget_id}":                            "GetBudget",
	"PUT /v1/accounts/{id}/budgets/{budget_id}":                            "UpdateBudget",
	"DELETE /v1/accounts/{id}/budgets/{budget_id}":                         "DeleteBudget",
	"POST /v1/accounts/{id}/webhook_endpoints":                             "CreateWebhookEndpoint",
	"GET /v1/accounts/{id}/webhook_endpoints":                              "ListWebhookEndpoints",
	"DELETE /v1/accounts/{id}/webhook_endpoints/{endpoint_id}":             "DeleteWebhookEndpoint",
	"GET /v1/accounts/{id}/webhook_endpoints/{endpoint_id}/deliveries":     "ListDeliveries",
	"POST /v1/accounts/{id}/webhook_endpoints/{endpoint_id}/rotate_secret": "RotateWebhookSecret",
	"POST /v1/accounts/{id}/webhook_endpoints/{endpoint_id}/resend":        "ResendEvent",
	"POST /v1/accounts/{id}/login_links":                                   "CreateLoginLink",
	"POST /v1/accounts/{id}/top_ups/{top_up_id}/refunds":                   "CreateRefund",
	"GET /v1/accounts/{id}/top_ups/{top_up_id}/refunds":                    "ListRefunds",
	"POST /v1/stripe/webhook":                                              "ForwardStripeWebhook",
	"GET /v1/sandbox/charges":                                              "ListSandboxCharges",
	"POST /v1/sandbox/charges/{charge_id}/dispute":                         "DisputeSandboxCharge",
	"POST /v1/sandbox/charges/{charge_id}/dispute/close":                   "CloseSandboxDispute",
	"GET /sandbox/setup/{session}":                                         "SetupPaymentMethod", // a page for people: its URL
	"POST /sandbox/setup/{session}":                                        "ChooseSandboxCard",
	"GET /pay/{top_up_id}":                                                 "CreateTopUp", // a page for people: TopUp.ActionURL
	"POST /pay/{top_up_id}":                                                "AnswerSandboxChallenge",
}

// TestEveryRouteHasAMethod: each route of the server's table has its
// method on the client, so a new route cannot be left out.
func TestEveryRouteHasAMethod(t *testing.T) {
	t.Parallel()
	store, err := app.OpenStore(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "topup.db"), clock.System, ids.New(clock.System))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Config{Addr: "127.0.0.1:0", NoEngine: true, NoNotifier: true}, store)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown() })
	methods := reflect.TypeFor[*client.Client]()
	for _, route := range a.API().Routes() {
		name, ok := clientOf[route]
		if !ok {
			t.Errorf("route %s has no client method", route)
			continue
		}
		if _, ok := methods.MethodByName(name); !ok {
			t.Errorf("route %s: the client has no method %s", route, name)
		}
	}
}
