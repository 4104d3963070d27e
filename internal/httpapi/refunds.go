package httpapi

import (
	"context"
	"net/http"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/refund"
)

// Refunder sends a refund asked for through the API to the provider
// (*refund.Worker): it records the refund, then calls the provider at once.
// Its refusals are *apperr.Error: NotFound for another account's or an
// unknown top-up, Conflict for a top-up that did not succeed or whose
// dispute is open, Invalid on amount for more than is left,
// IdempotencyConflict, RequestInProgress.
type Refunder interface {
	Request(ctx context.Context, req refund.Request) (refund.Refund, bool, error)
}

// RefundStore lists a top-up's refunds, newest first (*sqlstore.Refunds).
type RefundStore interface {
	ListRefunds(ctx context.Context, accountID, topUpID string) ([]refund.Refund, error)
}

// refundJSON is a refund on the wire.
type refundJSON struct {
	ID        string  `json:"id"`
	TopUpID   string  `json:"top_up_id"`
	Amount    string  `json:"amount"`
	Status    string  `json:"status"`
	Reason    *string `json:"reason"`
	CreatedAt string  `json:"created_at"`
}

func toRefundJSON(r refund.Refund, c money.Currency) refundJSON {
	return refundJSON{ID: r.ID, TopUpID: r.TopUpID, Amount: r.Amount.Format(c), Status: string(r.Status), Reason: strPtr(r.Reason),
		CreatedAt: formatTime(r.CreatedAt)}
}

// createRefund is POST …/top_ups/{top_up_id}/refunds (admin): 201 with the
// refund as the provider left it (usually succeeded; pending while the
// provider decides or could not be reached), 200 on a replay.
func (s *Server) createRefund(w http.ResponseWriter, r *http.Request) {
	if s.refunder == nil {
		s.fail(w, r, apperr.NotFoundf("refunds are not served here"))
		return
	}
	var req input.Refund
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rq, err := req.Check(s.cfg.MaxAmount, acct.Currency)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rq.AccountID, rq.TopUpID = acct.ID, r.PathValue("top_up_id")
	out, replay, err := s.refunder.Request(r.Context(), rq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	writeJSON(w, status, toRefundJSON(out, acct.Currency))
}

// listRefunds is GET …/top_ups/{top_up_id}/refunds (admin, owner).
func (s *Server) listRefunds(w http.ResponseWriter, r *http.Request) {
	if s.refunds == nil {
		s.fail(w, r, apperr.NotFoundf("refunds are not served here"))
		return
	}
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.billing.TopUp(r.Context(), r.PathValue("id"), r.PathValue("top_up_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all, err := s.refunds.ListRefunds(r.Context(), t.AccountID, t.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rs, more, err := pageOf(all, func(f refund.Refund) string { return f.ID }, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[refundJSON]{Data: []refundJSON{}, HasMore: more}
	for _, f := range rs {
		out.Data = append(out.Data, toRefundJSON(f, t.Currency))
	}
	writeJSON(w, http.StatusOK, out)
}
