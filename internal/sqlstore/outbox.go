package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/topup"
)

// NotificationPage lists what an account was told, newest first, a page at
// a time.
func (s *Outbox) NotificationPage(ctx context.Context, accountID string, p ledger.Page) ([]topup.Notification, bool, error) {
	if _, err := s.account(ctx, accountID); err != nil {
		return nil, false, err
	}
	return pageRows(ctx, s.core, keyset{sel: `SELECT id, type, data, created_at FROM notifications`, id: "id", where: "account_id = $1",
		args: []any{accountID}, what: "notification"}, p, func(r rowScanner) (topup.Notification, error) {
		n := topup.Notification{AccountID: accountID}
		var data string
		var at int64
		err := r.Scan(&n.ID, &n.Type, &data, &at)
		n.Data, n.CreatedAt = json.RawMessage(data), fromMicros(at)
		return n, err
	})
}

// CreateEndpoint registers a webhook endpoint (its URL already checked by
// notify.CheckURL) with a new signing secret.
func (s *Outbox) CreateEndpoint(ctx context.Context, accountID, url string) (notify.Endpoint, error) {
	var out notify.Endpoint
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if err := acct.May(ledger.ActEndpoint); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE account_id = $1`, accountID).Scan(&n); err != nil {
			return err
		}
		if err := ledger.CheckLimit("webhook endpoints", n, ledger.MaxWebhookEndpoints); err != nil {
			return err
		}
		out = notify.Endpoint{ID: s.ids.New("we"), AccountID: accountID, URL: url, Secret: notify.NewSecret(s.ids.RandomBytes(notify.KeyBytes)),
			CreatedAt: s.clock.Now().UTC().Truncate(time.Microsecond)}
		_, err = tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, account_id, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)`,
			out.ID, accountID, url, out.Secret, micros(out.CreatedAt))
		return err
	})
	return out, err
}

// Endpoint returns one webhook endpoint of an account.
func (s *Outbox) Endpoint(ctx context.Context, accountID, id string) (notify.Endpoint, error) {
	e := notify.Endpoint{AccountID: accountID}
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT id, url, secret, created_at FROM webhook_endpoints WHERE account_id = $1 AND id = $2`, accountID, id).
		Scan(&e.ID, &e.URL, &e.Secret, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return e, notFound("webhook endpoint", id)
	}
	e.CreatedAt = fromMicros(at)
	return e, err
}

// Endpoints lists an account's webhook endpoints, newest first.
func (s *Outbox) Endpoints(ctx context.Context, accountID string, p ledger.Page) ([]notify.Endpoint, bool, error) {
	if _, err := s.account(ctx, accountID); err != nil {
		return nil, false, err
	}
	return pageRows(ctx, s.core, keyset{sel: `SELECT id, url, secret, created_at FROM webhook_endpoints`, id: "id", where: "account_id = $1",
		args: []any{accountID}, what: "webhook endpoint"}, p, func(r rowScanner) (notify.Endpoint, error) {
		e := notify.Endpoint{AccountID: accountID}
		var at int64
		err := r.Scan(&e.ID, &e.URL, &e.Secret, &at)
		e.CreatedAt = fromMicros(at)
		return e, err
	})
}

// DeleteEndpoint removes a webhook endpoint with its pending deliveries
// and its attempts: nothing is sent to it again.
func (s *Outbox) DeleteEndpoint(ctx context.Context, accountID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE account_id = $1 AND id = $2`, accountID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("webhook endpoint", id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE endpoint_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM delivery_attempts WHERE endpoint_id = $1`, id)
		return err
	})
}

// DeliveryAttempts lists the attempts to deliver to a webhook endpoint,
// newest first.
func (s *Outbox) DeliveryAttempts(ctx context.Context, accountID, endpointID string, p ledger.Page) ([]notify.Attempt, bool, error) {
	if _, err := s.Endpoint(ctx, accountID, endpointID); err != nil {
		return nil, false, err
	}
	return pageRows(ctx, s.core, keyset{sel: `SELECT id, delivery_id, event_id, type, status_code, error, attempted_at, next_attempt_at FROM delivery_attempts`,
		id: "id", where: "endpoint_id = $1", args: []any{endpointID}, what: "delivery attempt"}, p, func(r rowScanner) (notify.Attempt, error) {
		a := notify.Attempt{EndpointID: endpointID}
		err := r.Scan(&a.ID, &a.DeliveryID, &a.EventID, &a.Type, &a.StatusCode, &a.Error, timeScanner{&a.AttemptedAt}, timeScanner{&a.NextAttemptAt})
		return a, err
	})
}

// PendingWork reports, from a read, whether an event waits to be fanned
// out or a delivery is due, so that an idle worker never takes SQLite's
// one writer.
func (s *Outbox) PendingWork(ctx context.Context, now time.Time) (bool, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM notifications WHERE NOT dispatched LIMIT 1) a)
+ (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 AND lease_until <= $1 LIMIT 1) b)`,
		micros(now)).Scan(&n)
	return n > 0, err
}

