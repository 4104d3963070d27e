package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/ledger"
)

// GrantsExpiringBefore lists an account's active grants whose expires_at
// comes before before, soonest first (then by id), at most limit: what the
// console's overview says expires soon. It reads only the account's active
// grants (the index grants_active), never its whole history.
func (s *Ledger) GrantsExpiringBefore(ctx context.Context, accountID string, before time.Time, limit int) ([]ledger.Grant, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+GrantColumns+` FROM grants
WHERE account_id = $1 AND status = 'active' AND expires_at > 0 AND expires_at < $2 ORDER BY expires_at, id LIMIT $3`,
		accountID, micros(before), limit)
	if err != nil {
		return nil, fmt.Errorf("grants of %s expiring before %s: %w", accountID, before, err)
	}
	defer rows.Close()
	var out []ledger.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *g)
	}
	return out, rows.Err()
}

// GrantsByID returns those of ids that are grants of the account, by id
// (an id of another account's grant, or of none, is left out): the grants
// that one page of transactions made, for the console to show their terms.
func (s *Ledger) GrantsByID(ctx context.Context, accountID string, ids []string) (map[string]ledger.Grant, error) {
	out := make(map[string]ledger.Grant, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{accountID}
	marks := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		marks[i] = "$" + strconv.Itoa(i+2)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+GrantColumns+` FROM grants WHERE account_id = $1 AND id IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("grants of %s by id: %w", accountID, err)
	}
	defer rows.Close()
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		out[g.ID] = *g
	}
	return out, rows.Err()
}
