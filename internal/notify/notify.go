// Package notify delivers what accounts are told: every event written to
// the outbox (the notifications table, in the transaction of the change
// that caused it) is fanned out into one delivery per channel — the
// account's e-mail and each webhook endpoint it registered — and a worker
// sends them, retrying with exponential back-off until three days after the
// event. Delivery is at least once: a delivery is marked done in the same
// transaction that records its successful attempt, under the lease it was
// claimed with, so after a 2xx (or an accepted mail) it is never sent
// again, while a crash between the send and that record sends it again with
// the same event id.
package notify

import (
	"context"
	"encoding/json"
	"time"
)

// Channel is how a delivery reaches the account.
type Channel string

// Channels: the account's e-mail address, and a webhook endpoint.
const (
	Email   Channel = "email"
	Webhook Channel = "webhook"
)

// Event is one notification: its id stays the same on every channel and
// every retry, so a receiver can drop duplicates.
type Event struct {
	ID        string
	Type      string
	AccountID string
	Data      json.RawMessage
	CreatedAt time.Time
}

// eventJSON is an event on the wire: {id, type, created_at, account_id,
// data}.
type eventJSON struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	AccountID string          `json:"account_id"`
	Data      json.RawMessage `json:"data"`
}

// TimeFormat is how times are written: RFC 3339 in UTC with microseconds.
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// Body returns the JSON a webhook receives: the same bytes on every
// attempt.
func (e Event) Body() []byte {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	b, _ := json.Marshal(eventJSON{ID: e.ID, Type: e.Type, CreatedAt: e.CreatedAt.UTC().Format(TimeFormat), AccountID: e.AccountID, Data: data})
	return b
}

// Delivery is one event to send on one channel, as the worker claimed it.
type Delivery struct {
	ID      string
	Event   Event
	Channel Channel
	// Attempts counts the attempts made before this one.
	Attempts int
	// Deadline is when retrying stops: three days after the event.
	Deadline time.Time
	// Lease is the claim this delivery is held under; the outcome is
	// recorded only while the claim is still this one.
	Lease time.Time
	// To is the account's e-mail address (Email).
	To string
	// EndpointID, URL and Secret name the webhook endpoint (Webhook).
	EndpointID, URL, Secret string
	// PreviousSecret also signs while a rotated-out secret is honoured (24
	// hours after rotate_secret).
	PreviousSecret string
}

// Attempt is one try of a delivery, recorded whatever its outcome.
type Attempt struct {
	ID         string
	DeliveryID string
	EndpointID string
	EventID    string
	Type       string
	// Lease is the claim the attempt was made under.
	Lease time.Time
	// StatusCode is the webhook receiver's HTTP status; 0 when no answer
	// came (or for e-mail).
	StatusCode  int
	Error       string
	AttemptedAt time.Time
	// Delivered is true when the receiver took the event (2xx, or the mail
	// server accepted the message); Failed when retrying stopped without
	// that. NextAttemptAt is when the next try is due, zero when none is.
	Delivered     bool
	Failed        bool
	NextAttemptAt time.Time
}

// Endpoint is a webhook endpoint an account registered.
type Endpoint struct {
	ID        string
	AccountID string
	URL       string
	// Secret signs every POST to the endpoint (Topup-Signature).
	Secret    string
	CreatedAt time.Time
}

// Store is what the worker needs of storage (*sqlstore.Outbox). Dispatch
// fans new events out into deliveries; ClaimDeliveries leases due ones
// (SKIP LOCKED lets replicas share the work); FinishDelivery records an
// attempt and the delivery's new state in one transaction, only while the
// lease is the one claimed.
type Store interface {
	// PendingWork reports, from a read, whether any event waits to be
	// fanned out or any delivery is due: the idle worker writes nothing.
	PendingWork(ctx context.Context, now time.Time) (bool, error)
	Dispatch(ctx context.Context, now time.Time, giveUpAfter time.Duration, limit int) (int, error)
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// RenewDelivery moves a claim's end from held to until while the claim
	// is still the caller's; false when it was lost.
	RenewDelivery(ctx context.Context, id string, held, until time.Time) (bool, error)
	FinishDelivery(ctx context.Context, a Attempt) error
	ReleaseDeliveryLeases(ctx context.Context) error
}