// Dispatch fans up to limit new events out into deliveries — the
// account's e-mail and every webhook endpoint it had when the event was
// created (registered at or before the event's created_at) — due at once,
// given up giveUpAfter after the event, and marks the events dispatched.
// It returns how many events it took.
func (s *Outbox) Dispatch(ctx context.Context, now time.Time, giveUpAfter time.Duration, limit int) (int, error) {
	var taken int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		taken = 0
		rows, err := tx.QueryContext(ctx, `SELECT id, account_id, created_at FROM notifications WHERE NOT dispatched ORDER BY id LIMIT $1`+s.dialect.SkipLocked, limit)
		if err != nil {
			return err
		}
		type ev struct {
			id, account string
			at          int64
		}
		var evs []ev
		type endpoint struct {
			id      string
			created int64
		}
		accounts := map[string][]endpoint{} // account → its endpoints
		for rows.Next() {
			var e ev
			if err := rows.Scan(&e.id, &e.account, &e.at); err != nil {
				rows.Close()
				return err
			}
			evs = append(evs, e)
			accounts[e.account] = nil
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		args := make([]any, 0, len(accounts))
		marks := make([]string, 0, len(accounts))
		for a := range accounts {
			args = append(args, a)
			marks = append(marks, fmt.Sprintf("$%d", len(args)))
		}
		rows, err = tx.QueryContext(ctx, `SELECT id, account_id, created_at FROM webhook_endpoints WHERE account_id IN (`+strings.Join(marks, ",")+`) ORDER BY id`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var ep endpoint
			var account string
			if err := rows.Scan(&ep.id, &account, &ep.created); err != nil {
				rows.Close()
				return err
			}
			accounts[account] = append(accounts[account], ep)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		due := micros(now)
		insert := func(e ev, channel notify.Channel, endpoint string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, event_id, account_id, channel, endpoint_id, status, next_attempt_at, deadline, created_at)
VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $6) ON CONFLICT (event_id, channel, endpoint_id) DO NOTHING`,
				s.ids.New("dlv"), e.id, e.account, string(channel), endpoint, due, micros(fromMicros(e.at).Add(giveUpAfter)))
			return err
		}
		for _, e := range evs {
			if err := insert(e, notify.Email, ""); err != nil {
				return fmt.Errorf("fan out %s: %w", e.id, err)
			}
			for _, ep := range accounts[e.account] {
				if ep.created > e.at {
					// An endpoint gets only the events created after it was
					// registered, however late the fan-out runs.
					continue
				}
				if err := insert(e, notify.Webhook, ep.id); err != nil {
					return fmt.Errorf("fan out %s: %w", e.id, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE notifications SET dispatched = $1 WHERE id = $2`, true, e.id); err != nil {
				return err
			}
		}
		taken = len(evs)
		return nil
	})
	return taken, err
}

