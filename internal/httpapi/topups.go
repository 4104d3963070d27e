package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/topup"
)

// Billing is the storage of payment methods, settings and top-ups
// (*sqlstore.Payments).
type Billing interface {
	Settings(ctx context.Context, accountID string) (topup.Settings, money.Amount, error)
	SaveSettings(ctx context.Context, accountID, actor string, in topup.Input, maxTarget money.Amount) (topup.Settings, *topup.TopUp, error)
	SettingsAudit(ctx context.Context, accountID string, limit int) ([]topup.AuditEntry, error)
	Cards(ctx context.Context, accountID string) ([]topup.Card, error)
	AddCard(ctx context.Context, accountID string, c payment.Card) (topup.Card, error)
	AddSetupCard(ctx context.Context, accountID, sessionID string, c payment.Card) (topup.Card, error)
	SetupSessionUsed(ctx context.Context, sessionID string) (bool, error)
	SetDefaultCard(ctx context.Context, accountID, cardID string) (topup.Card, error)
	RemoveCard(ctx context.Context, accountID, cardID string) (bool, error)
	CardOwner(ctx context.Context, cardID string) (string, error)
	CustomerID(ctx context.Context, accountID string) (string, error)
	SetCustomerID(ctx context.Context, accountID, customer string) (string, error)
	CreateManual(ctx context.Context, accountID string, amount money.Amount, card, key, hash string, lease time.Duration) (topup.TopUp, bool, error)
	TopUp(ctx context.Context, accountID, id string) (topup.TopUp, error)
	TopUpByID(ctx context.Context, id string) (topup.TopUp, error)
	TopUps(ctx context.Context, accountID string, p ledger.Page) ([]topup.TopUp, bool, error)
	Settle(ctx context.Context, id string, o topup.Outcome, backoff time.Duration) (topup.Settled, error)
	// Receipt is what the receipt of a succeeded top-up shows; NotFound
	// for one that has not succeeded.
	Receipt(ctx context.Context, accountID, topUpID string) (receipt.Record, error)
}

type settingsJSON struct {
	Enabled        bool    `json:"enabled"`
	Threshold      *string `json:"threshold"`
	Target         *string `json:"target"`
	PaymentMethod  *string `json:"payment_method"`
	MonthlyLimit   *string `json:"monthly_limit"`
	DisabledReason *string `json:"disabled_reason"`
	MonthToDate    string  `json:"month_to_date"`
	UpdatedAt      *string `json:"updated_at"`
	TopUpID        string  `json:"top_up_id,omitempty"`
}

