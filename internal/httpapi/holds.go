package httpapi

import (
	"net/http"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// holdJSON is a hold on the wire: its status as of the answer (an active
// hold past expires_at is expired), captured what its capture recorded.
type holdJSON struct {
	ID          string  `json:"id"`
	Amount      string  `json:"amount"`
	Captured    string  `json:"captured"`
	Currency    string  `json:"currency"`
	Status      string  `json:"status"`
	Subject     string  `json:"subject"`
	Description string  `json:"description"`
	TopUpID     *string `json:"top_up_id"`
	ExpiresAt   string  `json:"expires_at"`
	CreatedAt   string  `json:"created_at"`
}

func toHoldJSON(h ledger.Hold, c money.Currency) holdJSON {
	return holdJSON{ID: h.ID, Amount: h.Amount.Format(c), Captured: h.Captured.Format(c), Currency: c.Code, Status: string(h.Status),
		Subject: h.Subject, Description: h.Description, TopUpID: orNull(h.TopUpID), ExpiresAt: formatTime(h.ExpiresAt), CreatedAt: formatTime(h.CreatedAt)}
}

// captureJSON is the answer to a capture: the usage result and the hold.
type captureJSON struct {
	resultJSON
	Hold holdJSON `json:"hold"`
}

// holdAccount reads the account of a holds route; nil when the store
// serves no holds (404) or after failing the request.
func (s *Server) holdAccount(w http.ResponseWriter, r *http.Request) *ledger.Account {
	if s.holds == nil {
		s.fail(w, r, apperr.NotFoundf("holds are not served"))
		return nil
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return nil
	}
	return &acct
}

// replayed answers 201 for a new resource, or 200 with Idempotent-Replayed
// for the replay of a key, as usage does.
func replayed(w http.ResponseWriter, again bool) int {
	if again {
		w.Header().Set("Idempotent-Replayed", "true")
		return http.StatusOK
	}
	return http.StatusCreated
}

func (s *Server) createHold(w http.ResponseWriter, r *http.Request) {
	var req input.Hold
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	hr, err := req.Request(r.PathValue("id"), s.cfg.MaxAmount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct := s.holdAccount(w, r)
	if acct == nil {
		return
	}
	h, again, err := s.holds.CreateHold(r.Context(), hr)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if h.TopUpID != "" && !again && s.engine != nil {
		s.engine.Kick()
	}
	writeJSON(w, replayed(w, again), toHoldJSON(h, acct.Currency))
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := ledger.HoldStatus(r.URL.Query().Get("status"))
	switch status {
	case "", ledger.HoldActive, ledger.HoldCaptured, ledger.HoldReleased, ledger.HoldExpired:
	default:
		s.fail(w, r, apperr.Invalidf("status", "must be active, captured, released or expired"))
		return
	}
	acct := s.holdAccount(w, r)
	if acct == nil {
		return
	}
	holds, more, err := s.holds.Holds(r.Context(), acct.ID, status, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[holdJSON]{Data: make([]holdJSON, 0, len(holds)), HasMore: more}
	for _, h := range holds {
		out.Data = append(out.Data, toHoldJSON(h, acct.Currency))
	}
	writeJSON(w, http.StatusOK, out)
}

// captureHold records usage of the hold through the committer, as a usage
// call would be, and answers with the hold as the capture left it.
func (s *Server) captureHold(w http.ResponseWriter, r *http.Request) {
	var req input.Capture
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	acct := s.holdAccount(w, r)
	if acct == nil {
		return
	}
	// A hold's amount and subject never change: the posting may be made
	// from a read outside the lock; its state is judged under it.
	h, err := s.holds.Hold(r.Context(), acct.ID, r.PathValue("hold_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := req.Posting(h, s.cfg.MaxAmount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	results, err := s.committer.Submit(r.Context(), []ledger.Posting{p})
	if err == nil {
		err = results[0].Err
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res := results[0]
	if !res.Replayed {
		s.metrics.debits.Inc()
	}
	if h, err = s.holds.Hold(r.Context(), acct.ID, h.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, replayed(w, res.Replayed), captureJSON{resultJSON: toResultJSON(res), Hold: toHoldJSON(h, acct.Currency)})
}

func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request) {
	acct := s.holdAccount(w, r)
	if acct == nil {
		return
	}
	h, err := s.holds.ReleaseHold(r.Context(), acct.ID, r.PathValue("hold_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toHoldJSON(h, acct.Currency))
}
