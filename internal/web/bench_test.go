package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/console"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/web"
)

// The preview and the chart read an account's daily totals, never its
// entries. These benchmarks measure them on an account with many entries
// (TOPUP_BENCH_ENTRIES, default 1,000,000, spread over the last 365 days),
// beside what reading the same 30 days from the entries would cost:
//
//	go test -run '^$' -bench . -benchtime 200x ./internal/web/
//
// The store is seeded once for all of them (about a minute for a million
// entries) and removed at the end.

var bench struct {
	once    sync.Once
	dir     string
	store   *sqlstore.DB
	console *web.Console
	account string
	cookie  *http.Cookie
	entries int
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.store != nil {
		bench.store.Close()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

func benchSetup(b *testing.B) {
	b.Helper()
	bench.once.Do(func() { bench.err = seedBench() })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
}

func seedBench() error {
	n := 1_000_000
	if v := os.Getenv("TOPUP_BENCH_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 365 {
			return fmt.Errorf("TOPUP_BENCH_ENTRIES=%q: want a number of at least 365", v)
		}
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "topup-console-bench-")
	if err != nil {
		return err
	}
	bench.dir = dir
	now := time.Now().UTC()
	clk := clock.NewManual(now.AddDate(-1, 0, 0))
	g := ids.New(clk)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"), clk, g)
	if err != nil {
		return err
	}
	bench.store = store
	acct, _, err := ledger.NewAccount(ctx, store, g, clk, "busy@example.com", "usd")
	if err != nil {
		return err
	}
	bench.account = acct.ID
	post := func(ps []ledger.Posting) error {
		res, err := store.Post(ctx, ps)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				return r.Err
			}
		}
		return nil
	}
	if err := post([]ledger.Posting{{AccountID: acct.ID, Kind: ledger.KindCredit, Amount: money.Amount(n) * 1_000, IdempotencyKey: "grant", Call: ledger.ScopeCredit}}); err != nil {
		return err
	}
	// One day of usage at a time, in groups the committer would make.
	perDay := n / 365
	seq := 0
	for d := range 365 {
		clk.Set(now.AddDate(0, 0, d-364).Add(-time.Hour))
		for done := 0; done < perDay; {
			size := min(10_000, perDay-done)
			ps := make([]ledger.Posting, size)
			for i := range ps {
				seq++
				ps[i] = ledger.Posting{AccountID: acct.ID, Kind: ledger.KindUsage, Amount: -800, Description: "chat completion",
					IdempotencyKey: "u" + strconv.Itoa(seq), Call: ledger.ScopeUsage}
			}
			if err := post(ps); err != nil {
				return err
			}
			done += size
		}
	}
	bench.entries = seq + 1
	clk.Set(now)
	sb := sandbox.New(store.Sandbox, sandbox.Config{BaseURL: "http://bench", Clock: clk, IDs: g})
	log := slog.New(slog.DiscardHandler)
	engine := topup.NewEngine(store.Payments, sb, topup.Config{Clock: clk, Logger: log})
	links := web.NewLinks(store.Console, clk, "http://bench/console")
	svc := billing.New(billing.Config{PublicURL: "http://bench", ConsoleURL: "http://bench/console"},
		billing.Deps{Store: store.Payments, Alerts: store, Provider: sb, Sandbox: sb, Engine: engine, Clock: clk, Logger: log})
	bench.console = web.New(web.Config{PublicURL: "http://bench"}, web.Deps{Store: store.Console, Ledger: store.Ledger, Payments: store.Payments, Alerts: store.Outbox, Billing: svc, Clock: clk, Logger: log})
	if _, err := store.AddCard(ctx, acct.ID, mustAttach(ctx, sb, store, acct)); err != nil {
		return err
	}
	link, _, err := links.NewLoginLink(ctx, acct.ID)
	if err != nil {
		return err
	}
	u, _ := url.Parse(link)
	id := "bench-session"
	if _, err := store.UseLoginLink(ctx, ledger.HashKey(u.Query().Get("token")),
		console.Session{IDHash: ledger.HashKey(id), CSRF: "x", ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		return err
	}
	bench.cookie = &http.Cookie{Name: "topup_session", Value: id}
	return nil
}

func mustAttach(ctx context.Context, sb *sandbox.Provider, store *sqlstore.DB, acct ledger.Account) payment.Card {
	cust, err := sb.EnsureCustomer(ctx, "", acct.ID, acct.Email)
	if err != nil {
		panic(err)
	}
	if _, err := store.SetCustomerID(ctx, acct.ID, cust); err != nil {
		panic(err)
	}
	c, err := sb.AttachPaymentMethod(ctx, cust, "pm_card_visa")
	if err != nil {
		panic(err)
	}
	return c
}

func serveBench(b *testing.B, path string) {
	b.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.AddCookie(bench.cookie)
	rec := httptest.NewRecorder()
	bench.console.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("GET %s answered %d: %s", path, rec.Code, rec.Body)
	}
}

// BenchmarkPreview is one keystroke's preview in the Automatic Payments
// dialog: validation, 30 days replayed, the forecast.
func BenchmarkPreview(b *testing.B) {
	benchSetup(b)
	path := "/console/accounts/" + bench.account + "/auto_top_up/preview?threshold=100&target=300"
	b.ResetTimer()
	for range b.N {
		serveBench(b, path)
	}
	b.ReportMetric(float64(bench.entries), "entries")
}

// BenchmarkOverview is the whole billing overview: balance, the 30-day
// chart and the newest 20 transactions.
func BenchmarkOverview(b *testing.B) {
	benchSetup(b)
	path := "/console/accounts/" + bench.account
	b.ResetTimer()
	for range b.N {
		serveBench(b, path)
	}
	b.ReportMetric(float64(bench.entries), "entries")
}

// BenchmarkDailyTotals is the query behind both: at most 31 rows by
// primary key.
func BenchmarkDailyTotals(b *testing.B) {
	benchSetup(b)
	since := time.Now().UTC().AddDate(0, 0, -29)
	b.ResetTimer()
	for range b.N {
		days, err := bench.store.DailyTotals(context.Background(), bench.account, since)
		if err != nil || len(days) == 0 || len(days) > 31 {
			b.Fatalf("daily totals: %d rows, %v", len(days), err)
		}
	}
}

// BenchmarkEntriesScan is what the console does not do: sum the same 30
// days from the entries.
func BenchmarkEntriesScan(b *testing.B) {
	benchSetup(b)
	since := time.Now().UTC().AddDate(0, 0, -29).UnixMicro()
	b.ResetTimer()
	for range b.N {
		var n, sum int64
		err := bench.store.DB().QueryRowContext(context.Background(),
			`SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM entries WHERE account_id = $1 AND created_at >= $2`, bench.account, since).Scan(&n, &sum)
		if err != nil || n == 0 {
			b.Fatalf("scan: %d rows, %v", n, err)
		}
	}
}

// TestDailyTotalsQueryPlan: SQLite reads the chart's and the preview's
// rows through the primary key, a range of at most 31 rows, whatever the
// number of entries.
func TestDailyTotalsQueryPlan(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	rows, err := e.store.DB().Query(`EXPLAIN QUERY PLAN SELECT day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance
FROM daily_totals WHERE account_id = ? AND day >= ? ORDER BY day`, "acct_x", "2026-10-28")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	got := strings.Join(plan, "; ")
	t.Logf("plan: %s", got)
	if !strings.Contains(got, "SEARCH daily_totals USING INDEX sqlite_autoindex_daily_totals_1 (account_id=? AND day>?)") || strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("plan = %q; want a primary-key range search, already in day order", got)
	}
}
