package httpapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/topup/topup/internal/apperr"
)

// route is one entry of the route table.
type route struct {
	method  string
	path    string
	access  access
	handler http.HandlerFunc
}

// routeTable lists every route of the API: this file is where a reader
// sees the whole surface, and the OpenAPI test checks each is documented.
func (s *Server) routeTable() []route {
	return []route{
		{"GET", "/healthz", public, s.healthz},
		{"GET", "/metrics", s.metricsAccess(), promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}).ServeHTTP},
		{"GET", "/v1/openapi.json", public, s.serveOpenAPI},

		{"POST", "/v1/accounts", adminOnly, s.createAccount},
		{"GET", "/v1/accounts", adminOnly, s.listAccounts},
		{"GET", "/v1/accounts/{id}", owner, s.getAccount},
		{"PATCH", "/v1/accounts/{id}", adminOnly, s.updateAccount},
		{"GET", "/v1/accounts/{id}/spendable", owner, s.spendable},
		{"POST", "/v1/accounts/{id}/api_keys", owner, s.createAPIKey},
		{"GET", "/v1/accounts/{id}/api_keys", owner, s.listAPIKeys},
		{"DELETE", "/v1/accounts/{id}/api_keys/{key_id}", owner, s.revokeAPIKey},

		{"POST", "/v1/accounts/{id}/usage", adminOnly, s.postUsage},
		{"POST", "/v1/usage/batch", adminOnly, s.postUsageBatch},
		{"POST", "/v1/accounts/{id}/credits", adminOnly, s.postCredit},
		{"GET", "/v1/accounts/{id}/transactions", owner, s.listTransactions},
		{"GET", "/v1/accounts/{id}/grants", owner, s.listGrants},
		{"POST", "/v1/accounts/{id}/holds", adminOnly, s.createHold},
		{"GET", "/v1/accounts/{id}/holds", owner, s.listHolds},
		{"POST", "/v1/accounts/{id}/holds/{hold_id}/capture", adminOnly, s.captureHold},
		{"POST", "/v1/accounts/{id}/holds/{hold_id}/release", adminOnly, s.releaseHold},
		{"GET", "/v1/accounts/{id}/statement", owner, s.getStatement},
		{"POST", "/v1/accounts/{id}/grants/{grant_id}/void", adminOnly, s.voidGrant},

		{"GET", "/v1/accounts/{id}/auto_top_up", owner, s.getAutoTopUp},
		{"PUT", "/v1/accounts/{id}/auto_top_up", owner, s.putAutoTopUp},
		{"GET", "/v1/accounts/{id}/auto_top_up/audit", owner, s.autoTopUpAudit},
		{"POST", "/v1/accounts/{id}/payment_methods", owner, s.attachCard},
		{"GET", "/v1/accounts/{id}/payment_methods", owner, s.listCards},
		{"POST", "/v1/accounts/{id}/payment_methods/setup", owner, s.setupCard},
		{"GET", "/v1/accounts/{id}/payment_methods/setup/return", public, s.setupReturn},
		{"DELETE", "/v1/accounts/{id}/payment_methods/{pm}", owner, s.deleteCard},
		{"POST", "/v1/accounts/{id}/payment_methods/{pm}/default", owner, s.defaultCard},
		{"POST", "/v1/accounts/{id}/top_ups", owner, s.createTopUp},
		{"GET", "/v1/accounts/{id}/top_ups", owner, s.listTopUps},
		{"GET", "/v1/accounts/{id}/top_ups/{top_up_id}", owner, s.getTopUp},
		{"GET", "/v1/accounts/{id}/top_ups/{top_up_id}/receipt", owner, s.getReceipt},
		{"POST", "/v1/accounts/{id}/top_ups/{top_up_id}/refunds", adminOnly, s.createRefund},
		{"GET", "/v1/accounts/{id}/top_ups/{top_up_id}/refunds", owner, s.listRefunds},
		{"GET", "/v1/accounts/{id}/disputes", owner, s.listDisputes},
		{"GET", "/v1/accounts/{id}/notifications", owner, s.listNotificationPage},
		{"GET", "/v1/accounts/{id}/low_balance_alerts", owner, s.getLowBalanceAlerts},
		{"PUT", "/v1/accounts/{id}/low_balance_alerts", owner, s.putLowBalanceAlerts},
		{"GET", "/v1/accounts/{id}/budgets", owner, s.listBudgets},
		{"POST", "/v1/accounts/{id}/budgets", owner, s.createBudget},
		{"GET", "/v1/accounts/{id}/budgets/{budget_id}", owner, s.getBudget},
		{"PUT", "/v1/accounts/{id}/budgets/{budget_id}", owner, s.putBudget},
		{"DELETE", "/v1/accounts/{id}/budgets/{budget_id}", owner, s.deleteBudget},
		{"POST", "/v1/accounts/{id}/webhook_endpoints", owner, s.createEndpoint},
		{"GET", "/v1/accounts/{id}/webhook_endpoints", owner, s.listEndpoints},
		{"DELETE", "/v1/accounts/{id}/webhook_endpoints/{endpoint_id}", owner, s.deleteEndpoint},
		{"GET", "/v1/accounts/{id}/webhook_endpoints/{endpoint_id}/deliveries", owner, s.listDeliveries},
		{"POST", "/v1/accounts/{id}/webhook_endpoints/{endpoint_id}/rotate_secret", owner, s.rotateSecret},
		{"POST", "/v1/accounts/{id}/webhook_endpoints/{endpoint_id}/resend", adminOnly, s.resendEvent},
		{"POST", "/v1/accounts/{id}/login_links", adminOnly, s.createLoginLink},
		{"POST", "/v1/stripe/webhook", public, s.stripeWebhook},
		{"GET", "/v1/sandbox/charges", adminOnly, s.sandboxCharges},
		{"POST", "/v1/sandbox/charges/{charge_id}/dispute", adminOnly, s.sandboxDispute},
		{"POST", "/v1/sandbox/charges/{charge_id}/dispute/close", adminOnly, s.sandboxCloseDispute},
		{"GET", "/sandbox/setup/{session}", public, s.sandboxSetupPage},
		{"POST", "/sandbox/setup/{session}", public, s.sandboxSetupPage},
		{"GET", "/pay/{top_up_id}", public, s.payPage},
		{"POST", "/pay/{top_up_id}", public, s.payPage},
	}
}

