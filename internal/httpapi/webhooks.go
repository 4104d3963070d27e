package httpapi

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
)

// WebhookParser verifies and reads provider webhooks.
type WebhookParser interface {
	ParseWebhook(payload []byte, sigHeader string) (payment.Event, error)
}

// Sandbox is what the API needs of the sandbox provider beyond
// payment.Provider: its hosted pages, its charge log and its stand-in for
// a card network's disputes.
type Sandbox interface {
	CardChoices() []CardChoice
	ChooseCard(ctx context.Context, sessionID, token string) (redirectURL string, err error)
	Authenticate(ctx context.Context, chargeID string, ok bool) (payment.Charge, error)
	ChargeLog(ctx context.Context, limit int, startingAfter string) ([]SandboxCharge, bool, error)
	// Dispute opens the dispute of a succeeded charge ("" reason: the
	// default), or returns the one it has; its events reach the webhook
	// code. Errors carry apperr codes: not_found, conflict (a charge that
	// did not succeed or was refunded in whole), invalid on "reason".
	Dispute(ctx context.Context, chargeID, reason string) (payment.Dispute, error)
	// CloseDispute closes the dispute of a charge, "won" or "lost".
	// Errors: not_found, conflict (closed the other way), invalid on
	// "outcome".
	CloseDispute(ctx context.Context, chargeID, outcome string) (payment.Dispute, error)
}

// CardChoice is a test card offered on the sandbox's hosted page.
type CardChoice struct{ Token, Label string }

// SandboxCharge is one line of the sandbox's durable charge log.
type SandboxCharge struct {
	ID             string
	IdempotencyKey string
	TopUpID        string
	Amount         int64 // minor units
	Currency       string
	Status         string
	CreatedAt      time.Time
}

func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	if s.webhooks == nil {
		s.fail(w, r, apperr.NotFoundf("webhooks are only taken with --payments stripe"))
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ev, err := s.webhooks.ParseWebhook(body, r.Header.Get("Stripe-Signature"))
	if errors.Is(err, payment.ErrBadSignature) {
		s.fail(w, r, apperr.Invalidf("Stripe-Signature", "%v", err))
		return
	}
	if err != nil {
		s.fail(w, r, apperr.Invalidf("", "unreadable event: %v", err))
		return
	}
	if err := s.applyEvent(r.Context(), ev); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
}

