package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
)

// MaxBatch is the most events one batch may carry.
const MaxBatch = input.MaxBatch

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
	var req input.Usage
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.AccountID != nil {
		s.fail(w, r, apperr.Invalidf("account_id", "unknown field; the account is in the path"))
		return
	}
	p, err := req.Posting(r.PathValue("id"), "", s.cfg.MaxAmount)
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
	// The events are judged one by one below (input.Event), so a bad
	// string in one spoils only that event: the body is read here without
	// input.Decode's text check, which would refuse the whole batch.
	var req input.Batch
	body, err := readBody(r)
	if err == nil {
		err = input.DecodeBatch(body, &req)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	results := make([]batchResult, len(req.Events))
	postings := make([]ledger.Posting, 0, len(req.Events))
	index := make([]int, 0, len(req.Events)) // postings[k] is event index[k]
	for i, raw := range req.Events {
		p, err := input.Event(raw, i, s.cfg.MaxAmount)
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

func (s *Server) postCredit(w http.ResponseWriter, r *http.Request) {
	var req input.Credit
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := req.Posting(r.PathValue("id"), s.cfg.MaxAmount, s.clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.postOne(w, r, p)
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
