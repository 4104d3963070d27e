// Package apperr is the one error type that crosses from the domain to the
// edge: every refusal Topup gives a client carries a stable code, a message a
// person can read and, for bad input, the field it is about.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a stable word clients may switch on; the HTTP layer maps each to a
// status in one table.
type Code string

// The codes of the public contract (PRODUCT.md "Conventions").
const (
	Invalid             Code = "invalid"
	Unauthenticated     Code = "unauthenticated"
	Forbidden           Code = "forbidden"
	NotFound            Code = "not_found"
	Conflict            Code = "conflict"
	IdempotencyConflict Code = "idempotency_conflict"
	RequestInProgress   Code = "request_in_progress"
	CardDeclined        Code = "card_declined"
	AccountClosed       Code = "account_closed"
	// LimitExceeded refuses one more of something an account may hold only
	// so many of (cards, keys, budgets, endpoints, holds).
	LimitExceeded Code = "limit_exceeded"
	// InsufficientBalance refuses a hold that available credit cannot
	// cover (402).
	InsufficientBalance Code = "insufficient_balance"
	// RateLimited refuses a client address that failed authentication too
	// often; the response carries Retry-After.
	RateLimited     Code = "rate_limited"
	PayloadTooLarge Code = "payload_too_large"
	Internal        Code = "internal"
)

// Error is a refusal with a code. Field names the input at fault, using the
// wire name ("amount", "events[3].amount").
type Error struct {
	Code    Code
	Message string
	Field   string
	// Details are extra members of the error object on the wire, such as
	// decline_code and top_up_id for a declined card.
	Details map[string]string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// New returns an error with code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an invalid-input error naming field.
func Invalidf(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf returns a not-found error; foreign resources use it too, so that
// an account key cannot learn what other accounts own.
func NotFoundf(format string, args ...any) *Error {
	return &Error{Code: NotFound, Message: fmt.Sprintf(format, args...)}
}

// As returns the *Error in err's chain, or nil when err is an unexpected
// (internal) failure.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns err's code; an error without one is Internal.
func CodeOf(err error) Code {
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}

// WithField returns a copy of e naming field instead, used when a batch
// reports an event's error as events[3].amount.
func (e *Error) WithField(field string) *Error {
	c := *e
	c.Field = field
	return &c
}