func fmtAmount(a *money.Amount, c money.Currency) *string {
	if a == nil {
		return nil
	}
	s := a.Format(c)
	return &s
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toSettingsJSON(s topup.Settings, mtd money.Amount, c money.Currency) settingsJSON {
	out := settingsJSON{Enabled: s.Enabled, Threshold: fmtAmount(s.Threshold, c), Target: fmtAmount(s.Target, c),
		PaymentMethod: strPtr(s.PaymentMethod), MonthlyLimit: fmtAmount(s.MonthlyLimit, c), DisabledReason: strPtr(s.DisabledReason),
		MonthToDate: mtd.Format(c)}
	if !s.UpdatedAt.IsZero() {
		t := formatTime(s.UpdatedAt)
		out.UpdatedAt = &t
	}
	return out
}

func (s *Server) getAutoTopUp(w http.ResponseWriter, r *http.Request) {
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, mtd, err := s.billing.Settings(r.Context(), acct.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toSettingsJSON(st, mtd, acct.Currency))
}

func (s *Server) putAutoTopUp(w http.ResponseWriter, r *http.Request) {
	var req input.AutoTopUp
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in, err := req.Input()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	actor := "admin"
	if p := principalOf(r); !p.admin {
		actor = "account:" + p.account.ID
	}
	st, created, err := s.svc.SaveSettings(r.Context(), acct.ID, actor, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, mtd, err := s.billing.Settings(r.Context(), acct.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := toSettingsJSON(st, mtd, acct.Currency)
	if created != nil {
		body.TopUpID = created.ID
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) autoTopUpAudit(w http.ResponseWriter, r *http.Request) {
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all, err := s.billing.SettingsAudit(r.Context(), acct.ID, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	entries, more, err := pageOf(all, func(e topup.AuditEntry) string { return e.ID }, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[auditJSON]{Data: []auditJSON{}, HasMore: more}
	for _, e := range entries {
		a, err := toAuditJSON(e, acct.Currency)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.Data = append(out.Data, a)
	}
	writeJSON(w, http.StatusOK, out)
}

// auditJSON is one change of Automatic Top-Up settings on the wire.
type auditJSON struct {
	ID        string            `json:"id"`
	Actor     string            `json:"actor"`
	Old       auditSettingsJSON `json:"old"`
	New       auditSettingsJSON `json:"new"`
	CreatedAt string            `json:"created_at"`
}

// auditSettingsJSON is the settings an audit row records, as the settings
// routes show them: money as strings, null where unset.
type auditSettingsJSON struct {
	Enabled        bool    `json:"enabled"`
	Threshold      *string `json:"threshold"`
	Target         *string `json:"target"`
	PaymentMethod  *string `json:"payment_method"`
	MonthlyLimit   *string `json:"monthly_limit"`
	DisabledReason *string `json:"disabled_reason"`
}

// storedSettings is how the store records settings in an audit row: money
// in micros, "" for unset text.
type storedSettings struct {
	Enabled        bool          `json:"enabled"`
	Threshold      *money.Amount `json:"threshold_micros"`
	Target         *money.Amount `json:"target_micros"`
	PaymentMethod  string        `json:"payment_method"`
	MonthlyLimit   *money.Amount `json:"monthly_limit_micros"`
	DisabledReason string        `json:"disabled_reason"`
}

func toAuditJSON(e topup.AuditEntry, c money.Currency) (auditJSON, error) {
	conv := func(raw json.RawMessage) (auditSettingsJSON, error) {
		var st storedSettings
		if err := json.Unmarshal(raw, &st); err != nil {
			return auditSettingsJSON{}, fmt.Errorf("read settings audit %s: %w", e.ID, err)
		}
		return auditSettingsJSON{Enabled: st.Enabled, Threshold: fmtAmount(st.Threshold, c), Target: fmtAmount(st.Target, c),
			PaymentMethod: strPtr(st.PaymentMethod), MonthlyLimit: fmtAmount(st.MonthlyLimit, c), DisabledReason: strPtr(st.DisabledReason)}, nil
	}
	old, err := conv(e.Old)
	if err != nil {
		return auditJSON{}, err
	}
	nw, err := conv(e.New)
	if err != nil {
		return auditJSON{}, err
	}
	return auditJSON{ID: e.ID, Actor: e.Actor, Old: old, New: nw, CreatedAt: formatTime(e.CreatedAt)}, nil
}

type cardJSON struct {
	ID       string `json:"id"`
	Brand    string `json:"brand"`
	Last4    string `json:"last4"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	Default  bool   `json:"default"`
	Created  string `json:"created_at"`
}

func toCardJSON(c topup.Card) cardJSON {
	return cardJSON{c.ID, c.Brand, c.Last4, c.ExpMonth, c.ExpYear, c.Default, formatTime(c.CreatedAt)}
}

func (s *Server) attachCard(w http.ResponseWriter, r *http.Request) {
	var req input.AttachCard
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	pm, err := req.Check()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	saved, err := s.svc.AttachCard(r.Context(), acct, pm)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toCardJSON(saved))
}

func (s *Server) listCards(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all, err := s.billing.Cards(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cards, more, err := pageOf(all, func(c topup.Card) string { return c.ID }, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[cardJSON]{Data: []cardJSON{}, HasMore: more}
	for _, c := range cards {
		out.Data = append(out.Data, toCardJSON(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteCard(w http.ResponseWriter, r *http.Request) {
	id, pm := r.PathValue("id"), r.PathValue("pm")
	if _, err := s.store.Account(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	disabled, err := s.svc.RemoveCard(r.Context(), id, pm)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": pm, "deleted": true, "auto_top_up_disabled": disabled})
}

func (s *Server) defaultCard(w http.ResponseWriter, r *http.Request) {
	c, err := s.billing.SetDefaultCard(r.Context(), r.PathValue("id"), r.PathValue("pm"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toCardJSON(c))
}

func (s *Server) setupCard(w http.ResponseWriter, r *http.Request) {
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	back := s.cfg.PublicURL + "/v1/accounts/" + acct.ID + "/payment_methods/setup/return"
	u, err := s.svc.StartCardSetup(r.Context(), acct, back, s.cfg.PublicURL+"/")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": u})
}

// setupReturn is where the hosted card page sends the browser back: the
// card it saved is recorded once; the same URL again answers 409 and adds
// nothing (CompleteCardSetup).
func (s *Server) setupReturn(w http.ResponseWriter, r *http.Request) {
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	saved, err := s.svc.CompleteCardSetup(r.Context(), acct, r.URL.Query().Get("session_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toCardJSON(saved))
}

type topUpJSON struct {
	ID            string  `json:"id"`
	AccountID     string  `json:"account_id"`
	Status        string  `json:"status"`
	Amount        *string `json:"amount"`
	Currency      string  `json:"currency"`
	Trigger       string  `json:"trigger"`
	PaymentMethod string  `json:"payment_method"`
	FailureCode   *string `json:"failure_code"`
	ActionURL     *string `json:"action_url"`
	Attempts      int     `json:"attempts"`
	CreatedAt     string  `json:"created_at"`
	CompletedAt   *string `json:"completed_at"`
	// AmountRefunded is what its succeeded refunds gave back.
	AmountRefunded string `json:"amount_refunded"`
}

func (s *Server) toTopUpJSON(t topup.TopUp) topUpJSON {
	out := topUpJSON{ID: t.ID, AccountID: t.AccountID, Status: string(t.Status), Amount: fmtAmount(t.Amount, t.Currency), Currency: t.Currency.Code,
		Trigger: string(t.Trigger), PaymentMethod: t.PaymentMethod, FailureCode: strPtr(t.FailureCode), Attempts: t.Attempts, CreatedAt: formatTime(t.CreatedAt),
		AmountRefunded: t.AmountRefunded.Format(t.Currency)}
	out.ActionURL = strPtr(s.ActionURL(t))
	if !t.CompletedAt.IsZero() {
		c := formatTime(t.CompletedAt)
		out.CompletedAt = &c
	}
	return out
}

func (s *Server) createTopUp(w http.ResponseWriter, r *http.Request) {
	var req input.TopUp
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	amount, key, card, err := req.Check(s.cfg.MaxAmount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, replay, err := s.svc.ManualTopUp(r.Context(), acct, amount, card, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if t.Status == topup.Failed {
		s.fail(w, r, &apperr.Error{Code: apperr.CardDeclined, Message: "the card was declined", Details: map[string]string{
			"decline_code": t.FailureCode, "top_up_id": t.ID}})
		return
	}
	status := http.StatusCreated
	if replay {
		status = http.StatusOK
	}
	writeJSON(w, status, s.toTopUpJSON(t))
}

func (s *Server) listTopUps(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tus, more, err := s.billing.TopUps(r.Context(), r.PathValue("id"), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[topUpJSON]{Data: []topUpJSON{}, HasMore: more}
	for _, t := range tus {
		out.Data = append(out.Data, s.toTopUpJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getTopUp(w http.ResponseWriter, r *http.Request) {
	t, err := s.billing.TopUp(r.Context(), r.PathValue("id"), r.PathValue("top_up_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.toTopUpJSON(t))
}
