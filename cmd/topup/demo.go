package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/sqlstore"
)

// The demo keeps its keys readable in the meta table, so that every start
// can print them again: they guard nothing but a sample database. A real
// installation stores only hashes (see adminKeyHash).
const (
	demoAdminKeyMeta   = "demo_admin_key"
	demoAccountIDMeta  = "demo_account_id"
	demoAccountKeyMeta = "demo_account_key"
	demoHistoryMeta    = "demo_history"
	demoEmail          = "demo@example.com"
)

// cmdDemo serves like `topup serve`, on its own database, with a demo
// account that has credit and a week of usage, and prints on every start
// what a newcomer needs to try the API.
func cmdDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	db := dbFlag(fs, "sqlite:topup-demo.db")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The history is dated over the past week: the store reads this clock,
	// which stands at each entry's time while the demo is seeded and
	// follows the wall clock afterwards.
	c := &demoClock{}
	g := ids.New(c)
	store, err := app.OpenStore(ctx, *db, c, g)
	if err != nil {
		return err
	}
	d, err := seedDemo(ctx, store, g, c, getenv("TOPUP_ADMIN_KEY"))
	if err != nil {
		store.Close()
		return fmt.Errorf("demo: %w", err)
	}
	set, err := app.ReadSettings("sandbox", getenv)
	if err != nil {
		store.Close()
		return err
	}
	a, err := app.New(app.Config{Addr: *addr, AdminKeyHash: ledger.HashKey(d.adminKey), Logger: app.NewLogger(stdout, slog.LevelInfo), Settings: set}, store)
	if err != nil {
		store.Close()
		return err
	}
	a.Start()
	// A fresh console sign-in link on every start: each works once, for
	// 15 minutes. Minted before the listening line, so the banner follows
	// it at once.
	if d.consoleLink, _, err = a.Links().NewLoginLink(ctx, d.accountID); err != nil {
		return errors.Join(fmt.Errorf("demo: console sign-in link: %w", err), a.Shutdown())
	}
	fmt.Fprintf(stdout, "topup: listening on %s (database %s)\n", a.URL(), app.RedactDB(*db))
	d.print(stdout, a.URL(), *db)
	return a.Wait(ctx)
}

// demo is what the start banner shows.
type demo struct {
	adminKey     string
	adminFromEnv bool
	accountID    string
	accountKey   string
	consoleLink  string
}

func (d demo) print(w io.Writer, base, db string) {
	where, startOver := app.RedactDB(db), ""
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		where, startOver = path, "; delete "+path+" to start over"
	}
	adminLine := d.adminKey + "   (demo only: stored readable in " + where + ")"
	auth := "'Authorization: Bearer " + d.adminKey + "'"
	if d.adminFromEnv {
		// A key the operator chose may be a real one: never print it.
		adminLine = "the value of TOPUP_ADMIN_KEY"
		auth = `"Authorization: Bearer $TOPUP_ADMIN_KEY"`
	}
	acct := base + "/v1/accounts/" + d.accountID
	fmt.Fprintf(w, `
Topup demo is running.
  API:          %[1]s/v1
  Health:       %[1]s/healthz
  OpenAPI:      %[1]s/v1/openapi.json
  Console:      %[8]s
                (the demo account's billing pages: open the link, press Sign in; it works once,
                for 15 minutes, and every start prints a new one)
  Admin key:    %[2]s
  Demo account: %[3]s  key %[4]s
Try:
  curl -s -H %[5]s -d '{"amount":"0.25","idempotency_key":"try-1"}' %[6]s/usage
  curl -s -H 'Authorization: Bearer %[4]s' %[6]s/transactions
Stop with Ctrl-C%[7]s.

`, base, adminLine, d.accountID, d.accountKey, auth, acct, startOver, d.consoleLink)
}

