package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strconv"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// The sandbox's stand-in for a card network's dispute: POST
// /v1/sandbox/charges/{charge_id}/dispute and …/dispute/close (admin). The
// events the sandbox sends for them are applied by the same code as
// Stripe's webhooks.

// sandboxDisputeJSON is a dispute on the wire.
type sandboxDisputeJSON struct {
	ID              string `json:"id"`
	ChargeID        string `json:"charge_id"`
	TopUpID         string `json:"top_up_id"`
	Amount          string `json:"amount"`
	Currency        string `json:"currency"`
	Status          string `json:"status"`
	Reason          string `json:"reason"`
	FundsWithdrawn  bool   `json:"funds_withdrawn"`
	FundsReinstated bool   `json:"funds_reinstated"`
	CreatedAt       string `json:"created_at"`
}

func disputeJSON(d payment.Dispute) sandboxDisputeJSON {
	return sandboxDisputeJSON{ID: d.ID, ChargeID: d.ChargeID, TopUpID: d.TopUpID, Amount: minorAmount(d.Amount, d.Currency),
		Currency: d.Currency, Status: string(d.Status), Reason: d.Reason, FundsWithdrawn: d.FundsWithdrawn,
		FundsReinstated: d.FundsReinstated, CreatedAt: formatTime(d.Created)}
}

// minorAmount writes an amount in the currency's minor units as the API
// writes amounts ("12.34"), or as the bare number for a currency Topup
// does not know.
func minorAmount(minor int64, currency string) string {
	if cur, err := money.LookupCurrency(currency); err == nil {
		if a, err := money.FromMinor(minor, cur); err == nil {
			return a.Format(cur)
		}
	}
	return strconv.FormatInt(minor, 10)
}

// decodeOptional decodes a body that may be left out.
func decodeOptional(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return err
	}
	return input.Decode(body, v)
}

func (s *Server) sandboxDispute(w http.ResponseWriter, r *http.Request) {
	if s.sandbox == nil {
		s.fail(w, r, apperr.NotFoundf("the sandbox is off"))
		return
	}
	var req struct {
		Reason *string `json:"reason"`
	}
	if err := decodeOptional(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	reason, err := input.Text("reason", req.Reason, input.MaxSubject)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.sandbox.Dispute(r.Context(), r.PathValue("charge_id"), reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, disputeJSON(d))
}

func (s *Server) sandboxCloseDispute(w http.ResponseWriter, r *http.Request) {
	if s.sandbox == nil {
		s.fail(w, r, apperr.NotFoundf("the sandbox is off"))
		return
	}
	var req struct {
		Outcome *string `json:"outcome"`
	}
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Outcome == nil || (*req.Outcome != "won" && *req.Outcome != "lost") {
		s.fail(w, r, apperr.Invalidf("outcome", `is required: "won" or "lost"`))
		return
	}
	d, err := s.sandbox.CloseDispute(r.Context(), r.PathValue("charge_id"), *req.Outcome)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, disputeJSON(d))
}

// Disputes keeps the disputes of top-ups and applies the provider's refund
// and dispute events (*sqlstore.Refunds): topup.EventStore's part beyond
// Billing.
type Disputes interface {
	// ApplyRefund and ApplyDispute: see topup.EventStore.
	ApplyRefund(ctx context.Context, w refund.Word) (refund.Refund, bool, error)
	ApplyDispute(ctx context.Context, w refund.DisputeWord) (refund.DisputeRecord, bool, error)
	// ListDisputes lists an account's disputes, newest first.
	ListDisputes(ctx context.Context, accountID string) ([]refund.DisputeRecord, error)
}

// eventStore is the store provider events are applied to: Billing for
// charges and cards, Disputes for refunds and disputes.
type eventStore struct {
	Billing
	Disputes
}

// events is how the API applies provider events: Stripe's webhooks here,
// the sandbox's through the same function in internal/app.
func (s *Server) events() topup.Events {
	return topup.Events{Store: eventStore{s.billing, s.disputes}, Backoff: s.engine.RetryBackoff(), Log: s.log, OnDispute: s.metrics.ObserveDispute}
}

// disputeListJSON is a dispute of a top-up as GET …/disputes shows it.
type disputeListJSON struct {
	ID              string  `json:"id"`
	TopUpID         string  `json:"top_up_id"`
	Amount          string  `json:"amount"`
	Currency        string  `json:"currency"`
	Status          string  `json:"status"`
	Reason          string  `json:"reason"`
	AmountWithdrawn string  `json:"amount_withdrawn"`
	Reinstated      bool    `json:"reinstated"`
	CreatedAt       string  `json:"created_at"`
	ClosedAt        *string `json:"closed_at"`
}

func toDisputeJSON(d refund.DisputeRecord, c money.Currency) disputeListJSON {
	out := disputeListJSON{ID: d.ID, TopUpID: d.TopUpID, Amount: d.Amount.Format(c), Currency: c.Code, Status: string(d.Status), Reason: d.Reason,
		AmountWithdrawn: d.Withdrawn.Format(c), Reinstated: d.Reinstated, CreatedAt: formatTime(d.CreatedAt)}
	if !d.ClosedAt.IsZero() {
		t := formatTime(d.ClosedAt)
		out.ClosedAt = &t
	}
	return out
}

// listDisputes is GET /v1/accounts/{id}/disputes: the account's disputes,
// newest first (an account has few: paged in memory).
func (s *Server) listDisputes(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var all []refund.DisputeRecord
	if s.disputes != nil {
		if all, err = s.disputes.ListDisputes(r.Context(), acct.ID); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	ds, more, err := pageOf(all, func(d refund.DisputeRecord) string { return d.ID }, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[disputeListJSON]{Data: make([]disputeListJSON, 0, len(ds)), HasMore: more}
	for _, d := range ds {
		out.Data = append(out.Data, toDisputeJSON(d, acct.Currency))
	}
	writeJSON(w, http.StatusOK, out)
}
