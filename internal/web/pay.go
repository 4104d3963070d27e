package web

import (
	"net/http"
	"net/url"

	"github.com/topup/topup/internal/topup"
)

// The 3-D Secure page is a top-up's action_url. Its token is the credential
// (the customer may arrive from an e-mail on another device), so it needs
// no session; it shows only the payment it names.

type payPage struct {
	ID, Token, Amount, Card string
	Status                  topup.Status
	StatusText              string
	Waiting, Succeeded      bool
	Sandbox                 bool
	PublishableKey          string
	ClientSecret            string
	Console                 string // the account's Payment Methods page
	Reason                  string
	// PaymentMethod is the card the top-up was charged with, which the
	// page names again when it confirms a PaymentIntent that lost its
	// card to an off-session authentication_required failure.
	PaymentMethod string
}

func (c *Console) payPage(w http.ResponseWriter, r *http.Request) {
	t, err := c.svc.ActionTopUp(r.Context(), r.PathValue("top_up_id"), r.URL.Query().Get("token"))
	if err != nil {
		c.errorPage(w, r, http.StatusNotFound, "Payment not found", "This payment link is not valid. Open the newest link you received, or the console's Payment Methods page.")
		return
	}
	sandbox, key := c.svc.Payments()
	p := payPage{ID: t.ID, Token: t.ActionToken, Status: t.Status, StatusText: statusLabel(t.Status), Waiting: t.Status == topup.RequiresAction,
		Succeeded: t.Status == topup.Succeeded, Sandbox: sandbox, PublishableKey: key, Console: Prefix + "/accounts/" + t.AccountID + "/payment_methods",
		Reason: reasonText(t.FailureCode)}
	if t.Amount != nil {
		p.Amount = formatMoney(*t.Amount, t.Currency)
	}
	if p.Waiting && !sandbox {
		p.ClientSecret, p.PaymentMethod = t.ClientSecret, t.PaymentMethod
		w.Header().Set("Content-Security-Policy", csp(true))
	}
	if cards, err := c.payments.Cards(r.Context(), t.AccountID); err == nil {
		for _, cd := range cards {
			if cd.ID == t.PaymentMethod {
				p.Card = cardLabel(cd)
			}
		}
	}
	c.render(w, r, "pay", view{Title: "Confirm your payment", Page: p})
}

// payAnswer takes the answer to the sandbox's simulated challenge and
// shows the page again with the outcome.
func (c *Console) payAnswer(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	t, err := c.svc.ActionTopUp(r.Context(), r.PathValue("top_up_id"), token)
	if err != nil {
		c.errorPage(w, r, http.StatusNotFound, "Payment not found", "This payment link is not valid.")
		return
	}
	if _, err := c.svc.AnswerChallenge(r.Context(), t, r.PostFormValue("result") == "ok"); err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, Prefix+"/pay/"+url.PathEscape(t.ID)+"?token="+url.QueryEscape(token))
}
