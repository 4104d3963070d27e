package sqlstore

import (
	"embed"
	"io/fs"
	"testing/fstest"
)

// shared holds the migrations both databases run as they are; the sqlite and
// postgres packages hold the numbers whose SQL differs.
//
//go:embed migrations/*.sql
var shared embed.FS

// WithShared returns the full numbered migration list of a database: the
// shared files and own, where a number own also has wins.
func WithShared(own fs.FS) fs.FS {
	out := fstest.MapFS{}
	for _, from := range []fs.FS{mustSub(shared, "migrations"), own} {
		names, _ := fs.Glob(from, "*.sql")
		for _, name := range names {
			body, err := fs.ReadFile(from, name)
			if err != nil {
				panic("sqlstore: read embedded migration " + name + ": " + err.Error())
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
