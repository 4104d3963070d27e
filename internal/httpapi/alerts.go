package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/topup"
)

// Alerts is the storage of low balance alerts, budgets, webhook endpoints
// and what accounts were told (*sqlstore.Outbox). Methods return NotFound
// for an unknown (or another account's) resource, Invalid naming the field
// for input the rules refuse, and Conflict for a second budget of one
// subject.
type Alerts interface {
	LowBalanceAlerts(ctx context.Context, accountID string) ([]alert.Threshold, error)
	SetLowBalanceAlerts(ctx context.Context, accountID string, thresholds []money.Amount) ([]alert.Threshold, error)
	Budgets(ctx context.Context, accountID string, p ledger.Page) ([]alert.Budget, bool, error)
	Budget(ctx context.Context, accountID, id string) (alert.Budget, error)
	CreateBudget(ctx context.Context, accountID string, in alert.BudgetInput) (alert.Budget, error)
	UpdateBudget(ctx context.Context, accountID, id string, in alert.BudgetInput) (alert.Budget, error)
	DeleteBudget(ctx context.Context, accountID, id string) error
	Spendable(ctx context.Context, accountID, subject string) (bool, string, *alert.Budget, error)
	NotificationPage(ctx context.Context, accountID string, p ledger.Page) ([]topup.Notification, bool, error)
	CreateEndpoint(ctx context.Context, accountID, url string) (notify.Endpoint, error)
	Endpoints(ctx context.Context, accountID string, p ledger.Page) ([]notify.Endpoint, bool, error)
	DeleteEndpoint(ctx context.Context, accountID, id string) error
	// RotateEndpointSecret gives an endpoint a new secret; the old one keeps
	// signing for 24 hours. NotFound for an unknown endpoint.
	RotateEndpointSecret(ctx context.Context, accountID, id string) (notify.Endpoint, error)
	// ResendEvent sends an account's event to its endpoint again; NotFound
	// for an unknown endpoint or event.
	ResendEvent(ctx context.Context, accountID, endpointID, eventID string, giveUpAfter time.Duration) error
	DeliveryAttempts(ctx context.Context, accountID, endpointID string, p ledger.Page) ([]notify.Attempt, bool, error)
}

// lowBalanceAlertsJSON is an account's low balance alerts on the wire.
type lowBalanceAlertsJSON struct {
	// Thresholds are largest first.
	Thresholds []string `json:"thresholds"`
}

func toLowBalanceAlertsJSON(ts []alert.Threshold, c money.Currency) lowBalanceAlertsJSON {
	out := lowBalanceAlertsJSON{Thresholds: make([]string, 0, len(ts))}
	for _, t := range ts {
		out.Thresholds = append(out.Thresholds, t.Amount.Format(c))
	}
	return out
}

// account reads the account in the path, so that an unknown one answers
// 404 before its input is judged.
func (s *Server) account(w http.ResponseWriter, r *http.Request) (ledger.Account, bool) {
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return acct, false
	}
	if s.alerts == nil {
		s.fail(w, r, apperr.NotFoundf("alerts and budgets are not served here"))
		return acct, false
	}
	return acct, true
}

func (s *Server) getLowBalanceAlerts(w http.ResponseWriter, r *http.Request) {
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	ts, err := s.alerts.LowBalanceAlerts(r.Context(), acct.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toLowBalanceAlertsJSON(ts, acct.Currency))
}

func (s *Server) putLowBalanceAlerts(w http.ResponseWriter, r *http.Request) {
	var req input.Thresholds
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	amounts, err := req.Amounts()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ts, err := s.svc.SetLowBalanceAlerts(r.Context(), acct.ID, amounts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toLowBalanceAlertsJSON(ts, acct.Currency))
}

func (s *Server) budgetInput(w http.ResponseWriter, r *http.Request) (alert.BudgetInput, bool) {
	var req input.Budget
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return alert.BudgetInput{}, false
	}
	limit, err := req.LimitAmount()
	if err != nil {
		s.fail(w, r, err)
		return alert.BudgetInput{}, false
	}
	return alert.BudgetInput{Subject: req.Subject, Kind: req.Kind, Limit: limit}, true
}

