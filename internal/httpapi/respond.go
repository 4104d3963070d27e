package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/topup/topup/internal/apperr"
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

// decode reads a JSON object body into v, refusing unknown fields, trailing
// data, JSON of the wrong type (a number where a money string belongs) and
// bodies over the limit, each with the field named where there is one.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.Invalidf("", "the body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &tooBig):
		return apperr.New(apperr.PayloadTooLarge, "the body is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return apperr.Invalidf("", "the body must be a JSON object")
		}
		return apperr.Invalidf(wireField(field), "must be a %s, not a JSON %s", kindName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apperr.Invalidf("", "malformed JSON body: %v", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Invalidf(name, "unknown field")
	}
	return apperr.Invalidf("", "malformed JSON body: %v", err)
}

// wireField turns encoding/json's "events.3.amount" path into the
// contract's "events[3].amount".
func wireField(path string) string {
	parts := strings.Split(path, ".")
	var b strings.Builder
	for i, p := range parts {
		if _, err := strconv.Atoi(p); err == nil && i > 0 {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func kindName(k string) string {
	switch k {
	case "ptr", "string":
		return "string"
	case "slice":
		return "list"
	case "struct", "map":
		return "object"
	}
	return k
}
