package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// GrantColumns is what LoadGrants selects, in the order scanGrant reads.
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

// loadWallets gives each account of ids (sorted, locked) its wallet: its
// active grants, read for all of them in one statement, and the overdraft
// of its row.
func (s *core) loadWallets(ctx context.Context, tx *sql.Tx, accounts map[string]*ledger.AccountState, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	active := make(map[string][]*ledger.Grant, len(ids))
	err := s.bulk.LoadGrants(ctx, tx, ids, func(rows *sql.Rows) error {
		g, err := scanGrant(rows)
		if err != nil {
			return err
		}
		active[g.AccountID] = append(active[g.AccountID], g)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load grants: %w", err)
	}
	for _, id := range ids {
		if a := accounts[id]; a != nil {
			a.Wallet = ledger.NewWallet(active[id], a.Overdraft)
		}
	}
	return nil
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
