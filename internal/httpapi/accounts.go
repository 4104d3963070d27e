package httpapi

import (
	"fmt"
	"net/http"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	var req input.CreateAccount
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Email == nil {
		s.fail(w, r, apperr.Invalidf("email", "is required"))
		return
	}
	code := "usd"
	if req.Currency != nil {
		code = *req.Currency
	}
	acct, key, err := ledger.NewAccount(r.Context(), s.store, s.ids, s.clock, *req.Email, code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := toAccountJSON(acct)
	body.APIKey = key
	writeJSON(w, http.StatusCreated, body)
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	accts, more, err := s.store.Accounts(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[accountJSON]{Data: make([]accountJSON, 0, len(accts)), HasMore: more}
	for _, a := range accts {
		out.Data = append(out.Data, toAccountJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := toAccountJSON(acct)
	paid, promo, err := s.store.Credit(r.Context(), acct.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body.Credit = &creditJSON{Paid: paid.Format(acct.Currency), Promotional: promo.Format(acct.Currency)}
	body.Held, body.Available = acct.Held.Format(acct.Currency), acct.Available().Format(acct.Currency)
	if s.billing != nil {
		st, mtd, err := s.billing.Settings(r.Context(), acct.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		auto := toSettingsJSON(st, mtd, acct.Currency)
		body.AutoTopUp = &auto
	}
	if s.alerts != nil && body.Spendable {
		// An exhausted account-wide budget stops the account too.
		if body.Spendable, body.Reason, _, err = s.alerts.Spendable(r.Context(), acct.ID, ""); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) {
	var req input.UpdateAccount
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := req.Update()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct, err := s.store.UpdateAccount(r.Context(), r.PathValue("id"), u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAccountJSON(acct))
}

// voidGrant takes what remains of a grant out of the balance, through the
// committer like a debit, and answers 200 with the grant (voided); the
// same key replays it.
func (s *Server) voidGrant(w http.ResponseWriter, r *http.Request) {
	var req input.Void
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := req.Posting(r.PathValue("id"), r.PathValue("grant_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	results, err := s.committer.Submit(r.Context(), []ledger.Posting{p})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res := results[0]
	if res.Err != nil {
		s.fail(w, r, res.Err)
		return
	}
	g, err := s.store.Grant(r.Context(), p.AccountID, res.GrantID)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read voided grant %s: %w", res.GrantID, err))
		return
	}
	c, err := money.LookupCurrency(res.Currency)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, toGrantJSON(g, c))
}

// listGrants lists an account's grants, newest first, ?status= keeping
// those of one status.
func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := ledger.GrantStatus(r.URL.Query().Get("status"))
	switch status {
	case "", ledger.GrantActive, ledger.GrantUsed, ledger.GrantExpired, ledger.GrantVoided:
	default:
		s.fail(w, r, apperr.Invalidf("status", "must be active, used, expired or voided"))
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	grants, more, err := s.store.Grants(r.Context(), acct.ID, status, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[grantJSON]{Data: make([]grantJSON, 0, len(grants)), HasMore: more}
	for _, g := range grants {
		out.Data = append(out.Data, toGrantJSON(g, acct.Currency))
	}
	writeJSON(w, http.StatusOK, out)
}
