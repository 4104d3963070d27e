package storetest

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
)

// CheckSchema compares the schema that the migrations made in db (a fresh
// database of the named dialect, "sqlite" or "postgres") with the golden
// file at path, or rewrites that file when update is set. The golden files
// were captured before the per-database migrations were split into shared
// and own parts, so that the split provably changes no table, column,
// index, constraint or trigger, and no recorded version.
func CheckSchema(t *testing.T, db *sql.DB, dialect, path string, update bool) {
	t.Helper()
	var got string
	var err error
	switch dialect {
	case "sqlite":
		got, err = sqliteSchema(db)
	case "postgres":
		got, err = postgresSchema(db)
	default:
		t.Fatalf("CheckSchema: unknown dialect %q", dialect)
	}
	if err != nil {
		t.Fatalf("read the schema: %v", err)
	}
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the golden schema (run with -update to write it): %v", err)
	}
	if got != string(want) {
		t.Errorf("the migrated schema differs from %s:\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only one side has, enough to find a drift.
func lineDiff(want, got string) string {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := set(want), set(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

// dump appends one line per row of query, its columns joined by " | ".
func dump(b *strings.Builder, db *sql.DB, title, query string, args ...any) error {
	rows, err := db.Query(query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", title, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	fmt.Fprintf(b, "## %s\n", title)
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = v.String
			}
		}
		fmt.Fprintln(b, strings.Join(parts, " | "))
	}
	return rows.Err()
}

func sqliteSchema(db *sql.DB) (string, error) {
	var b strings.Builder
	queries := [][2]string{
		{"versions", `SELECT version FROM schema_migrations ORDER BY version`},
		{"tables", `SELECT name, wr, strict FROM pragma_table_list WHERE schema = 'main' AND name NOT LIKE 'sqlite_%' ORDER BY name`},
		{"columns", `SELECT m.name, c.cid, c.name, c.type, c."notnull", c.dflt_value, c.pk
			FROM sqlite_schema m, pragma_table_xinfo(m.name) c WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, c.cid`},
		{"indexes", `SELECT m.name, i.name, i."unique", i.origin, i.partial,
			(SELECT group_concat(name, ',') FROM (SELECT x.name FROM pragma_index_info(i.name) x ORDER BY x.seqno))
			FROM sqlite_schema m, pragma_index_list(m.name) i WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, i.name`},
		{"foreign keys", `SELECT m.name, f."table", f."from", f."to", f.on_update, f.on_delete
			FROM sqlite_schema m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq`},
		{"definitions", `SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`},
	}
	for _, q := range queries {
		if err := dump(&b, db, q[0], q[1]); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func postgresSchema(db *sql.DB) (string, error) {
	var schema string
	if err := db.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
		return "", err
	}
	var b strings.Builder
	queries := [][2]string{
		{"versions", `SELECT version FROM schema_migrations ORDER BY version`},
		{"columns", `SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default
			FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`},
		{"constraints", `SELECT r.relname, c.conname, pg_get_constraintdef(c.oid)
			FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
			WHERE n.nspname = $1 ORDER BY r.relname, c.conname`},
		{"indexes", `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY tablename, indexname`},
		{"triggers", `SELECT r.relname, t.tgname, pg_get_triggerdef(t.oid)
			FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace
			WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY r.relname, t.tgname`},
		{"functions", `SELECT p.proname, pg_get_functiondef(p.oid)
			FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 ORDER BY p.proname`},
	}
	for _, q := range queries {
		args := []any{schema}
		if q[0] == "versions" {
			args = nil
		}
		if err := dump(&b, db, q[0], q[1], args...); err != nil {
			return "", err
		}
	}
	// Every test runs in a schema of its own; the golden file names none.
	return strings.ReplaceAll(b.String(), schema+".", "SCHEMA."), nil
}
