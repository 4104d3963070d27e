package bench

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/statement"
)

// TestSeedPlan shows that the plan spreads exactly the entries asked for,
// hottest account first, and dates them before today.
func TestSeedPlan(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	p := newSeedPlan(10_000_000, 1000, now)
	var sum int64
	for k, n := range p.counts {
		sum += n
		if k > 0 && n > p.counts[k-1] {
			t.Fatalf("account %d has %d entries, more than account %d's %d", k, n, k-1, p.counts[k-1])
		}
	}
	if sum != 10_000_000 {
		t.Fatalf("the plan spreads %d entries, want 10,000,000", sum)
	}
	// Zipf s=1.1 over 1,000 accounts: the hottest has about 1/5.6 of them.
	if p.counts[0] < 1_500_000 || p.counts[0] > 2_200_000 {
		t.Errorf("the hottest account has %d entries, want about 1.8 million", p.counts[0])
	}
	if want := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC); !p.credited.Equal(want) {
		t.Errorf("credited at %s, want %s", p.credited, want)
	}
	if want := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC); !p.end.Equal(want) {
		t.Errorf("the usage ends at %s, want the start of today %s", p.end, want)
	}
	if last := p.start.UnixMicro() + (p.counts[0]-1)*p.step(p.counts[0]); last >= p.end.UnixMicro() {
		t.Errorf("the hottest account's last entry is dated %d, not before %d", last, p.end.UnixMicro())
	}
}

