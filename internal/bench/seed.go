package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/progress"
	"github.com/topup/topup/internal/sqlstore"
)

// --seed-entries fills the ledger with usage history before the phases, so
// that the read phase measures a large ledger: every bench account gets,
// 13 months before the run, a credit of exactly what its seeded usage
// will spend, then its share (Zipf s=1.1, as the load itself) of the usage
// entries, evenly spaced from the day after that credit to the end of
// yesterday. The entries are generated inside the database (PostgreSQL:
// INSERT … SELECT generate_series; SQLite: a recursive CTE) and everything
// around them is written as the debit path would have: each balance_after
// is the running sum, each entry's funding line draws on the credit's
// grant, which ends used (remaining 0), the account's balance (0),
// last_seq and turnover match its entries, and daily_totals holds every
// account-day. The bench's own grants then come on top, now, so the
// balances the bench checks are unchanged and `topup verify` stays clean.

// seedIDHead is how this run's seeded entry ids begin: "ent_", the ULID
// time of now (so that runs differ) and three random characters; then come
// the account's index in four characters and the entry's number in nine
// digits, 26 characters after "ent_" as every entry id.
func seedIDHead() string {
	u := ids.New(clock.System).New(ids.Entry) // "ent_" + 26 characters, the first 10 the time
	var r [2]byte
	rand.Read(r[:])
	return u[:4+10] + seedBase32(int64(r[0])<<8|int64(r[1]), 3)
}

// seedBase32 writes v in width characters of the ids' alphabet (Crockford
// base 32, lower case), keeping its lowest bits.
func seedBase32(v int64, width int) string {
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	b := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		b[i] = alphabet[v&31]
		v >>= 5
	}
	return string(b)
}

// seedClock is the store's clock during a bench: at a fixed moment while
// the history is seeded, the system's time otherwise.
type seedClock struct{ at atomic.Int64 }

func (c *seedClock) Now() time.Time {
	if v := c.at.Load(); v != 0 {
		return time.UnixMicro(v).UTC()
	}
	return time.Now().UTC()
}

var _ clock.Clock = (*seedClock)(nil)

// seedPlan is what --seed-entries writes: per account, how many usage
// entries, and the span they are spread over.
type seedPlan struct {
	counts []int64 // per account of the first set, Zipf over accounts
	// credited is when each account's seed credit is made; the usage runs
	// from start to end (exclusive), evenly spaced.
	credited, start, end time.Time
}

// newSeedPlan spreads n entries over m accounts as the load's Zipf draws
// do (account k has weight (k+1)^-s), the rounding left over going to the
// hottest accounts.
func newSeedPlan(n int64, m int, now time.Time) seedPlan {
	w := make([]float64, m)
	var h float64
	for k := range w {
		w[k] = math.Pow(float64(k+1), -benchZipfS)
		h += w[k]
	}
	p := seedPlan{counts: make([]int64, m)}
	var given int64
	for k := range w {
		p.counts[k] = int64(float64(n) * w[k] / h)
		given += p.counts[k]
	}
	for k := 0; given < n; k = (k + 1) % m {
		p.counts[k]++
		given++
	}
	today := now.UTC().Truncate(24 * time.Hour)
	month := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
	p.credited = month.AddDate(0, -13, 0)
	p.start, p.end = p.credited.Add(24*time.Hour), today
	return p
}

// step is the micros between two of an account's n seeded entries.
func (p seedPlan) step(n int64) int64 {
	return max(1, (p.end.UnixMicro()-p.start.UnixMicro())/n)
}

// seedPiece is a run of one account's seeded entries, numbers lo..hi.
type seedPiece struct {
	account, prefix, grant string
	n, start, step, lo, hi int64
}

// seedMaxPiece bounds the rows of one generated insert, and
// seedSQLiteTxRows those of one SQLite transaction (so that its WAL is
// checkpointed along the way); PostgreSQL seeds in one transaction.
const (
	seedMaxPiece     = 250_000
	seedSQLiteTxRows = 1_000_000
)

