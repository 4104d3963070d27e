package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/sqlstore"
)

const adminKeyMeta = "admin_key_hash"

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	db := dbFlag(fs, "sqlite:topup.db")
	payments := fs.String("payments", "sandbox", "payment provider: sandbox or stripe")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set, err := app.ReadSettings(*payments, getenv)
	if err != nil {
		return err
	}
	store, err := app.OpenStore(ctx, *db, clock.System, ids.New(clock.System))
	if err != nil {
		return err
	}
	hash, err := adminKeyHash(ctx, store, getenv("TOPUP_ADMIN_KEY"), stdout)
	if err != nil {
		store.Close()
		return err
	}
	a, err := app.New(app.Config{Addr: *addr, AdminKeyHash: hash, Logger: app.NewLogger(stdout, slog.LevelInfo), Settings: set}, store)
	if err != nil {
		store.Close()
		return err
	}
	a.Start()
	fmt.Fprintf(stdout, "topup: listening on %s (database %s)\n", a.URL(), app.RedactDB(*db))
	return a.Wait(ctx)
}

// adminKeyHash returns the hash of the admin key: TOPUP_ADMIN_KEY when set;
// otherwise the one made on the first start, whose key was printed once
// then and is stored only as a hash.
func adminKeyHash(ctx context.Context, store *sqlstore.DB, env string, stdout io.Writer) (string, error) {
	if env != "" {
		return ledger.HashKey(env), nil
	}
	if h, ok, err := store.Meta(ctx, adminKeyMeta); err != nil || ok {
		return h, err
	}
	key := ledger.NewKey(ledger.AdminKeyPrefix)
	stored, err := store.SetMetaIfAbsent(ctx, adminKeyMeta, ledger.HashKey(key))
	if err != nil {
		return "", fmt.Errorf("store the admin key: %w", err)
	}
	if stored == ledger.HashKey(key) {
		fmt.Fprintf(stdout, "topup: a new admin key was made; it is shown only this once:\n\n    %s\n\n", key)
	}
	return stored, nil
}