// TestBenchSeedAndRead seeds 20,000 entries on SQLite and runs a short read
// phase: every read kind answers without an error, the seeded ledger
// verifies clean, and each seeded account's entries, grant, daily totals
// and statement months agree with the plan.
func TestBenchSeedAndRead(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "seed.db")
	const accounts, entries = 50, 20_000
	var out, errOut bytes.Buffer
	err := Run(t.Context(), Config{DB: db, Accounts: accounts, Clients: 4, Duration: 300 * time.Millisecond, BatchSize: 1, BatchClients: 1,
		Phases: []string{"read"}, Amount: DefaultAmount, SeedEntries: entries, PageSize: 20, Explain: true}, &out, &errOut)
	t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	for _, want := range []string{"history: 20,000 usage entries seeded", "verify: clean", "balances: each of 50 accounts"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	row := regexp.MustCompile(`(?m)^read (account|page|deep page|statement) +4 +([0-9,]+) .* ([0-9,]+) +([0-9,]+)$`)
	rows := row.FindAllStringSubmatch(out.String(), -1)
	if len(rows) != 4 {
		t.Fatalf("%d read rows in the table, want 4", len(rows))
	}
	for _, r := range rows {
		requests, _ := strconv.Atoi(strings.ReplaceAll(r[2], ",", ""))
		size, _ := strconv.Atoi(strings.ReplaceAll(r[4], ",", ""))
		if requests == 0 || r[3] != "0" || size == 0 {
			t.Errorf("read %s: %s requests, %s errors, %d bytes per answer", r[1], r[2], r[3], size)
		}
	}

	// --explain: every statement of the read and debit paths finds its rows
	// by an index, none scans a table or sorts.
	_, plans, ok := strings.Cut(out.String(), "\nplans on sqlite for the account with the most entries")
	if !ok {
		t.Fatal("no plans printed")
	}
	steps := regexp.MustCompile(`(?m)^\[[^\]]+\] `).FindAllString(plans, -1)
	if len(steps) != len(explainQueries)-1 { // LoadGrants is PostgreSQL's
		t.Errorf("%d plans, want %d", len(steps), len(explainQueries)-1)
	}
	if bad := regexp.MustCompile(`(?m)^    \| +(SCAN [a-z_]+\b.*|.*TEMP B-TREE FOR ORDER BY.*)$`).FindAllString(plans, -1); len(bad) > 0 {
		t.Errorf("plans that scan a table or sort: %q", bad)
	}
	if n := strings.Count(plans, "SEARCH entries USING PRIMARY KEY"); n != 4 {
		t.Errorf("%d entries statements use the primary key, want 4 (the two pages, the probe, the month)", n)
	}

	store, err := app.OpenStore(t.Context(), db, clock.System, ids.New(clock.System))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if v, err := store.Verify(t.Context()); err != nil || len(v) > 0 {
		t.Fatalf("verify: %v %v", v, err)
	}
	// The plan the run used (made at the same time of day, bar a midnight).
	plan := newSeedPlan(entries, accounts, time.Now())
	amount := money.Amount(125)
	rowsOf, err := store.DB().QueryContext(t.Context(), `SELECT a.id, a.last_seq, a.balance,
(SELECT COUNT(*) FROM entries e WHERE e.account_id = a.id AND e.kind = 'usage' AND e.idempotency_key LIKE 'seed-%'),
(SELECT COUNT(*) FROM grants g WHERE g.account_id = a.id AND g.status = 'used' AND g.remaining = 0),
(SELECT COALESCE(SUM(d.usage), 0) FROM daily_totals d WHERE d.account_id = a.id)
FROM accounts a ORDER BY a.last_seq DESC`)
	if err != nil {
		t.Fatal(err)
	}
	type acct struct {
		id                          string
		last, balance, seeded, used int64
		dailyUsage                  int64
	}
	var got []acct
	for rowsOf.Next() {
		var a acct
		if err := rowsOf.Scan(&a.id, &a.last, &a.balance, &a.seeded, &a.used, &a.dailyUsage); err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if err := rowsOf.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != accounts {
		t.Fatalf("%d accounts, want %d", len(got), accounts)
	}
	var seeded int64
	for k, a := range got {
		n := plan.counts[k]
		seeded += a.seeded
		// A seeded account: its credit, n entries of usage, the bench's grant.
		if a.seeded != n || a.last != n+2 || a.used != 1 || a.dailyUsage != n*int64(amount) || a.balance != int64(benchGrant) {
			t.Errorf("account %d (%s): %+v, want %d seeded entries after one used grant, last_seq %d, balance %d", k, a.id, a, n, n+2, benchGrant)
		}
	}
	if seeded != entries {
		t.Errorf("%d seeded entries, want %d", seeded, entries)
	}
	// Every account-day's totals are those of its entries, as the debit
	// path keeps them: usage, credits, the closing and the lowest balance.
	var wrong, days, rowsN int
	err = store.DB().QueryRowContext(t.Context(), `WITH g AS (SELECT account_id, date(created_at / 1000000, 'unixepoch') AS day,
-SUM(CASE WHEN kind = 'usage' THEN amount ELSE 0 END) AS usage, SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS credits,
MIN(balance_after) AS low, MAX(seq) AS last FROM entries GROUP BY 1, 2)
SELECT (SELECT COUNT(*) FROM g JOIN entries e ON e.account_id = g.account_id AND e.seq = g.last
LEFT JOIN daily_totals d ON d.account_id = g.account_id AND d.day = g.day
WHERE d.day IS NULL OR d.usage <> g.usage OR d.credits <> g.credits OR d.closing_balance <> e.balance_after OR d.min_balance <> g.low),
(SELECT COUNT(*) FROM g), (SELECT COUNT(*) FROM daily_totals)`).Scan(&wrong, &days, &rowsN)
	if err != nil || wrong != 0 || days != rowsN || days < 300 {
		t.Errorf("daily totals: %d of %d account-days differ from their entries, %d rows (%v)", wrong, days, rowsN, err)
	}

	// The hottest account's statements: each month of the seeded span has
	// its entries, opening less the month's usage is its closing, and the
	// months chain.
	hot := got[0]
	now := time.Now().UTC()
	var prev *statement.Range
	var inMonths int64
	for k := 12; k >= 1; k-- {
		m, err := statement.ParseMonth(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -k, 0).Format("2006-01"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := store.StatementRange(t.Context(), hot.id, m)
		if err != nil {
			t.Fatal(err)
		}
		n := r.Through - r.After
		inMonths += n
		if n == 0 || r.Opening-r.Closing != money.Amount(n)*amount {
			t.Errorf("month %s: entries %d..%d, opening %s, closing %s", m, r.After, r.Through, r.Opening, r.Closing)
		}
		if prev != nil && prev.Through != r.After {
			t.Errorf("month %s starts after entry %d, the month before ends at %d", m, r.After, prev.Through)
		}
		prev = &r
	}
	if inMonths < hot.seeded*11/13 {
		t.Errorf("the 12 months hold %d of the hottest account's %d seeded entries", inMonths, hot.seeded)
	}
	var e []ledger.Entry
	if e, _, err = store.Entries(t.Context(), hot.id, ledger.Page{Limit: 3}); err != nil || len(e) != 3 || e[0].Kind != ledger.KindCredit || e[1].Kind != ledger.KindUsage ||
		e[1].BalanceAfter != 0 || len(e[1].Funding) != 1 || e[1].Funding[0].Amount != amount {
		t.Errorf("the hottest account's newest entries: %+v %v", e, err)
	}
}
