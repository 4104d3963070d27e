package httpapi

import (
	"net/http"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
)

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    *string `json:"email"`
		Currency *string `json:"currency"`
	}
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
	var req struct {
		Email  *string `json:"email"`
		Status *string `json:"status"`
	}
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var u ledger.AccountUpdate
	if req.Email != nil {
		if err := ledger.ValidEmail(*req.Email); err != nil {
			s.fail(w, r, err)
			return
		}
		u.Email = req.Email
	}
	if req.Status != nil {
		st := ledger.Status(*req.Status)
		if st != ledger.Active && st != ledger.Closed {
			s.fail(w, r, apperr.Invalidf("status", "must be active or closed"))
			return
		}
		u.Status = &st
	}
	acct, err := s.store.UpdateAccount(r.Context(), r.PathValue("id"), u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAccountJSON(acct))
}