// ClaimDeliveries leases up to limit due deliveries (pending, next attempt
// reached, lease expired) to the caller and returns them with what sending
// needs: the event, the account's e-mail, the endpoint's URL and secret.
// On PostgreSQL, SKIP LOCKED lets replicas claim different rows.
func (s *Outbox) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]notify.Delivery, error) {
	var out []notify.Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 AND lease_until <= $1
ORDER BY next_attempt_at LIMIT $2`+s.dialect.SkipLocked, micros(now), limit)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		until := micros(now.Add(lease))
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET lease_until = $1 WHERE id = $2`, until, id); err != nil {
				return err
			}
			d := notify.Delivery{Lease: fromMicros(until)}
			var channel, data string
			var deadline, at, previousUntil int64
			err := tx.QueryRowContext(ctx, `SELECT d.id, d.channel, d.endpoint_id, d.attempts, d.deadline, n.id, n.type, n.account_id, n.data, n.created_at,
a.email, COALESCE(w.url, ''), COALESCE(w.secret, ''), COALESCE(w.previous_secret, ''), COALESCE(w.previous_until, 0)
FROM deliveries d JOIN notifications n ON n.id = d.event_id JOIN accounts a ON a.id = d.account_id
LEFT JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = $1`, id).Scan(&d.ID, &channel, &d.EndpointID, &d.Attempts, &deadline,
				&d.Event.ID, &d.Event.Type, &d.Event.AccountID, &data, &at, &d.To, &d.URL, &d.Secret, &d.PreviousSecret, &previousUntil)
			if err != nil {
				return fmt.Errorf("read delivery %s: %w", id, err)
			}
			if previousUntil <= micros(now) {
				d.PreviousSecret = ""
			}
			d.Channel, d.Deadline, d.Event.Data, d.Event.CreatedAt = notify.Channel(channel), fromMicros(deadline), json.RawMessage(data), fromMicros(at)
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// RenewDelivery moves the claim on a pending delivery from held to until
// and reports whether it did: only while the claim is still the caller's
// (lease_until still held). The notifier renews the claims of a pass this
// way while it sends, so that a dead replica's deliveries are taken up
// again within a short lease.
func (s *Outbox) RenewDelivery(ctx context.Context, id string, held, until time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE deliveries SET lease_until = $1 WHERE id = $2 AND status = 'pending' AND lease_until = $3`,
		micros(until), id, micros(held))
	if err != nil {
		return false, fmt.Errorf("renew the claim on delivery %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// FinishDelivery records an attempt and moves its delivery on — delivered,
// failed for good, or due again at a.NextAttemptAt — in one transaction,
// and only while the delivery is still held under the attempt's lease: a
// worker whose claim ran out and was taken over cannot overwrite the new
// holder's outcome (its attempt is still recorded).
func (s *Outbox) FinishDelivery(ctx context.Context, a notify.Attempt) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		status := "pending"
		switch {
		case a.Delivered:
			status = "delivered"
		case a.Failed:
			status = "failed"
		}
		var delivered int64
		if a.Delivered {
			delivered = micros(a.AttemptedAt)
		}
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3,
delivered_at = $4, lease_until = 0 WHERE id = $5 AND status = 'pending' AND lease_until = $6`,
			status, timeArg(a.NextAttemptAt), a.Error, delivered, a.DeliveryID, micros(a.Lease))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE id = $1`, a.DeliveryID).Scan(&exists); err != nil || exists == 0 {
				return err // the endpoint was removed meanwhile: nothing to record
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO delivery_attempts (id, delivery_id, endpoint_id, event_id, type, status_code, error, attempted_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, s.ids.New("att"), a.DeliveryID, a.EndpointID, a.EventID, a.Type, a.StatusCode, a.Error,
			micros(a.AttemptedAt), timeArg(a.NextAttemptAt))
		return err
	})
}

// ReleaseDeliveryLeases releases every claim on pending deliveries, for a
// process that knows it is the database's only user (SQLite) and starts
// after a crash.
func (s *Outbox) ReleaseDeliveryLeases(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET lease_until = 0 WHERE status = 'pending' AND lease_until > 0`)
		return err
	})
}
