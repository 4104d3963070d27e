package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Checkpoints move the WAL's pages back into the database file. SQLite's
// automatic checkpoint runs inside the commit that crosses
// wal_autocheckpoint pages, on the writer connection: under load that is
// every few group commits, and it took a third of the writer's commit time
// (copying and syncing pages while every debit waits). The checkpointer
// runs them from a connection of its own instead, on the other core, while
// the writer goes on committing: a PASSIVE checkpoint takes no write lock,
// and copies what no reader still needs. Durability does not change: a
// commit is durable when its WAL frames are synced (synchronous=FULL), which
// the writer still does before it answers; a checkpoint only moves pages
// already durable in the WAL, and syncs the WAL before and the file after.
//
// The writer keeps an automatic checkpoint at a far higher mark
// (walBackstop pages) so that the WAL stays bounded if the checkpointer
// falls behind or stops.
const (
	checkpointEvery = 50 * time.Millisecond
	// walBackstop is the writer's own wal_autocheckpoint, in pages: 20,000
	// pages of 4 KiB, 80 MiB of WAL.
	walBackstop = 20_000
)

type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	once sync.Once
	done chan struct{}
}

// startCheckpointer opens a connection of its own on path and checkpoints
// every checkpointEvery until Close.
func startCheckpointer(path string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// An error (busy: another checkpoint is running) only means
			// this pass did less; the next one tries again.
			_ = c.checkpoint()
		}
	}
}

// checkpoint runs one PASSIVE checkpoint and reports how many WAL frames
// there were and how many are now in the database file.
func (c *checkpointer) checkpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var busy, log, done int
	return c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done)
}

// Close stops the checkpointer and closes its connection.
func (c *checkpointer) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