func (s *Server) listBudgets(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	bs, more, err := s.alerts.Budgets(r.Context(), acct.ID, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[alert.BudgetView]{Data: make([]alert.BudgetView, 0, len(bs)), HasMore: more}
	for i := range bs {
		out.Data = append(out.Data, bs[i].View(acct.Currency))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createBudget(w http.ResponseWriter, r *http.Request) {
	in, ok := s.budgetInput(w, r)
	if !ok {
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	b, err := s.svc.CreateBudget(r.Context(), acct.ID, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, b.View(acct.Currency))
}

func (s *Server) getBudget(w http.ResponseWriter, r *http.Request) {
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	b, err := s.alerts.Budget(r.Context(), acct.ID, r.PathValue("budget_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b.View(acct.Currency))
}

func (s *Server) putBudget(w http.ResponseWriter, r *http.Request) {
	in, ok := s.budgetInput(w, r)
	if !ok {
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	b, err := s.svc.UpdateBudget(r.Context(), acct.ID, r.PathValue("budget_id"), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b.View(acct.Currency))
}

func (s *Server) deleteBudget(w http.ResponseWriter, r *http.Request) {
	s.remove(w, r, "budget_id", s.svc.DeleteBudget)
}

// remove answers every DELETE of an account's resource alike: the
// account must exist, the resource named by the path value param is
// removed by del, and the answer is {id, deleted: true}.
func (s *Server) remove(w http.ResponseWriter, r *http.Request, param string, del func(ctx context.Context, accountID, id string) error) {
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	id := r.PathValue(param)
	if err := del(r.Context(), acct.ID, id); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
}

// spendableJSON answers GET …/spendable.
type spendableJSON struct {
	Spendable bool   `json:"spendable"`
	Reason    string `json:"reason,omitempty"`
	// BudgetID names the budget that stops the spending.
	BudgetID string `json:"budget_id,omitempty"`
}

func (s *Server) spendable(w http.ResponseWriter, r *http.Request) {
	subject := r.URL.Query().Get("subject")
	if r.URL.Query().Has("subject") {
		if err := alert.CheckSubject(subject); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	ok, reason, b, err := s.alerts.Spendable(r.Context(), acct.ID, subject)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := spendableJSON{Spendable: ok, Reason: reason}
	if b != nil {
		out.BudgetID = b.ID
	}
	writeJSON(w, http.StatusOK, out)
}

// eventJSON is an event as the account was told: {id, type, created_at,
// account_id, data}.
type eventJSON struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	AccountID string          `json:"account_id"`
	Data      json.RawMessage `json:"data"`
}

func (s *Server) listNotificationPage(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	ns, more, err := s.alerts.NotificationPage(r.Context(), acct.ID, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[eventJSON]{Data: make([]eventJSON, 0, len(ns)), HasMore: more}
	for _, n := range ns {
		out.Data = append(out.Data, eventJSON{n.ID, n.Type, formatTime(n.CreatedAt), n.AccountID, n.Data})
	}
	writeJSON(w, http.StatusOK, out)
}

// endpointJSON is a webhook endpoint on the wire. The secret is shown
// whole only in the answer that creates the endpoint; lists show its first
// characters (secret_prefix), enough to tell endpoints apart.
type endpointJSON struct {
	ID           string `json:"id"`
	URL          string `json:"url"`
	Secret       string `json:"secret,omitempty"`
	SecretPrefix string `json:"secret_prefix"`
	CreatedAt    string `json:"created_at"`
}

func toEndpointJSON(e notify.Endpoint, withSecret bool) endpointJSON {
	out := endpointJSON{ID: e.ID, URL: e.URL, SecretPrefix: e.Secret[:min(len(e.Secret), 12)], CreatedAt: formatTime(e.CreatedAt)}
	if withSecret {
		out.Secret = e.Secret
	}
	return out
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var req input.Endpoint
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	if req.URL == nil {
		req.URL = new(string)
	}
	e, err := s.svc.CreateEndpoint(r.Context(), acct.ID, *req.URL)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toEndpointJSON(e, true))
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	es, more, err := s.alerts.Endpoints(r.Context(), acct.ID, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[endpointJSON]{Data: make([]endpointJSON, 0, len(es)), HasMore: more}
	for _, e := range es {
		out.Data = append(out.Data, toEndpointJSON(e, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	s.remove(w, r, "endpoint_id", s.svc.DeleteEndpoint)
}

// deliveryJSON is one delivery attempt to a webhook endpoint.
type deliveryJSON struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	// StatusCode is the receiver's HTTP status; null when none came.
	StatusCode    *int    `json:"status_code"`
	Error         *string `json:"error"`
	AttemptedAt   string  `json:"attempted_at"`
	NextAttemptAt *string `json:"next_attempt_at"`
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	as, more, err := s.alerts.DeliveryAttempts(r.Context(), acct.ID, r.PathValue("endpoint_id"), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[deliveryJSON]{Data: make([]deliveryJSON, 0, len(as)), HasMore: more}
	for _, a := range as {
		d := deliveryJSON{ID: a.ID, EventID: a.EventID, Type: a.Type, Error: strPtr(a.Error), AttemptedAt: formatTime(a.AttemptedAt)}
		if a.StatusCode != 0 {
			code := a.StatusCode
			d.StatusCode = &code
		}
		if !a.NextAttemptAt.IsZero() {
			n := formatTime(a.NextAttemptAt)
			d.NextAttemptAt = &n
		}
		out.Data = append(out.Data, d)
	}
	writeJSON(w, http.StatusOK, out)
}
