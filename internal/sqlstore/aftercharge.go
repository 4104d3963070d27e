package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/topup/topup/internal/refund"
)

// MaxAfterChargeTopUps bounds one AfterCharge read: a page of the
// console's top-up history.
const MaxAfterChargeTopUps = 100

// AfterCharge reads what happened after the charge of some of an
// account's top-ups (a page of its history): their refunds and disputes,
// each newest first, by top-up id, in two queries. At most
// MaxAfterChargeTopUps ids; another account's top-ups read as none.
func (s *Refunds) AfterCharge(ctx context.Context, accountID string, topUpIDs []string) (map[string][]refund.Refund, map[string][]Dispute, error) {
	refunds, disputes := map[string][]refund.Refund{}, map[string][]Dispute{}
	if len(topUpIDs) == 0 {
		return refunds, disputes, nil
	}
	if len(topUpIDs) > MaxAfterChargeTopUps {
		return nil, nil, fmt.Errorf("after-charge read of %d top-ups: at most %d", len(topUpIDs), MaxAfterChargeTopUps)
	}
	args := []any{accountID}
	marks := make([]string, len(topUpIDs))
	for i, id := range topUpIDs {
		args = append(args, id)
		marks[i] = "$" + strconv.Itoa(i+2)
	}
	where := ` WHERE account_id = $1 AND top_up_id IN (` + strings.Join(marks, ", ") + `) ORDER BY created_at DESC, id DESC`
	rows, err := s.read.QueryContext(ctx, `SELECT `+refundCols+` FROM refunds`+where, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("refunds of %d top-ups of %s: %w", len(topUpIDs), accountID, err)
	}
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			rows.Close()
			return nil, nil, err
		}
		refunds[r.TopUpID] = append(refunds[r.TopUpID], r)
	}
	if err := cmp.Or(rows.Err(), rows.Close()); err != nil {
		return nil, nil, err
	}
	if rows, err = s.read.QueryContext(ctx, `SELECT `+disputeCols+` FROM disputes`+where, args...); err != nil {
		return nil, nil, fmt.Errorf("disputes of %d top-ups of %s: %w", len(topUpIDs), accountID, err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDispute(rows)
		if err != nil {
			return nil, nil, err
		}
		disputes[d.TopUpID] = append(disputes[d.TopUpID], d)
	}
	return refunds, disputes, rows.Err()
}
