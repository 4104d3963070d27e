package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
)

// statusOf maps each error code to its HTTP status: the one table.
var statusOf = map[apperr.Code]int{
	apperr.Invalid:             http.StatusBadRequest,
	apperr.Unauthenticated:     http.StatusUnauthorized,
	apperr.Forbidden:           http.StatusForbidden,
	apperr.NotFound:            http.StatusNotFound,
	apperr.Conflict:            http.StatusConflict,
	apperr.IdempotencyConflict: http.StatusConflict,
	apperr.RequestInProgress:   http.StatusConflict,
	apperr.CardDeclined:        http.StatusPaymentRequired,
	apperr.AccountClosed:       http.StatusConflict,
	apperr.LimitExceeded:       http.StatusConflict,
	apperr.InsufficientBalance: http.StatusPaymentRequired,
	apperr.RateLimited:         http.StatusTooManyRequests,
	apperr.PayloadTooLarge:     http.StatusRequestEntityTooLarge,
	apperr.Internal:            http.StatusInternalServerError,
}

// errorBody is the wire form of an error: {"error": {...}}.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code    apperr.Code `json:"code"`
	Message string      `json:"message"`
	Field   string      `json:"field,omitempty"`
	// Details such as decline_code and top_up_id are merged in by
	// MarshalJSON.
	Details map[string]string `json:"-"`
}

func (o errorObject) MarshalJSON() ([]byte, error) {
	m := map[string]string{"code": string(o.Code), "message": o.Message}
	if o.Field != "" {
		m["field"] = o.Field
	}
	for k, v := range o.Details {
		m[k] = v
	}
	return json.Marshal(m)
}

// errorObjectOf turns err into its wire form; internal errors are logged by
// the caller and shown only as "internal error".
func errorObjectOf(err error) (int, errorObject) {
	e := apperr.As(err)
	if e == nil {
		return http.StatusInternalServerError, errorObject{Code: apperr.Internal, Message: "internal error"}
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return status, errorObject{Code: e.Code, Message: e.Message, Field: e.Field, Details: e.Details}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	body = append(body, '\n')
	w.Write(body)
}

// decode reads a JSON object body into v with input.Decode: unknown
// fields, trailing data, JSON of the wrong type and text holding U+0000 or
// invalid UTF-8 are refused naming the field; a body over the limit
// (TOPUP_MAX_BODY) is 413 whatever it holds, since it is read whole first.
func decode(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return input.Decode(body, v)
}

// readBody reads the whole body, up to the limit instrument set.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, tooLarge(tooBig.Limit)
	case err != nil:
		return nil, apperr.Invalidf("", "the body could not be read: %v", err)
	}
	return body, nil
}

func tooLarge(limit int64) error {
	return apperr.New(apperr.PayloadTooLarge, "the body is larger than %d bytes (TOPUP_MAX_BODY)", limit)
}
