package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/topup"
)

// The operations the API shares with the console (a manual top-up, a
// settings save, a card removal, a threshold, a budget, a webhook endpoint)
// live in internal/billing; this file keeps the console's sign-in links.

// LoginLinks mints one-time console sign-in links (*web.Links).
type LoginLinks interface {
	NewLoginLink(ctx context.Context, accountID string) (link string, expiresAt time.Time, err error)
}

func (s *Server) createLoginLink(w http.ResponseWriter, r *http.Request) {
	if s.logins == nil {
		s.fail(w, r, apperr.NotFoundf("the console is not served here"))
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := acct.May(ledger.ActLoginLink); err != nil {
		s.fail(w, r, err)
		return
	}
	link, expires, err := s.logins.NewLoginLink(r.Context(), acct.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, loginLinkJSON{URL: link, ExpiresAt: formatTime(expires)})
}

// loginLinkJSON is a console sign-in link on the wire.
type loginLinkJSON struct {
	URL       string `json:"url"`
	ExpiresAt string `json:"expires_at"`
}

// ActionURL returns the page where the customer completes t's 3-D Secure
// challenge, as billing.Service.ActionURL does (top_up.action_required
// events carry the same URL: topup.ActionURL over the engine's PayURL).
func (s *Server) ActionURL(t topup.TopUp) string { return s.svc.ActionURL(t) }
