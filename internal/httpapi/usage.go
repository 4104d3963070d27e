package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// MaxBatch is the most events one batch may carry.
const MaxBatch = 10_000

// usageRequest is a usage event; AccountID is only read in batches.
type usageRequest struct {
	AccountID      *string `json:"account_id,omitempty"`
	Amount         *string `json:"amount"`
	IdempotencyKey *string `json:"idempotency_key"`
	Description    *string `json:"description"`
	Subject        *string `json:"subject"`
}

// posting validates u; prefix is "" for a single call and "events[3]." in a
// batch, so refusals name the field as the client sent it.
func (u *usageRequest) posting(accountID, prefix string) (ledger.Posting, error) {
	amount, err := parseAmount(prefix+"amount", u.Amount)
	if err != nil {
		return ledger.Posting{}, err
	}
	debit, err := money.Neg(amount)
	if err != nil {
		return ledger.Posting{}, apperr.Invalidf(prefix+"amount", "is too large")
	}
	key, err := idempotencyKey(prefix+"idempotency_key", u.IdempotencyKey)
	if err != nil {
		return ledger.Posting{}, err
	}
	desc, err := optionalText(prefix+"description", u.Description, 1000)
	if err != nil {
		return ledger.Posting{}, err
	}
	subject, err := optionalText(prefix+"subject", u.Subject, 255)
	if err != nil {
		return ledger.Posting{}, err
	}
	return ledger.Posting{AccountID: accountID, Kind: ledger.KindUsage, Amount: debit, Description: desc, Subject: subject,
		IdempotencyKey: key, Call: ledger.ScopeUsage}, nil
}

// postOne submits one posting and answers 201, or 200 with
// Idempotent-Replayed for a replay.
func (s *Server) postOne(w http.ResponseWriter, r *http.Request, p ledger.Posting) {
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
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	} else if p.Kind == ledger.KindUsage {
		s.metrics.debits.Inc()
	}
	writeJSON(w, status, toResultJSON(res))
}

func (s *Server) postUsage(w http.ResponseWriter, r *http.Request) {
	var req usageRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.AccountID != nil {
		s.fail(w, r, apperr.Invalidf("account_id", "unknown field; the account is in the path"))
		return
	}
	p, err := req.posting(r.PathValue("id"), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.postOne(w, r, p)
}

// batchResult is one event's outcome: the single call's body, or an error.
type batchResult struct {
	*resultJSON
	Replayed *bool        `json:"replayed,omitempty"`
	Error    *errorObject `json:"error,omitempty"`
}

func (s *Server) postUsageBatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case req.Events == nil:
		s.fail(w, r, apperr.Invalidf("events", "is required"))
		return
	case len(req.Events) == 0:
		s.fail(w, r, apperr.Invalidf("events", "must hold at least one event"))
		return
	case len(req.Events) > MaxBatch:
		s.fail(w, r, apperr.Invalidf("events", "at most %d events per batch", MaxBatch))
		return
	}
	results := make([]batchResult, len(req.Events))
	postings := make([]ledger.Posting, 0, len(req.Events))
	index := make([]int, 0, len(req.Events)) // postings[k] is event index[k]
	for i, raw := range req.Events {
		prefix := "events[" + strconv.Itoa(i) + "]."
		p, err := decodeEvent(raw, prefix)
		if err != nil {
			_, obj := errorObjectOf(err)
			results[i].Error = &obj
			continue
		}
		postings = append(postings, p)
		index = append(index, i)
	}
	if len(postings) > 0 {
		out, err := s.committer.Submit(r.Context(), postings)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		debits := 0
		for k, res := range out {
			i := index[k]
			if res.Err != nil {
				// The ledger names fields as a single call would
				// ("idempotency_key"); a batch names them "events[3].idempotency_key".
				_, obj := errorObjectOf(res.Err)
				if obj.Field != "" {
					obj.Field = "events[" + strconv.Itoa(i) + "]." + obj.Field
				}
				results[i].Error = &obj
				continue
			}
			body := toResultJSON(res)
			replayed := res.Replayed
			if !replayed {
				debits++
			}
			results[i].resultJSON, results[i].Replayed = &body, &replayed
		}
		s.metrics.debits.Add(float64(debits))
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// decodeEvent reads one batch event on its own, so that one malformed event
// spoils only itself.
func decodeEvent(raw json.RawMessage, prefix string) (ledger.Posting, error) {
	var ev usageRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // as decode does for a single call
	if err := dec.Decode(&ev); err != nil {
		if e := apperr.As(decodeError(err)); e != nil && e.Field != "" {
			return ledger.Posting{}, e.WithField(prefix + e.Field)
		}
		return ledger.Posting{}, apperr.Invalidf(prefix[:len(prefix)-1], "must be a JSON object with string fields")
	}
	if ev.AccountID == nil || *ev.AccountID == "" {
		return ledger.Posting{}, apperr.Invalidf(prefix+"account_id", "is required")
	}
	return ev.posting(*ev.AccountID, prefix)
}

func (s *Server) postCredit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Amount         *string `json:"amount"`
		IdempotencyKey *string `json:"idempotency_key"`
		Description    *string `json:"description"`
		Kind           *string `json:"kind"`
	}
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	amount, err := parseAmount("amount", req.Amount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	key, err := idempotencyKey("idempotency_key", req.IdempotencyKey)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	desc, err := optionalText("description", req.Description, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	kind := ledger.KindCredit
	if req.Kind != nil {
		kind = ledger.Kind(*req.Kind)
		if kind != ledger.KindCredit && kind != ledger.KindAdjustment {
			s.fail(w, r, apperr.Invalidf("kind", "must be credit or adjustment"))
			return
		}
	}
	s.postOne(w, r, ledger.Posting{AccountID: r.PathValue("id"), Kind: kind, Amount: amount, Description: desc,
		IdempotencyKey: key, Call: ledger.ScopeCredit})
}

func (s *Server) listTransactions(w http.ResponseWriter, r *http.Request) {
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
	entries, more, err := s.store.Entries(r.Context(), acct.ID, p)
	if err != nil {
		s.fail(w, r, fmt.Errorf("list transactions of %s: %w", acct.ID, err))
		return
	}
	out := list[entryJSON]{Data: make([]entryJSON, 0, len(entries)), HasMore: more}
	for _, e := range entries {
		out.Data = append(out.Data, toEntryJSON(e, acct.Currency))
	}
	writeJSON(w, http.StatusOK, out)
}
