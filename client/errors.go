package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// The stable error codes of the API (error.code); the message beside them
// is for people and may change, the code does not.
const (
	CodeInvalid             = "invalid"
	CodeUnauthenticated     = "unauthenticated"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodeConflict            = "conflict"
	CodeIdempotencyConflict = "idempotency_conflict"
	CodeRequestInProgress   = "request_in_progress"
	CodeCardDeclined        = "card_declined"
	CodeAccountClosed       = "account_closed"
	CodeInsufficientBalance = "insufficient_balance"
	CodeLimitExceeded       = "limit_exceeded"
	CodeRateLimited         = "rate_limited"
	CodePayloadTooLarge     = "payload_too_large"
	CodeInternal            = "internal"
)

// Error is an answer the server refused with: its HTTP status and the
// body's {"error": {...}}. A batch event's own error has Status 0.
type Error struct {
	// Status is the HTTP status (402 for a declined card…).
	Status int `json:"-"`
	// Code is one of the Code constants.
	Code string `json:"code"`
	// Message says what went wrong, for a person.
	Message string `json:"message"`
	// Field names the input at fault ("amount", "events[3].amount").
	Field string `json:"field,omitempty"`
	// DeclineCode is the card's decline code with card_declined
	// ("insufficient_funds").
	DeclineCode string `json:"decline_code,omitempty"`
	// TopUpID is the failed top-up with card_declined: it is kept and
	// listed, and replaying its key answers the same error.
	TopUpID string `json:"top_up_id,omitempty"`
}

// Error spells the refusal with its status, code and field.
func (e *Error) Error() string {
	s := "topup: " + e.Code
	if e.Status != 0 {
		s = fmt.Sprintf("topup: %d %s", e.Status, e.Code)
	}
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.DeclineCode != "" {
		s += " [" + e.DeclineCode + "]"
	}
	return s + ": " + e.Message
}

// Is makes errors.Is(err, client.ErrNotFound) match any error with that
// code, whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Status == 0 || t.Status == e.Status)
}

// Errors to match with errors.Is, one per stable code.
var (
	ErrInvalid             = &Error{Code: CodeInvalid}
	ErrUnauthenticated     = &Error{Code: CodeUnauthenticated}
	ErrForbidden           = &Error{Code: CodeForbidden}
	ErrNotFound            = &Error{Code: CodeNotFound}
	ErrConflict            = &Error{Code: CodeConflict}
	ErrIdempotencyConflict = &Error{Code: CodeIdempotencyConflict}
	ErrRequestInProgress   = &Error{Code: CodeRequestInProgress}
	ErrCardDeclined        = &Error{Code: CodeCardDeclined}
	ErrAccountClosed       = &Error{Code: CodeAccountClosed}
	ErrInsufficientBalance = &Error{Code: CodeInsufficientBalance}
	ErrLimitExceeded       = &Error{Code: CodeLimitExceeded}
	ErrRateLimited         = &Error{Code: CodeRateLimited}
	ErrPayloadTooLarge     = &Error{Code: CodePayloadTooLarge}
	ErrInternal            = &Error{Code: CodeInternal}
)

// AsError returns the *Error in err's chain, or nil when err is not a
// refusal by the server (a network error, a canceled context).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// HasCode reports whether err is a refusal with that code.
func HasCode(err error, code string) bool {
	e := AsError(err)
	return e != nil && e.Code == code
}

// errorOf reads a non-2xx answer; a body that is not the API's error shape
// (a proxy's page) still gives an *Error with the status.
func errorOf(r *response) *Error {
	var body struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(r.body, &body) == nil && body.Error != nil && body.Error.Code != "" {
		body.Error.Status = r.status
		return body.Error
	}
	code := CodeInternal
	if r.status < 500 {
		code = CodeInvalid
	}
	msg := http.StatusText(r.status)
	if len(r.body) > 0 {
		msg = string(clip(r.body))
	}
	return &Error{Status: r.status, Code: code, Message: msg}
}

func clip(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}
