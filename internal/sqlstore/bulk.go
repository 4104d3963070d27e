package sqlstore

import (
	"context"
	"database/sql"
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
func (s *Store) prepareBulk(ctx context.Context, stmts ...*bulk) error {
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
func (s *Store) eachChunk(b *bulk, n int, fn func(start, end int, query string) error) error {
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
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	s.cache.mu.Lock()
	st := s.cache.stmts[query]
	s.cache.mu.Unlock()
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

func (s *Store) bulkExec(ctx context.Context, tx *sql.Tx, query string, args []any) error {
	if st := s.stmt(ctx, tx, query); st != nil {
		_, err := st.ExecContext(ctx, args...)
		return err
	}
	_, err := tx.ExecContext(ctx, query, args...)
	return err
}

func (s *Store) bulkQuery(ctx context.Context, tx *sql.Tx, query string, args []any) (*sql.Rows, error) {
	if st := s.stmt(ctx, tx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}