// seed writes the plan's history for the first len(p.counts) accounts; it
// runs before the bench's own grants. report, when not nil, is told the
// entries written so far.
func (b *bench) seed(ctx context.Context, store *sqlstore.DB, clk *seedClock, p seedPlan, report func(done int64)) error {
	amount := int64(b.cfg.amount)
	// The seed credits, made at p.credited through the store: each is the
	// account's first entry and makes its one grant.
	clk.at.Store(p.credited.UnixMicro())
	grants := make([]string, len(p.counts))
	const chunk = 1000
	for lo := 0; lo < len(p.counts); lo += chunk {
		var posts []ledger.Posting
		var which []int
		for i := lo; i < min(lo+chunk, len(p.counts)); i++ {
			if p.counts[i] == 0 {
				continue
			}
			posts = append(posts, ledger.Posting{AccountID: b.accounts[i], Kind: ledger.KindCredit, Amount: money.Amount(p.counts[i] * amount),
				Description: "bench seed", IdempotencyKey: "bench-seed-" + b.runID, Call: ledger.ScopeCredit})
			which = append(which, i)
		}
		if len(posts) == 0 {
			continue
		}
		res, err := store.Post(ctx, posts)
		if err != nil {
			clk.at.Store(0)
			return fmt.Errorf("bench: seed credits: %w", err)
		}
		for j, r := range res {
			if r.Err != nil || r.Replayed || r.GrantID == "" {
				clk.at.Store(0)
				return fmt.Errorf("bench: seed credit of %s: replayed=%v grant=%q err=%v", posts[j].AccountID, r.Replayed, r.GrantID, r.Err)
			}
			grants[which[j]] = r.GrantID
		}
	}
	clk.at.Store(0)

	idHead := seedIDHead()
	var pieces []seedPiece
	for i, n := range p.counts {
		if n == 0 {
			continue
		}
		prefix := idHead + seedBase32(int64(i), 4)
		for lo := int64(2); lo <= n+1; lo += seedMaxPiece {
			pieces = append(pieces, seedPiece{account: b.accounts[i], prefix: prefix, grant: grants[i], n: n,
				start: p.start.UnixMicro(), step: p.step(n), lo: lo, hi: min(lo+seedMaxPiece-1, n+1)})
		}
	}
	pg := store.DialectName() == "postgres"
	db := store.DB()
	var done int64
	for len(pieces) > 0 {
		// One transaction on PostgreSQL; on SQLite, about a million rows
		// per transaction.
		var take int
		var rows int64
		for take < len(pieces) && (pg || rows < seedSQLiteTxRows) {
			rows += pieces[take].hi - pieces[take].lo + 1
			take++
		}
		batch := pieces[:take]
		pieces = pieces[take:]
		last := len(pieces) == 0
		err := seedTx(ctx, db, func(tx *sql.Tx) error {
			if err := seedEntries(ctx, tx, pg, amount, batch, func(n int64) {
				done += n
				if report != nil {
					report(done)
				}
			}); err != nil {
				return err
			}
			if !last {
				return nil
			}
			return b.seedFinish(ctx, tx, p, grants, amount)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// seedTx runs fn in one transaction of db.
func seedTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("bench: seed: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("bench: seed: commit: %w", err)
	}
	return nil
}

// seedInsert is the head of the seeded entries' insert; seedPG and
// seedSQLite generate its rows: entry k (2..n+1) of an account spends
// amount, leaves (n+1-k)·amount, is dated start + (k-2)·step, and draws
// the whole amount from the seed credit's (promotional) grant.
const (
	seedInsert = `INSERT INTO entries (account_id, seq, id, kind, amount, balance_after, description, subject, idempotency_key,
top_up_id, created_at, grant_id, hold_id, funding) `
	seedPG = seedInsert + `SELECT p.acct, s.k, p.prefix || lpad(s.k::text, 9, '0'), 'usage', -$1::bigint, (p.n + 1 - s.k) * $1::bigint, '', '',
'seed-' || s.k, NULL, p.start + (s.k - 2) * p.step, NULL, NULL, p.grant_id || ':g:' || $1::text
FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
AS p(acct, prefix, grant_id, n, start, step, lo, hi)
CROSS JOIN LATERAL generate_series(p.lo, p.hi) AS s(k)`
	// SQLite: one statement per piece, its values written in (they are
	// numbers and ids this code made), as its $N parameters name rather
	// than number.
	seedSQLite = seedInsert + `WITH RECURSIVE s(k) AS (SELECT %[1]d UNION ALL SELECT k + 1 FROM s WHERE k < %[2]d)
SELECT '%[3]s', k, '%[4]s' || printf('%%09d', k), 'usage', -%[5]d, (%[6]d + 1 - k) * %[5]d, '', '', 'seed-' || k, NULL,
%[7]d + (k - 2) * %[8]d, NULL, NULL, '%[9]s:g:%[5]d' FROM s`
)

// seedEntries inserts the pieces' entries, PostgreSQL in statements of
// about seedMaxPiece rows, SQLite one statement per piece.
func seedEntries(ctx context.Context, tx *sql.Tx, pg bool, amount int64, pieces []seedPiece, report func(int64)) error {
	if !pg {
		for _, p := range pieces {
			for _, s := range []string{p.account, p.prefix, p.grant} {
				if strings.ContainsAny(s, `'\`) {
					return fmt.Errorf("seed: unexpected id %q", s)
				}
			}
			q := fmt.Sprintf(seedSQLite, p.lo, p.hi, p.account, p.prefix, amount, p.n, p.start, p.step, p.grant)
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("seed entries of %s: %w", p.account, err)
			}
			report(p.hi - p.lo + 1)
		}
		return nil
	}
	for len(pieces) > 0 {
		var acct, prefix, grant []string
		var n, start, step, lo, hi []int64
		var rows int64
		take := 0
		for take < len(pieces) && rows < seedMaxPiece {
			p := pieces[take]
			acct, prefix, grant = append(acct, p.account), append(prefix, p.prefix), append(grant, p.grant)
			n, start, step, lo, hi = append(n, p.n), append(start, p.start), append(step, p.step), append(lo, p.lo), append(hi, p.hi)
			rows += p.hi - p.lo + 1
			take++
		}
		if _, err := tx.ExecContext(ctx, seedPG, amount, acct, prefix, grant, n, start, step, lo, hi); err != nil {
			return fmt.Errorf("seed entries: %w", err)
		}
		pieces = pieces[take:]
		report(rows)
	}
	return nil
}

// seedFinish makes the accounts, grants and daily totals agree with the
// seeded entries: each account's balance is 0 (its credit spent), last_seq
// n+1, turnover twice the credit; its grant is used; each account-day of
// usage has its row.
func (b *bench) seedFinish(ctx context.Context, tx *sql.Tx, p seedPlan, grants []string, amount int64) error {
	now := time.Now().UnixMicro()
	for i, n := range p.counts {
		if n == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = 0, last_seq = $1, turnover = $2, updated_at = $3 WHERE id = $4`,
			n+1, 2*n*amount, now, b.accounts[i]); err != nil {
			return fmt.Errorf("seed account %s: %w", b.accounts[i], err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE grants SET remaining = 0, status = 'used' WHERE id = $1`, grants[i]); err != nil {
			return fmt.Errorf("seed grant %s: %w", grants[i], err)
		}
	}
	return seedDaily(ctx, tx, p, b.accounts, amount)
}

// seedDaily writes the daily totals of the seeded usage: per account and
// UTC day, the usage, and the balance after its last entry (also its
// lowest, as the balance only falls).
func seedDaily(ctx context.Context, tx *sql.Tx, p seedPlan, accounts []string, amount int64) error {
	const perStmt = 500
	var vals []string
	flush := func() error {
		if len(vals) == 0 {
			return nil
		}
		q := `INSERT INTO daily_totals (account_id, day, usage, credits, top_ups, top_up_credits, closing_balance, min_balance, removed) VALUES ` +
			strings.Join(vals, ", ") + sqlstore.DailyUpsert
		vals = vals[:0]
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed daily totals: %w", err)
		}
		return nil
	}
	const day = int64(24 * time.Hour / time.Microsecond)
	for i, n := range p.counts {
		if n == 0 {
			continue
		}
		start, step := p.start.UnixMicro(), p.step(n)
		// Entry k (0-based here) is dated start + k·step; walk the days.
		for k := int64(0); k < n; {
			d := (start + k*step) / day
			// The first entry of the next day: the least j with
			// start + j·step ≥ (d+1)·day.
			next := ((d+1)*day - start + step - 1) / step
			next = min(max(next, k+1), n)
			count := next - k
			closing := (n - next) * amount
			vals = append(vals, fmt.Sprintf("('%s', '%s', %d, 0, 0, 0, %d, %d, 0)", accounts[i],
				time.UnixMicro(d*day).UTC().Format(time.DateOnly), count*amount, closing, closing))
			if len(vals) == perStmt {
				if err := flush(); err != nil {
					return err
				}
			}
			k = next
		}
	}
	return flush()
}

// seedHistory seeds the plan, drawing its progress on a terminal, and
// notes for the run's heading what it wrote and how long it took.
func (b *bench) seedHistory(ctx context.Context, store *sqlstore.DB, p seedPlan) error {
	t0 := time.Now()
	bar := progress.New(b.stderr, b.cfg.seedEntries, "seed (entries)")
	var report func(int64)
	if bar != nil {
		report = func(done int64) { bar.Set(done) }
	}
	err := b.seed(ctx, store, b.clock, p, report)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	took := time.Since(t0)
	b.seeded = fmt.Sprintf("%s usage entries seeded (hottest account %s, %s–%s) in %s, %s entries/s",
		progress.Commas(b.cfg.seedEntries), progress.Commas(p.counts[0]), p.start.Format(time.DateOnly), p.end.Add(-time.Microsecond).Format(time.DateOnly),
		took.Round(100*time.Millisecond), progress.Commas(int64(float64(b.cfg.seedEntries)/took.Seconds())))
	return nil
}
