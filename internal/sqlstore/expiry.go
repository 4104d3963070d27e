package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// completeGrants loads in full, inside the group's transaction, the grants
// the plan may tell of or void: those of the group's wallets whose expiry
// has come by now (credit.expired carries the grant, and SQLite's lock
// statement reads only what spending needs), and those voids name; a
// named grant that is no longer active is remembered by its account's
// wallet, so that its void answers 409 rather than 404. A group that
// meets no expiry and holds no void costs nothing here.
func (s *core) completeGrants(ctx context.Context, tx *sql.Tx, accounts map[string]*ledger.AccountState, postings []ledger.Posting, now time.Time) error {
	ids := grantsToComplete(accounts, postings, now)
	if len(ids) == 0 {
		return nil
	}
	marks := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		marks[i], args[i] = "$"+strconv.Itoa(i+1), id
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+GrantColumns+` FROM grants WHERE id IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return fmt.Errorf("load grants to expire or void: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return err
		}
		a := accounts[g.AccountID]
		if a == nil || a.Wallet == nil {
			continue
		}
		if active := a.Wallet.Active(g.ID); active != nil {
			active.Amount, active.Source, active.SourceID, active.PaidBack = g.Amount, g.Source, g.SourceID, g.PaidBack
		} else if g.Status != ledger.GrantActive {
			a.Wallet.Remember(g)
		}
	}
	return rows.Err()
}

// grantsToComplete lists the grants completeGrants loads: those of the
// wallets that expire by now and were read without their details (a
// grant's amount is never zero), and those voids name.
func grantsToComplete(accounts map[string]*ledger.AccountState, postings []ledger.Posting, now time.Time) []string {
	var ids []string
	for _, a := range accounts {
		if a.Wallet == nil {
			continue
		}
		for _, g := range a.Wallet.Grants() {
			if g.Amount == 0 && g.ExpiredAt(now) {
				ids = append(ids, g.ID)
			}
		}
	}
	for i := range postings {
		if p := &postings[i]; p.Kind == ledger.KindVoid && p.GrantID != "" {
			ids = append(ids, p.GrantID)
		}
	}
	return ids
}

// Grant returns one of an account's grants; NotFound when the account has
// no such grant.
func (s *Ledger) Grant(ctx context.Context, accountID, id string) (ledger.Grant, error) {
	g, err := scanGrant(s.read.QueryRowContext(ctx, `SELECT `+GrantColumns+` FROM grants WHERE account_id = $1 AND id = $2`, accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Grant{}, apperr.NotFoundf("no grant %s", id)
	}
	if err != nil {
		return ledger.Grant{}, fmt.Errorf("grant %s: %w", id, err)
	}
	return *g, nil
}

// ExpiryDue lists up to limit accounts that hold an active grant whose
// expires_at has come by now, the longest overdue first (grants_expiry).
func (s *Ledger) ExpiryDue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT account_id FROM grants WHERE status = 'active' AND expires_at > 0 AND expires_at <= $1
GROUP BY account_id ORDER BY MIN(expires_at), account_id LIMIT $2`, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("accounts with grants to expire: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// WarnExpiring writes credit.expiring for up to limit active grants with
// something left that expire after now and within ledger.ExpiringNotice
// of it, and were not warned yet, and returns how many it warned. Each
// grant is marked (expiring_sent_at) in the transaction that writes its
// event, by a statement that only marks a grant still unwarned and active,
// so that a grant is warned once whatever replicas or crashes do; one
// grant per transaction, so that it never holds one grant's row while
// waiting for another's.
func (s *Ledger) WarnExpiring(ctx context.Context, now time.Time, limit int) (int, error) {
	type due struct {
		id  string
		cur money.Currency
	}
	rows, err := s.read.QueryContext(ctx, `SELECT g.id, a.currency FROM grants g JOIN accounts a ON a.id = g.account_id
WHERE g.status = 'active' AND g.expires_at > $1 AND g.expires_at <= $2 AND g.expiring_sent_at = 0 AND g.remaining > 0
ORDER BY g.expires_at, g.id LIMIT $3`, micros(now), micros(now.Add(ledger.ExpiringNotice)), limit)
	if err != nil {
		return 0, fmt.Errorf("grants to warn of: %w", err)
	}
	var list []due
	for rows.Next() {
		var d due
		var code string
		if err := rows.Scan(&d.id, &code); err != nil {
			rows.Close()
			return 0, err
		}
		if d.cur, err = money.LookupCurrency(code); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, d)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	warned := 0
	for _, d := range list {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			g, err := scanGrant(tx.QueryRowContext(ctx, `UPDATE grants SET expiring_sent_at = $1
WHERE id = $2 AND expiring_sent_at = 0 AND status = 'active' AND remaining > 0 AND expires_at > $1 RETURNING `+GrantColumns, micros(now), d.id))
			if errors.Is(err, sql.ErrNoRows) {
				return nil // spent, expired, voided or warned since the list was read
			}
			if err != nil {
				return err
			}
			warned++
			return s.writeEvents(ctx, tx, []ledger.Event{ledger.ExpiringEvent(s.ids.New("evt"), g, d.cur)}, now)
		})
		if err != nil {
			return warned, fmt.Errorf("warn of grant %s: %w", d.id, err)
		}
	}
	return warned, nil
}

// TakeLease takes or renews the lease name for owner until now+ttl, and
// reports whether owner holds it: it does unless another owner's lease
// has not run out yet. A worker that must run on one replica at a time
// takes it before each pass.
func (s *Ledger) TakeLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	var held bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO worker_leases (name, owner, lease_until) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
WHERE worker_leases.owner = excluded.owner OR worker_leases.lease_until <= $4`, name, owner, micros(now.Add(ttl)), micros(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		held = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	return held, nil
}

// ReleaseLease gives up owner's lease name, so that another replica may
// take it at once.
func (s *Ledger) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.exec(ctx, `UPDATE worker_leases SET lease_until = 0 WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
