package sqlstore

import (
	"embed"
	"io/fs"
	"slices"
	"testing/fstest"
)

// shared holds the migrations both databases run as they are, and the shared
// part of those whose SQL differs only in part; the sqlite and postgres
// packages hold what differs (triggers, date expressions, table options).
//
//go:embed migrations/*.sql
var shared embed.FS

// WithShared returns the full numbered migration list of a database: the
// shared files and own. A name in both is one migration whose SQL is the
// shared part followed by the database's own part, so it keeps one version
// number and runs in one transaction: databases migrated before the split
// recorded that version and run nothing again.
func WithShared(own fs.FS) fs.FS {
	out := fstest.MapFS{}
	for _, from := range []fs.FS{mustSub(shared, "migrations"), own} {
		names, _ := fs.Glob(from, "*.sql")
		for _, name := range names {
			body, err := fs.ReadFile(from, name)
			if err != nil {
				panic("sqlstore: read embedded migration " + name + ": " + err.Error())
			}
			if first, ok := out[name]; ok {
				body = slices.Concat(first.Data, []byte("\n"), body)
			}
			out[name] = &fstest.MapFile{Data: body}
		}
	}
	return out
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
