package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// GrantColumns are a grant's columns, in the order scanGrant reads and
// GrantArgs writes.
const GrantColumns = `id, account_id, category, source, source_id, amount, remaining, paid_back, priority, expires_at, status, created_at`

func scanGrant(r rowScanner) (*ledger.Grant, error) {
	g := &ledger.Grant{}
	var category, source, status string
	var expires, created int64
	if err := r.Scan(&g.ID, &g.AccountID, &category, &source, &g.SourceID, &g.Amount, &g.Remaining, &g.PaidBack, &g.Priority,
		&expires, &status, &created); err != nil {
		return nil, err
	}
	g.Category, g.Source, g.Status, g.CreatedAt = ledger.Category(category), ledger.GrantSource(source), ledger.GrantStatus(status), fromMicros(created)
	if expires != 0 {
		g.ExpiresAt = fromMicros(expires)
	}
	return g, nil
}

// loadWallet gives acct, locked, its wallet: its active grants and the
// overdraft of its row. (The debit path reads the wallets of a whole group
// with the accounts themselves, in LockAccounts.)
func (s *core) loadWallet(ctx context.Context, tx *sql.Tx, acct *ledger.AccountState) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+GrantColumns+` FROM grants WHERE account_id = $1 AND status = 'active'`, acct.ID)
	if err != nil {
		return fmt.Errorf("load grants: %w", err)
	}
	defer rows.Close()
	var active []*ledger.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return err
		}
		active = append(active, g)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	acct.Wallet = ledger.NewWallet(active, acct.Overdraft)
	return nil
}

// nullGrant scans the grant columns of LockColumns, NULL for an account
// without active grants.
type nullGrant struct {
	id, account, category, source, sourceID, status         sql.NullString
	amount, remaining, paidBack, priority, expires, created sql.NullInt64
}

func (n *nullGrant) dest() []any {
	return []any{&n.id, &n.account, &n.category, &n.source, &n.sourceID, &n.amount, &n.remaining, &n.paidBack, &n.priority,
		&n.expires, &n.status, &n.created}
}

func (n *nullGrant) grant() *ledger.Grant {
	g := &ledger.Grant{ID: n.id.String, AccountID: n.account.String, Category: ledger.Category(n.category.String),
		Source: ledger.GrantSource(n.source.String), SourceID: n.sourceID.String, Amount: money.Amount(n.amount.Int64),
		Remaining: money.Amount(n.remaining.Int64), PaidBack: money.Amount(n.paidBack.Int64), Priority: int(n.priority.Int64),
		Status: ledger.GrantStatus(n.status.String), CreatedAt: fromMicros(n.created.Int64)}
	if n.expires.Int64 != 0 {
		g.ExpiresAt = fromMicros(n.expires.Int64)
	}
	return g
}

// writeGrants inserts the grants a plan made and writes back the others its
// wallets changed (remaining and status).
func (s *core) writeGrants(ctx context.Context, tx *sql.Tx, made []*ledger.Grant, accounts map[string]*ledger.AccountState) error {
	var changed []*ledger.Grant
	isNew := make(map[string]bool, len(made))
	for _, g := range made {
		isNew[g.ID] = true
	}
	for _, a := range accounts {
		if a.Wallet == nil {
			continue
		}
		for _, g := range a.Wallet.Changed() {
			if !isNew[g.ID] {
				changed = append(changed, g)
			}
		}
	}
	if err := s.bulk.InsertGrants(ctx, tx, made); err != nil {
		return fmt.Errorf("insert grants: %w", err)
	}
	if err := s.bulk.UpdateGrants(ctx, tx, changed); err != nil {
		return fmt.Errorf("update grants: %w", err)
	}
	return nil
}

// GrantArgs are a grant's values in GrantColumns order, for the bulk
// inserts.
func GrantArgs(g *ledger.Grant) []any {
	var expires int64
	if !g.ExpiresAt.IsZero() {
		expires = micros(g.ExpiresAt)
	}
	return []any{g.ID, g.AccountID, string(g.Category), string(g.Source), g.SourceID, int64(g.Amount), int64(g.Remaining),
		int64(g.PaidBack), int64(g.Priority), expires, string(g.Status), micros(g.CreatedAt)}
}

// Grants lists an account's grants, newest first, those of status only
// when status is not empty.
func (s *Ledger) Grants(ctx context.Context, accountID string, status ledger.GrantStatus, p ledger.Page) ([]ledger.Grant, bool, error) {
	k := keyset{sel: `SELECT ` + GrantColumns + ` FROM grants`, id: "id", where: "account_id = $1", args: []any{accountID}, what: "grant"}
	if status != "" {
		k.where += " AND status = $2"
		k.args = append(k.args, string(status))
	}
	return pageRows(ctx, s.core, k, p, func(r rowScanner) (ledger.Grant, error) {
		g, err := scanGrant(r)
		if err != nil {
			return ledger.Grant{}, err
		}
		return *g, nil
	})
}

// Credit is what remains of an account's active grants, by category.
func (s *Ledger) Credit(ctx context.Context, accountID string) (paid, promotional money.Amount, err error) {
	rows, err := s.read.QueryContext(ctx, `SELECT category, CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM grants
WHERE account_id = $1 AND status = 'active' GROUP BY category`, accountID)
	if err != nil {
		return 0, 0, fmt.Errorf("credit of %s: %w", accountID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var sum money.Amount
		if err := rows.Scan(&c, &sum); err != nil {
			return 0, 0, err
		}
		if ledger.Category(c) == ledger.Paid {
			paid = sum
		} else {
			promotional = sum
		}
	}
	return paid, promotional, rows.Err()
}
