package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// An account's held credit lives in its row (accounts.held, held_until), so
// that the debit path reads it with the lock it takes anyway; the holds
// table is read only when a hold is made, captured, released or listed, and
// when the time reaches held_until (some hold has expired): then the
// transaction that locked the account writes the expired holds' status and
// counts the others again (refreshHeld).

// holdColumns are a hold's columns, in the order scanHold reads.
const holdColumns = `id, account_id, amount, captured, status, subject, description, top_up_id, entry_id, expires_at, created_at`

func scanHold(r rowScanner) (ledger.Hold, error) {
	var h ledger.Hold
	var status string
	var topUp, entry sql.NullString
	var expires, created int64
	if err := r.Scan(&h.ID, &h.AccountID, &h.Amount, &h.Captured, &status, &h.Subject, &h.Description, &topUp, &entry, &expires, &created); err != nil {
		return h, err
	}
	h.Status, h.TopUpID, h.EntryID = ledger.HoldStatus(status), topUp.String, entry.String
	h.ExpiresAt, h.CreatedAt = fromMicros(expires), fromMicros(created)
	return h, nil
}

// heldUntilOf reads held_until: 0 is no active hold (the zero time).
func heldUntilOf(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

func heldUntilArg(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

// stale reports whether the held credit in a row read at now may count a
// hold that has expired since.
func stale(heldUntil, now time.Time) bool { return !heldUntil.IsZero() && !now.Before(heldUntil) }

// refreshHeld, inside the transaction that locked a, writes the expired
// status of a's holds whose expiry came and counts the rest again, when
// the time has reached a's held_until; otherwise it does nothing.
func (s *core) refreshHeld(ctx context.Context, tx *sql.Tx, a *ledger.AccountState, now time.Time) error {
	if !stale(a.HeldUntil, now) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE holds SET status = 'expired', updated_at = $1
WHERE account_id = $2 AND status = 'active' AND expires_at <= $1`, micros(now), a.ID); err != nil {
		return fmt.Errorf("expire holds of %s: %w", a.ID, err)
	}
	var held, until int64
	if err := tx.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT), CAST(COALESCE(MIN(expires_at), 0) AS BIGINT)
FROM holds WHERE account_id = $1 AND status = 'active'`, a.ID).Scan(&held, &until); err != nil {
		return fmt.Errorf("count holds of %s: %w", a.ID, err)
	}
	a.Held, a.HeldUntil = money.Amount(held), heldUntilOf(until)
	return s.writeHeld(ctx, tx, a)
}

// writeHeld writes a's held credit back to its row.
func (s *core) writeHeld(ctx context.Context, tx *sql.Tx, a *ledger.AccountState) error {
	if _, err := tx.ExecContext(ctx, `UPDATE accounts SET held = $1, held_until = $2 WHERE id = $3`,
		int64(a.Held), heldUntilArg(a.HeldUntil), a.ID); err != nil {
		return fmt.Errorf("write held credit of %s: %w", a.ID, err)
	}
	return nil
}

// heldAt returns what an account's active holds reserve at now, for a read
// outside any transaction: the row's held unless a hold expired since it was
// written, then the holds still active counted.
func (s *core) heldAt(ctx context.Context, accountID string, held money.Amount, heldUntil int64, now time.Time) (money.Amount, error) {
	if !stale(heldUntilOf(heldUntil), now) {
		return held, nil
	}
	var sum int64
	err := s.read.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM holds
WHERE account_id = $1 AND status = 'active' AND expires_at > $2`, accountID, micros(now)).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("held credit of %s: %w", accountID, err)
	}
	return money.Amount(sum), nil
}

// prepareHolds readies the group's locked accounts for their holds: it
// refreshes a held credit that may count an expired hold, and loads the
// holds the group's captures name (after the lock: a hold changes only
// under its account's lock).
func (s *core) prepareHolds(ctx context.Context, tx *sql.Tx, accounts map[string]*ledger.AccountState, postings []ledger.Posting, now time.Time) error {
	for _, a := range accounts {
		if err := s.refreshHeld(ctx, tx, a, now); err != nil {
			return err
		}
	}
	for i := range postings {
		p := &postings[i]
		a := accounts[p.AccountID]
		if p.HoldID == "" || a == nil || a.Holds[p.HoldID] != nil {
			continue
		}
		h, err := scanHold(tx.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1 AND account_id = $2`, p.HoldID, a.ID))
		if errors.Is(err, sql.ErrNoRows) {
			continue // Apply answers not found
		}
		if err != nil {
			return fmt.Errorf("load hold %s: %w", p.HoldID, err)
		}
		if a.Holds == nil {
			a.Holds = map[string]*ledger.Hold{}
		}
		a.Holds[h.ID] = &h
	}
	return nil
}

