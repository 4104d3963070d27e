package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/notify"
)

// RotationOverlap is how long a rotated-out secret still signs deliveries.
const RotationOverlap = 24 * time.Hour

// RotateEndpointSecret gives an endpoint a new secret and keeps the one it
// replaces signing deliveries for RotationOverlap, so that a receiver can
// switch without missing an event; it returns the endpoint with the new
// secret. Rotating again within the overlap drops the oldest secret. A
// closed account's endpoints cannot be changed (AccountClosed).
func (s *Outbox) RotateEndpointSecret(ctx context.Context, accountID, id string) (notify.Endpoint, error) {
	var e notify.Endpoint
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if err := acct.May(ledger.ActEndpoint); err != nil {
			return err
		}
		var at int64
		e = notify.Endpoint{AccountID: accountID}
		err = tx.QueryRowContext(ctx, `SELECT id, url, secret, created_at FROM webhook_endpoints WHERE account_id = $1 AND id = $2`+s.dialect.RowLock,
			accountID, id).Scan(&e.ID, &e.URL, &e.Secret, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("webhook endpoint", id)
		}
		if err != nil {
			return err
		}
		previous := e.Secret
		e.Secret, e.CreatedAt = notify.NewSecret(s.ids.RandomBytes(notify.KeyBytes)), fromMicros(at)
		_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET secret = $1, previous_secret = $2, previous_until = $3 WHERE id = $4`,
			e.Secret, previous, micros(s.clock.Now().Add(RotationOverlap)), e.ID)
		return err
	})
	return e, err
}

// ResendEvent sends an account's event to one of its endpoints again, as
// soon as the worker runs: its delivery to that endpoint becomes pending
// and due now (made if it never existed), given up giveUpAfter from now. The
// event keeps its id, so the receiver sees the same webhook-id.
func (s *Outbox) ResendEvent(ctx context.Context, accountID, endpointID, eventID string, giveUpAfter time.Duration) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE account_id = $1 AND id = $2`, accountID, endpointID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("webhook endpoint", endpointID)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications WHERE account_id = $1 AND id = $2`, accountID, eventID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("event", eventID)
		}
		now := s.clock.Now()
		_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, event_id, account_id, channel, endpoint_id, status, next_attempt_at, deadline, created_at)
VALUES ($1, $2, $3, 'webhook', $4, 'pending', $5, $6, $5)
ON CONFLICT (event_id, channel, endpoint_id) DO UPDATE SET status = 'pending', next_attempt_at = excluded.next_attempt_at,
deadline = excluded.deadline, lease_until = 0`,
			s.ids.New("dlv"), eventID, accountID, endpointID, micros(now), micros(now.Add(giveUpAfter)))
		return err
	})
}