// Routes returns "METHOD /path" for every route, for the OpenAPI test.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.routeTable() {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

// RouteInfo is one route of the table as tests see it: its method, its
// pattern and who may call it ("public", "admin" or "owner").
type RouteInfo struct {
	Method, Path, Access string
}

// RouteInfos returns every route with who may call it, so that the
// authorization matrix test covers each route the table has, new ones too.
func (s *Server) RouteInfos() []RouteInfo {
	names := map[access]string{public: "public", adminOnly: "admin", owner: "owner"}
	var out []RouteInfo
	for _, r := range s.routeTable() {
		out = append(out, RouteInfo{Method: r.method, Path: r.path, Access: names[r.access]})
	}
	return out
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routeTable() {
		pattern := r.method + " " + r.path
		mux.Handle(pattern, s.instrument(pattern, s.guard(r.access, clean(r.handler))))
	}
	mux.Handle("/", s.instrument("unknown", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, apperr.NotFoundf("no route %s %s", r.Method, r.URL.Path))
	})))
	return mux
}

// metricsAccess is who may read /metrics: the operator, unless
// TOPUP_METRICS_PUBLIC=true (a scraper without the key). The metrics tell
// the Go version and the business's volume per route.
func (s *Server) metricsAccess() access {
	if s.cfg.MetricsPublic {
		return public
	}
	return adminOnly
}

//go:embed openapi.json
var openAPI []byte

// openAPIFor returns the document with servers[0].url set to publicURL
// (TOPUP_PUBLIC_URL), so that clients generated from the served document
// call this service; the embedded document, with no URL configured.
func openAPIFor(publicURL string) ([]byte, error) {
	if publicURL == "" {
		return openAPI, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		return nil, fmt.Errorf("read openapi.json: %w", err)
	}
	var servers []map[string]any
	if err := json.Unmarshal(doc["servers"], &servers); err != nil {
		return nil, fmt.Errorf("read openapi.json servers: %w", err)
	}
	if len(servers) == 0 {
		servers = []map[string]any{{}}
	}
	servers[0]["url"] = strings.TrimRight(publicURL, "/")
	servers[0]["description"] = "This service (TOPUP_PUBLIC_URL)."
	raw, err := json.Marshal(servers)
	if err != nil {
		return nil, err
	}
	doc["servers"] = raw
	return json.MarshalIndent(doc, "", "  ")
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.openAPI)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Ping(r.Context()); err != nil {
		s.log.Error("health check", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
