package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/progress"
)

func cmdAccount(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list") {
		return fmt.Errorf("%w: topup account create --email EMAIL | topup account list", errUsage)
	}
	fs := newFlags("account "+args[0], stderr)
	db := dbFlag(fs, "sqlite:topup.db")
	email := fs.String("email", "", "the account's e-mail address")
	currency := fs.String("currency", "usd", "the account's currency")
	limit := fs.Int("limit", 100, "how many accounts to list")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	g := ids.New(clock.System)
	store, err := app.OpenStore(ctx, *db, clock.System, g)
	if err != nil {
		return err
	}
	defer store.Close()
	if args[0] == "create" {
		acct, key, err := ledger.NewAccount(ctx, store, g, clock.System, *email, *currency)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "id:       %s\nemail:    %s\ncurrency: %s\napi key:  %s   (shown only this once)\n", acct.ID, acct.Email, acct.Currency.Code, key)
		return nil
	}
	accts, more, err := store.Accounts(ctx, ledger.Page{Limit: *limit})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tCURRENCY\tBALANCE\tSTATUS\tCREATED")
	for _, a := range accts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Email, a.Currency.Code, a.Balance.Format(a.Currency), a.Status, a.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	if more {
		fmt.Fprintf(tw, "… more than %d accounts; raise --limit\n", *limit)
	}
	return tw.Flush()
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	db := dbFlag(fs, "sqlite:topup.db")
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, err := app.OpenStore(ctx, *db, clock.System, ids.New(clock.System))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "topup: %s is migrated\n", app.RedactDB(*db))
	return store.Close()
}

// cmdVerify recomputes every balance and checks every invariant; it fails
// naming each broken account.
func cmdVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	db := dbFlag(fs, "sqlite:topup.db")
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, err := app.OpenStore(ctx, *db, clock.System, ids.New(clock.System))
	if err != nil {
		return err
	}
	defer store.Close()
	// On a terminal, a bar on stderr shows the checks as they finish: a
	// database of millions of entries takes a while.
	var bar *progress.Bar
	started := false
	violations, err := store.Verify(ledger.WithProgress(ctx, func(done, total int) {
		if !started {
			bar, started = progress.New(stderr, int64(total), "verify"), true
		}
		bar.Set(int64(done))
	}))
	bar.Finish()
	if err != nil {
		return err
	}
	if len(violations) == 0 {
		fmt.Fprintln(stdout, "topup: verify: every balance equals the sum of its entries; no invariant is broken")
		return nil
	}
	broken := map[string]bool{}
	for _, v := range violations {
		fmt.Fprintf(stdout, "BROKEN %s: %s\n", v.AccountID, v.Problem)
		broken[v.AccountID] = true
	}
	return fmt.Errorf("verify: %d problems in %d accounts", len(violations), len(broken))
}