// applyEvent applies one provider event through the engine's rules.
func (s *Server) applyEvent(ctx context.Context, ev payment.Event) error {
	return s.events().Apply(ctx, ev)
}

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · Topup</title><style>
body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
h1{font-size:1.4rem}button{font:inherit;padding:.6rem 1rem;margin:.25rem 0;border-radius:.4rem;border:1px solid #555;background:#fff;cursor:pointer;width:100%;text-align:left}
button.primary{background:#1d4ed8;color:#fff;border-color:#1d4ed8}.note{color:#555;font-size:.9rem}
</style></head><body><main>{{end}}
{{define "setup"}}{{template "head" "Add a card"}}<h1>Add a payment method</h1>
<p class="note">Sandbox: pick a test card. It behaves like Stripe's test card of the same name.</p>
<form method="post">{{range .Choices}}<button name="card" value="{{.Token}}">{{.Label}}</button>{{end}}</form></main></body></html>{{end}}
{{define "pay"}}{{template "head" "Confirm payment"}}<h1>Confirm your payment</h1>
<p>Your bank asks you to confirm a payment of <strong>{{.Amount}}</strong> to top up your credit.</p>
{{if .Done}}<p role="status">This payment is {{.Status}}.</p>{{else if .Stripe}}
<div id="msg" role="status"></div><button class="primary" id="go">Authenticate</button>
<script src="https://js.stripe.com/v3/"></script><script>
document.getElementById('go').onclick=async function(){const s=Stripe({{.PublishableKey}});
const pi=(await s.retrievePaymentIntent({{.ClientSecret}})).paymentIntent;const last=pi&&pi.last_payment_error&&pi.last_payment_error.payment_method;
const pm=pi&&pi.status==='requires_payment_method'?((last&&last.id)||{{.PaymentMethod}}):'';
const r=await s.confirmCardPayment({{.ClientSecret}},pm?{payment_method:pm}:undefined);document.getElementById('msg').textContent=r.error?r.error.message:'Payment confirmed.';
setTimeout(function(){location.reload()},1500)}</script>
{{else}}<p class="note">Sandbox: this is a simulated 3-D Secure challenge.</p>
<form method="post"><input type="hidden" name="token" value="{{.Token}}">
<button class="primary" name="result" value="ok">Complete authentication</button>
<button name="result" value="fail">Fail authentication</button></form>{{end}}</main></body></html>{{end}}
`))

func (s *Server) sandboxSetupPage(w http.ResponseWriter, r *http.Request) {
	if s.sandbox == nil {
		s.fail(w, r, apperr.NotFoundf("the sandbox is off"))
		return
	}
	w.Header().Set("Content-Security-Policy", pageCSP)
	if r.Method == http.MethodPost {
		if err := cleanForm(r); err != nil {
			s.fail(w, r, err)
			return
		}
		u, err := s.sandbox.ChooseCard(r.Context(), r.PathValue("session"), r.FormValue("card"))
		if err != nil {
			s.fail(w, r, apperr.Invalidf("card", "%v", err))
			return
		}
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pages.ExecuteTemplate(w, "setup", map[string]any{"Choices": s.sandbox.CardChoices()})
}

// payPage is a top-up's action_url: where the customer authenticates a
// charge the bank would not take off-session.
func (s *Server) payPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", pageCSP)
	if err := cleanForm(r); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.svc.ActionTopUp(r.Context(), r.PathValue("top_up_id"), r.FormValue("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.Method == http.MethodGet && s.cfg.ConsoleURL != "" {
		// The console serves this page in its own style; links minted
		// before it was, or by an older version, still arrive here.
		http.Redirect(w, r, s.cfg.ConsoleURL+"/pay/"+url.PathEscape(t.ID)+"?token="+url.QueryEscape(t.ActionToken), http.StatusSeeOther)
		return
	}
	if r.Method == http.MethodPost && t.Status == topup.RequiresAction {
		if _, err := s.svc.AnswerChallenge(r.Context(), t, r.FormValue("result") == "ok"); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, r.URL.Path+"?token="+url.QueryEscape(t.ActionToken), http.StatusSeeOther)
		return
	}
	sandbox, publishableKey := s.svc.Payments()
	amount := ""
	if t.Amount != nil {
		amount = t.Amount.Format(t.Currency) + " " + t.Currency.Code
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pages.ExecuteTemplate(w, "pay", map[string]any{"Amount": amount, "Done": t.Status != topup.RequiresAction, "Status": string(t.Status),
		"Stripe": !sandbox, "ClientSecret": t.ClientSecret, "PaymentMethod": t.PaymentMethod, "Token": t.ActionToken, "PublishableKey": publishableKey})
}

func (s *Server) sandboxCharges(w http.ResponseWriter, r *http.Request) {
	if s.sandbox == nil {
		s.fail(w, r, apperr.NotFoundf("the sandbox is off"))
		return
	}
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	charges, more, err := s.sandbox.ChargeLog(r.Context(), p.Limit, p.StartingAfter)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	type chargeJSON struct {
		ID             string `json:"id"`
		IdempotencyKey string `json:"idempotency_key"`
		TopUpID        string `json:"top_up_id"`
		Amount         string `json:"amount"`
		Currency       string `json:"currency"`
		Status         string `json:"status"`
		CreatedAt      string `json:"created_at"`
	}
	out := list[chargeJSON]{Data: []chargeJSON{}, HasMore: more}
	for _, c := range charges {
		out.Data = append(out.Data, chargeJSON{c.ID, c.IdempotencyKey, c.TopUpID, minorAmount(c.Amount, c.Currency), c.Currency, c.Status, formatTime(c.CreatedAt)})
	}
	writeJSON(w, http.StatusOK, out)
}