// writeHolds writes the holds a plan captured and the held credit of the
// accounts whose holds changed.
func (s *core) writeHolds(ctx context.Context, tx *sql.Tx, captured []*ledger.Hold, accounts map[string]*ledger.AccountState, now time.Time) error {
	for _, h := range captured {
		if _, err := tx.ExecContext(ctx, `UPDATE holds SET status = 'captured', captured = $1, entry_id = $2, updated_at = $3 WHERE id = $4`,
			int64(h.Captured), h.EntryID, micros(now), h.ID); err != nil {
			return fmt.Errorf("capture hold %s: %w", h.ID, err)
		}
	}
	for _, a := range accounts {
		if a.HeldChanged {
			if err := s.writeHeld(ctx, tx, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateHold creates the hold r asks for under its account's lock
// (ledger.NewHold: available credit, the limit of active holds, a closed
// account), or replays the hold its key made. When the hold takes available
// credit below the Automatic Top-Up threshold, the top-up is created in the
// same transaction and the hold names it.
func (s *Ledger) CreateHold(ctx context.Context, r ledger.HoldRequest) (ledger.Hold, bool, error) {
	var out ledger.Hold
	var replayed bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, r.AccountID)
		if err != nil {
			return err
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		if err := s.refreshHeld(ctx, tx, &acct, now); err != nil {
			return err
		}
		var hash string
		row := tx.QueryRowContext(ctx, `SELECT `+holdColumns+`, request_hash FROM holds WHERE account_id = $1 AND idempotency_key = $2`, acct.ID, r.IdempotencyKey)
		out, err = scanHold(trailingScanner{row, []any{&hash}})
		if err == nil {
			if hash != r.Hash() {
				return &apperr.Error{Code: apperr.IdempotencyConflict, Field: "idempotency_key", Message: "this idempotency_key was used with a different request"}
			}
			out.Status, replayed = out.StatusAt(now), true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read hold by key: %w", err)
		}
		out, err = s.createHold(ctx, tx, &acct, r, now)
		return err
	})
	if err != nil {
		return ledger.Hold{}, false, err
	}
	return out, replayed, nil
}

// createHold decides and writes a new hold on acct, locked, and asks
// Automatic Top-Up about the available credit it leaves.
func (s *Ledger) createHold(ctx context.Context, tx *sql.Tx, acct *ledger.AccountState, r ledger.HoldRequest, now time.Time) (ledger.Hold, error) {
	var active int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM holds WHERE account_id = $1 AND status = 'active' AND expires_at > $2`,
		acct.ID, micros(now)).Scan(&active); err != nil {
		return ledger.Hold{}, fmt.Errorf("count active holds: %w", err)
	}
	h, err := ledger.NewHold(acct, r, active, now, s.ids.New("hld"))
	if err != nil {
		return ledger.Hold{}, err
	}
	st, _, err := s.settingsTx(ctx, tx, acct.ID)
	if err != nil {
		return ledger.Hold{}, err
	}
	tu, err := s.maybeTrigger(ctx, tx, *acct, st, topup.TriggerThreshold, now)
	if err != nil {
		return ledger.Hold{}, err
	}
	if tu != nil {
		h.TopUpID = tu.ID
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO holds (id, account_id, amount, status, subject, description, top_up_id, idempotency_key, request_hash,
expires_at, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $10)`,
		h.ID, h.AccountID, int64(h.Amount), h.Subject, h.Description, NullIfEmpty(h.TopUpID), r.IdempotencyKey, r.Hash(), micros(h.ExpiresAt), micros(now))
	if err != nil {
		return ledger.Hold{}, fmt.Errorf("insert hold: %w", err)
	}
	return h, s.writeHeld(ctx, tx, acct)
}

// Hold returns one of an account's holds, with its status at now.
func (s *Ledger) Hold(ctx context.Context, accountID, holdID string) (ledger.Hold, error) {
	h, err := scanHold(s.read.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1 AND account_id = $2`, holdID, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return h, notFound("hold", holdID)
	}
	if err != nil {
		return h, fmt.Errorf("read hold %s: %w", holdID, err)
	}
	h.Status = h.StatusAt(s.clock.Now())
	return h, nil
}

// Holds lists an account's holds, newest first, with their status at now;
// those of status only, when it is not empty (an active hold past its
// expires_at is listed as expired, whatever its row says yet).
func (s *Ledger) Holds(ctx context.Context, accountID string, status ledger.HoldStatus, p ledger.Page) ([]ledger.Hold, bool, error) {
	now := s.clock.Now()
	k := keyset{sel: `SELECT ` + holdColumns + ` FROM holds`, id: "id", where: "account_id = $1", args: []any{accountID}, what: "hold"}
	switch status {
	case "":
	case ledger.HoldActive:
		k.where += " AND status = 'active' AND expires_at > $2"
		k.args = append(k.args, micros(now))
	case ledger.HoldExpired:
		k.where += " AND (status = 'expired' OR (status = 'active' AND expires_at <= $2))"
		k.args = append(k.args, micros(now))
	default:
		k.where += " AND status = $2"
		k.args = append(k.args, string(status))
	}
	return pageRows(ctx, s.core, k, p, func(r rowScanner) (ledger.Hold, error) {
		h, err := scanHold(r)
		h.Status = h.StatusAt(now)
		return h, err
	})
}

// ReleaseHold releases one of an account's holds under the account's lock
// (ledger.ReleaseHold); a hold already released is answered as it is.
func (s *Ledger) ReleaseHold(ctx context.Context, accountID, holdID string) (ledger.Hold, error) {
	var out ledger.Hold
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		if err := s.refreshHeld(ctx, tx, &acct, now); err != nil {
			return err
		}
		out, err = scanHold(tx.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1 AND account_id = $2`, holdID, accountID))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("hold", holdID)
		}
		if err != nil {
			return fmt.Errorf("read hold %s: %w", holdID, err)
		}
		changed, err := ledger.ReleaseHold(&acct, &out, now)
		if err != nil || !changed {
			out.Status = out.StatusAt(now)
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE holds SET status = 'released', updated_at = $1 WHERE id = $2`, micros(now), holdID); err != nil {
			return fmt.Errorf("release hold %s: %w", holdID, err)
		}
		return s.writeHeld(ctx, tx, &acct)
	})
	return out, err
}

// trailingScanner scans a row whose last columns go to trail and the
// others to the destinations Scan is given, so that a shared scan function
// can read a row with more columns.
type trailingScanner struct {
	r     rowScanner
	trail []any
}

func (t trailingScanner) Scan(dest ...any) error { return t.r.Scan(append(dest, t.trail...)...) }
