package sqlstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
)

// keyset is one newest-first list: ids sort by creation time, so a page is
// the rows whose id is below the cursor, and has_more asks for one row more.
type keyset struct {
	// sel is "SELECT columns FROM table [JOIN …]".
	sel string
	// id is the id column ("id", "t.id").
	id string
	// where filters the list with $1…$len(args); empty for none.
	where string
	args  []any
	// what names a row for a refused cursor, as "no <what> <id>…".
	what string
}

// pageRows reads one page of k with scan; an unknown starting_after is
// refused as invalid input.
func pageRows[T any](ctx context.Context, s *core, k keyset, p ledger.Page, scan func(rowScanner) (T, error)) ([]T, bool, error) {
	filter, args := k.where, append([]any(nil), k.args...)
	and := func(cond string) string {
		if filter == "" {
			return " WHERE " + cond
		}
		return " WHERE " + filter + " AND " + cond
	}
	base := k.sel
	if filter != "" {
		base += " WHERE " + filter
	}
	if p.StartingAfter != "" {
		n := "$" + strconv.Itoa(len(args)+1)
		var found bool
		if err := s.read.QueryRowContext(ctx, `SELECT EXISTS (`+k.sel+and(k.id+" = "+n)+`)`, append(args, p.StartingAfter)...).Scan(&found); err != nil {
			return nil, false, err
		}
		if !found {
			return nil, false, apperr.Invalidf("starting_after", "no %s %s in this list", k.what, p.StartingAfter)
		}
		base = k.sel + and(k.id+" < "+n)
		args = append(args, p.StartingAfter)
	}
	rows, err := s.read.QueryContext(ctx, base+fmt.Sprintf(` ORDER BY %s DESC LIMIT %d`, k.id, p.Limit+1), args...)
	if err != nil {
		return nil, false, fmt.Errorf("list %ss: %w", k.what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > p.Limit
	if more {
		out = out[:p.Limit]
	}
	return out, more, nil
}