// seedDemo makes, on the first start, the demo admin key (unless
// adminEnv is set), the demo account with its key, and its history; later
// starts find them in the meta table. Every step may be repeated, so a
// start interrupted half-way is completed by the next one.
func seedDemo(ctx context.Context, store *sqlstore.DB, g *ids.Generator, c *demoClock, adminEnv string) (demo, error) {
	d := demo{adminKey: adminEnv, adminFromEnv: adminEnv != ""}
	var err error
	if !d.adminFromEnv {
		if d.adminKey, err = store.SetMetaIfAbsent(ctx, demoAdminKeyMeta, ledger.NewKey(ledger.AdminKeyPrefix)); err != nil {
			return d, fmt.Errorf("store the demo admin key: %w", err)
		}
	}
	// The id and key are stored before the account is created, so that a
	// crash in between leaves no account whose key nobody knows.
	if d.accountID, err = store.SetMetaIfAbsent(ctx, demoAccountIDMeta, g.New(ids.Account)); err != nil {
		return d, fmt.Errorf("store the demo account id: %w", err)
	}
	if d.accountKey, err = store.SetMetaIfAbsent(ctx, demoAccountKeyMeta, ledger.NewKey(ledger.AccountKeyPrefix)); err != nil {
		return d, fmt.Errorf("store the demo account key: %w", err)
	}
	acct, err := demoAccount(ctx, store, d)
	if err != nil {
		return d, err
	}
	if _, done, err := store.Meta(ctx, demoHistoryMeta); err != nil || done {
		return d, err
	}
	for _, h := range demoHistory(acct.ID, acct.CreatedAt) {
		c.set(h.at)
		res, err := store.Post(ctx, []ledger.Posting{h.Posting})
		if err != nil {
			c.set(time.Time{})
			return d, fmt.Errorf("post the demo history: %w", err)
		}
		if res[0].Err != nil {
			c.set(time.Time{})
			return d, fmt.Errorf("post the demo history (%s): %w", h.IdempotencyKey, res[0].Err)
		}
	}
	c.set(time.Time{})
	if _, err := store.SetMetaIfAbsent(ctx, demoHistoryMeta, "posted"); err != nil {
		return d, fmt.Errorf("mark the demo history posted: %w", err)
	}
	return d, nil
}

// demoAccount returns the demo account, creating it a week in the past
// when it does not exist yet.
func demoAccount(ctx context.Context, store *sqlstore.DB, d demo) (ledger.Account, error) {
	acct, err := store.Account(ctx, d.accountID)
	if err == nil || apperr.CodeOf(err) != apperr.NotFound {
		return acct, err
	}
	usd, err := money.LookupCurrency("usd")
	if err != nil {
		return acct, err
	}
	created := time.Now().UTC().Add(-7 * 24 * time.Hour).Truncate(time.Minute)
	acct = ledger.Account{ID: d.accountID, Email: demoEmail, Currency: usd, Status: ledger.Active, CreatedAt: created}
	if err := store.CreateAccount(ctx, acct, ledger.DefaultKey(acct, ledger.HashKey(d.accountKey), ledger.KeyPrefix(d.accountKey))); err != nil {
		// Another start may have created it at the same moment.
		if again, err2 := store.Account(ctx, d.accountID); err2 == nil {
			return again, nil
		}
		return acct, fmt.Errorf("create the demo account: %w", err)
	}
	return acct, nil
}

// demoPosting is one line of the demo history and the time it is dated.
type demoPosting struct {
	ledger.Posting
	at time.Time
}

// demoHistory is the demo account's past: a 50.00 grant, then 30 metered
// calls over six days. It depends only on the account, so a repeated
// posting replays under its idempotency key instead of adding a line.
func demoHistory(accountID string, created time.Time) []demoPosting {
	out := []demoPosting{{
		Posting: ledger.Posting{AccountID: accountID, Kind: ledger.KindCredit, Amount: 50_000_000,
			Description: "welcome credit", IdempotencyKey: "demo-credit", Call: ledger.ScopeCredit},
		at: created.Add(time.Minute),
	}}
	for i := 1; i <= 30; i++ {
		var desc string
		var amount money.Amount // micros
		switch tokens := 300 + (i*7919)%14_000; i % 5 {
		case 3:
			desc = "embeddings · " + thousands(tokens*4) + " tokens"
			amount = money.Amount(tokens * 4 / 10) // 0.10 per million tokens
		case 4:
			desc = "image generation · 1024×1024"
			amount = 40_000
		default:
			desc = "chat completion · " + thousands(tokens) + " tokens"
			amount = money.Amount(tokens * 60) // 0.06 per thousand tokens
		}
		out = append(out, demoPosting{
			Posting: ledger.Posting{AccountID: accountID, Kind: ledger.KindUsage, Amount: -amount, Description: desc,
				IdempotencyKey: fmt.Sprintf("demo-usage-%02d", i), Call: ledger.ScopeUsage},
			at: created.Add(time.Duration(i)*5*time.Hour + time.Duration((i*37)%240)*time.Minute),
		})
	}
	return out
}

// thousands writes n with comma separators: 12345 → "12,345".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// demoClock is the wall clock, except while set to a moment of the demo
// history.
type demoClock struct {
	mu sync.Mutex
	at time.Time
}

var _ clock.Clock = (*demoClock)(nil)

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		return clock.System.Now()
	}
	return c.at
}

// set makes the clock stand at t; the zero time returns it to the wall.
func (c *demoClock) set(t time.Time) {
	c.mu.Lock()
	c.at = t
	c.mu.Unlock()
}
