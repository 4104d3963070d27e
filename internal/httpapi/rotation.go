package httpapi

import (
	"net/http"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
)

// resendGiveUp is how long a resent event is retried, as a new event is.
const resendGiveUp = 72 * time.Hour

// rotateSecret answers the endpoint with its new secret (shown only here);
// for 24 hours deliveries are signed with the new and the old.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	e, err := s.alerts.RotateEndpointSecret(r.Context(), acct.ID, r.PathValue("endpoint_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toEndpointJSON(e, true))
}

// resendEvent queues an event for one endpoint again (202): the worker
// sends it with the same webhook-id.
func (s *Server) resendEvent(w http.ResponseWriter, r *http.Request) {
	var req struct {
		EventID *string `json:"event_id"`
	}
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	eventID, err := input.Text("event_id", req.EventID, input.MaxSubject)
	if err == nil && eventID == "" {
		err = apperr.Invalidf("event_id", "is required")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct, ok := s.account(w, r)
	if !ok {
		return
	}
	endpoint := r.PathValue("endpoint_id")
	if err := s.alerts.ResendEvent(r.Context(), acct.ID, endpoint, eventID, resendGiveUp); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"event_id": eventID, "endpoint_id": endpoint, "status": "queued"})
}
