package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

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

// decodeWallet reads the active grants LockColumns gives as one text:
// "id,category,priority,expires_at,created_at,remaining" per grant, joined
// by ";". They carry what spending needs; the store writes back only their
// remaining and status.
func decodeWallet(accountID, s string) ([]*ledger.Grant, error) {
	if s == "" {
		return nil, nil
	}
	out := make([]*ledger.Grant, 0, strings.Count(s, ";")+1)
	for part := range strings.SplitSeq(s, ";") {
		f := strings.Split(part, ",")
		if len(f) != 6 {
			return nil, fmt.Errorf("account %s: grant %q", accountID, part)
		}
		prio, err1 := strconv.Atoi(f[2])
		exp, err2 := strconv.ParseInt(f[3], 10, 64)
		created, err3 := strconv.ParseInt(f[4], 10, 64)
		rem, err4 := strconv.ParseInt(f[5], 10, 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, fmt.Errorf("account %s: grant %q: %w", accountID, part, err)
		}
		g := &ledger.Grant{ID: f[0], AccountID: accountID, Category: ledger.Category(f[1]), Priority: prio,
			Remaining: money.Amount(rem), Status: ledger.GrantActive, CreatedAt: fromMicros(created)}
		if exp != 0 {
			g.ExpiresAt = fromMicros(exp)
		}
		out = append(out, g)
	}
	return out, nil
}

// changedGrants are the grants of accounts' wallets whose remaining or
// status changed, less those just made (inserted whole).
func changedGrants(made []*ledger.Grant, accounts map[string]*ledger.AccountState) []*ledger.Grant {
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
	return changed
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
