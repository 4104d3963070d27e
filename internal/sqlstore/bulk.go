package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// bulk is a statement that carries many rows of parameters: an INSERT …
// VALUES, an UPDATE … FROM (VALUES …), or a query with an IN list. Groups
// are cut into chunks of a few fixed sizes, so that each statement text is
// one of a handful and can stay prepared.
type bulk struct {
	// head comes before the rows, tail after; lead is how many parameters
	// head itself carries (they come first).
	head, tail string
	lead       int
	// cell formats one row: "%" marks each parameter, e.g. "(%, CAST(% AS BIGINT))".
	cell string
	cols int
	// sep joins the rows (",").
	sep string
	// pg is the PostgreSQL form: the same statement taking one array per
	// column ($lead+1…) through unnest, so that any number of rows is one
	// statement with one text, prepared once and sent in one round trip.
	pg string
}

// pgForms maps each PostgreSQL array statement to its bulk, so that the
// row-major arguments the callers build can be turned into columns.
var pgForms = map[string]*bulk{}

func init() {
	for _, b := range []*bulk{&entriesBulk, &recordsBulk, &balancesBulk, &idemLookup, &dailyBulk, &budgetsSpend, &pgLockBulk} {
		if b.pg != "" {
			pgForms[b.pg] = b
		}
	}
}

// columns turns row-major arguments (after lead scalars) into one typed
// array per column, for a statement of the pg form. A nil in a text column
// becomes "" (the statements turn it back into NULL with NULLIF).
func columns(b *bulk, args []any) ([]any, error) {
	rows := (len(args) - b.lead) / b.cols
	out := make([]any, 0, b.lead+b.cols)
	out = append(out, args[:b.lead]...)
	for c := range b.cols {
		at := func(r int) any { return args[b.lead+r*b.cols+c] }
		kind := ""
		for r := 0; r < rows && kind == ""; r++ {
			switch at(r).(type) {
			case string:
				kind = "text"
			case int64, int:
				kind = "int"
			case bool:
				kind = "bool"
			}
		}
		switch kind {
		case "int":
			col := make([]int64, rows)
			for r := range rows {
				switch v := at(r).(type) {
				case int64:
					col[r] = v
				case int:
					col[r] = int64(v)
				default:
					return nil, fmt.Errorf("bulk column %d row %d: %T in a number column", c, r, v)
				}
			}
			out = append(out, col)
		case "bool":
			col := make([]bool, rows)
			for r := range rows {
				col[r], _ = at(r).(bool)
			}
			out = append(out, col)
		default:
			col := make([]string, rows)
			for r := range rows {
				switch v := at(r).(type) {
				case string:
					col[r] = v
				case nil:
				default:
					return nil, fmt.Errorf("bulk column %d row %d: %T in a text column", c, r, v)
				}
			}
			out = append(out, col)
		}
	}
	return out, nil
}

// chunkSizes are the statement sizes groups are cut into, largest first.
var chunkSizes = [...]int{256, 64, 16, 4, 1}

// text returns the statement for rows rows in the dialect's placeholder
// style: "?" on SQLite, whose driver and parser look "$N" names up in a list
// (cost growing with the square of the parameters), "$N" on PostgreSQL.
func (b *bulk) text(rows int, positional bool) string {
	var sb strings.Builder
	sb.Grow(len(b.head) + len(b.tail) + rows*(len(b.cell)+b.cols*4))
	n := 1
	param := func() {
		if positional {
			sb.WriteByte('?')
		} else {
			sb.WriteByte('$')
			sb.WriteString(strconv.Itoa(n))
		}
		n++
	}
	head := b.head
	for range b.lead {
		i := strings.IndexByte(head, '%')
		sb.WriteString(head[:i])
		param()
		head = head[i+1:]
	}
	sb.WriteString(head)
	for r := range rows {
		if r > 0 {
			sb.WriteString(b.sep)
		}
		cell := b.cell
		for {
			i := strings.IndexByte(cell, '%')
			if i < 0 {
				break
			}
			sb.WriteString(cell[:i])
			param()
			cell = cell[i+1:]
		}
		sb.WriteString(cell)
	}
	sb.WriteString(b.tail)
	return sb.String()
}

// stmtCache keeps the bulk statements prepared on SQLite's one writer
// connection: parsing them again for every group cost a fifth of the
// committer's time. (pgx caches prepared statements on its own.)
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// prepareBulk prepares every chunk size of every bulk statement on db,
// before any transaction holds the writer connection.
func (s *core) prepareBulk(ctx context.Context, stmts ...*bulk) error {
	if s.dialect.Name != "sqlite" {
		return nil
	}
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	if s.cache.stmts == nil {
		s.cache.stmts = map[string]*sql.Stmt{}
	}
	for _, b := range stmts {
		for _, n := range chunkSizes {
			if n*b.cols+b.lead > s.dialect.MaxParams {
				continue
			}
			q := b.text(n, true)
			if _, ok := s.cache.stmts[q]; ok {
				continue
			}
			st, err := s.write.PrepareContext(ctx, q)
			if err != nil {
				return err
			}
			s.cache.stmts[q] = st
		}
	}
	return nil
}

// eachChunk cuts n rows into chunks of the fixed sizes that fit b and calls
// fn with each chunk's bounds and statement text.
func (s *core) eachChunk(b *bulk, n int, fn func(start, end int, query string) error) error {
	if s.dialect.Name == "postgres" && b.pg != "" {
		if n == 0 {
			return nil
		}
		return fn(0, n, b.pg)
	}
	positional := s.dialect.Name == "sqlite"
	start := 0
	for _, size := range chunkSizes {
		if size*b.cols+b.lead > s.dialect.MaxParams {
			continue
		}
		for n-start >= size {
			if err := fn(start, start+size, b.text(size, positional)); err != nil {
				return err
			}
			start += size
		}
	}
	return nil
}

// stmt returns query prepared for tx when it is cached.
func (s *core) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	s.cache.mu.Lock()
	st := s.cache.stmts[query]
	s.cache.mu.Unlock()
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

func (s *core) bulkExec(ctx context.Context, tx *sql.Tx, query string, args []any) error {
	if b := pgForms[query]; b != nil {
		var err error
		if args, err = columns(b, args); err != nil {
			return err
		}
	}
	if st := s.stmt(ctx, tx, query); st != nil {
		_, err := st.ExecContext(ctx, args...)
		return err
	}
	_, err := tx.ExecContext(ctx, query, args...)
	return err
}

func (s *core) bulkQuery(ctx context.Context, tx *sql.Tx, query string, args []any) (*sql.Rows, error) {
	if b := pgForms[query]; b != nil {
		var err error
		if args, err = columns(b, args); err != nil {
			return nil, err
		}
	}
	if st := s.stmt(ctx, tx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}
