package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/statement"
)

// StatementRange finds an account's statement of month m: its entries are
// those after the last entry written before the month began, through the
// last one written before it ended; the balances are those entries'
// balance_after. Each boundary is a binary search over the entries'
// numbers (about 20 primary-key reads for a million entries), so an old
// month of a busy account costs no scan of the entries after it. An
// account's entries never go back in time (the contract); if clocks ever
// made them, the statement would still be exact and consecutive months
// would still chain, only an entry near the boundary could show in the
// neighbouring month.
func (s *Ledger) StatementRange(ctx context.Context, accountID string, m statement.Month) (statement.Range, error) {
	r := statement.Range{AccountID: accountID, Month: m}
	var cur string
	var last int64
	err := s.read.QueryRowContext(ctx, `SELECT currency, last_seq FROM accounts WHERE id = $1`, accountID).Scan(&cur, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("account", accountID)
	}
	if err != nil {
		return r, err
	}
	if r.Currency, err = money.LookupCurrency(cur); err != nil {
		return r, err
	}
	if r.After, err = s.lastSeqBefore(ctx, accountID, last, m.Start()); err != nil {
		return r, err
	}
	if r.Through, err = s.lastSeqBefore(ctx, accountID, last, m.End()); err != nil {
		return r, err
	}
	r.Through = max(r.Through, r.After)
	if r.Opening, err = s.balanceAfter(ctx, accountID, r.After); err != nil {
		return r, err
	}
	r.Closing, err = s.balanceAfter(ctx, accountID, r.Through)
	return r, err
}

// lastSeqBefore is the number of the account's last entry written before
// t (0 when none was), among entries 1 through last.
func (s *core) lastSeqBefore(ctx context.Context, accountID string, last int64, t time.Time) (int64, error) {
	before := micros(t)
	lo, hi := int64(0), last // the answer is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		var at int64
		if err := s.read.QueryRowContext(ctx, `SELECT created_at FROM entries WHERE account_id = $1 AND seq = $2`, accountID, mid).Scan(&at); err != nil {
			return 0, fmt.Errorf("statement of %s: entry %d: %w", accountID, mid, err)
		}
		if at < before {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// balanceAfter is the balance after the account's entry seq (0 before the
// first).
func (s *core) balanceAfter(ctx context.Context, accountID string, seq int64) (money.Amount, error) {
	if seq == 0 {
		return 0, nil
	}
	var b money.Amount
	err := s.read.QueryRowContext(ctx, `SELECT balance_after FROM entries WHERE account_id = $1 AND seq = $2`, accountID, seq).Scan(&b)
	if err != nil {
		return 0, fmt.Errorf("statement of %s: entry %d: %w", accountID, seq, err)
	}
	return b, nil
}

// EachStatementEntry calls fn with each entry of r, oldest first, as the
// database returns them: nothing is collected, so a month of a million
// entries costs one row of memory. An error from fn stops the walk and is
// returned.
func (s *Ledger) EachStatementEntry(ctx context.Context, r statement.Range, fn func(ledger.Entry) error) error {
	if r.Through <= r.After {
		return nil
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE account_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq`,
		r.AccountID, r.After, r.Through)
	if err != nil {
		return fmt.Errorf("statement of %s: %w", r.AccountID, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows, r.AccountID)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
