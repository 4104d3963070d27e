package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/topup/topup/internal/ledger"
)

// UsageScopes selects the idempotency rows of usage calls (scope
// "<account>/usage": account ids hold no "/", and no other kind of call
// ends in "usage"). It is word for word the WHERE clause of migration
// 0020's partial index idempotency_usage_age, so that both planners use
// that index for it (Dialect.PruneUsageKeys).
const UsageScopes = `scope LIKE '%/` + ledger.ScopeUsage + `'`

// PruneUsageKeys deletes up to limit usage idempotency rows written before
// before, oldest first, in one short transaction, and returns how many it
// deleted. Every other kind of key (credits, captures, voids, top-ups) is
// kept for ever, and entries keep their idempotency_key column for ever:
// only the replay of a usage call is forgotten.
//
// It takes no account lock, although the debit path reads a key's row only
// under its account's lock, because a request meeting the deletion is
// answered as the contract allows whichever side wins. The row is older
// than the retention, so it may be remembered or forgotten: a request that
// reads it before the delete commits replays the first answer (on
// PostgreSQL it still sees the row, on SQLite the two transactions run one
// after the other); one that reads after finds no key and debits again,
// writing a new row. That new row can never be deleted by the pass that
// raced it: its created_at is the request's now, later than before (at
// least 24 hours ago), and on PostgreSQL it is not even in the delete's
// snapshot. Nor can the new row collide with the old one: a request
// inserts its key only when its read found none, that is once the delete
// has committed.
//
// On SQLite it takes its turn for the writer as the committer's groups do
// (after every waiting short write, writeGate): a pass of thousands of
// rows per transaction is background work no top-up should wait for.
func (s *Ledger) PruneUsageKeys(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int64
	err := s.inGroupTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.dialect.PruneUsageKeys, micros(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune usage idempotency keys before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return int(n), nil
}
