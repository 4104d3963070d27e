package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
)

const entryCols = `id, seq, kind, amount, balance_after, description, subject, idempotency_key, COALESCE(top_up_id, ''), created_at,
COALESCE(grant_id, ''), COALESCE(hold_id, ''), funding`

func scanEntry(r rowScanner, accountID string) (ledger.Entry, error) {
	e := ledger.Entry{AccountID: accountID}
	var kind, funding string
	var created int64
	if err := r.Scan(&e.ID, &e.Seq, &kind, &e.Amount, &e.BalanceAfter, &e.Description, &e.Subject, &e.IdempotencyKey, &e.TopUpID, &created,
		&e.GrantID, &e.HoldID, &funding); err != nil {
		return e, err
	}
	e.Kind, e.CreatedAt = ledger.Kind(kind), fromMicros(created)
	var err error
	if e.Funding, err = ledger.DecodeFunding(funding); err != nil {
		return e, fmt.Errorf("entry %s: %w", e.ID, err)
	}
	return e, nil
}

// Entries lists an account's entries, newest first.
func (s *Ledger) Entries(ctx context.Context, accountID string, p ledger.Page) ([]ledger.Entry, bool, error) {
	before := int64(1) << 62
	if p.StartingAfter != "" {
		err := s.read.QueryRowContext(ctx, `SELECT seq FROM entries WHERE account_id = $1 AND id = $2`, accountID, p.StartingAfter).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, apperr.Invalidf("starting_after", "no transaction %s on this account", p.StartingAfter)
		}
		if err != nil {
			return nil, false, err
		}
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE account_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, accountID, before, p.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list entries: %w", err)
	}
	defer rows.Close()
	var out []ledger.Entry
	for rows.Next() {
		e, err := scanEntry(rows, accountID)
		if err != nil {
			return nil, false, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > p.Limit
	if more {
		out = out[:p.Limit]
	}
	return out, more, nil
}

// Verify recomputes every balance from its entries and checks the ledger's
// invariants: balance = sum of entries; turnover = sum of their sizes; entries numbered 1..n without gaps;
// each entry's balance_after = the running sum; usage negative, credits
// positive; every top-up credit backed by a succeeded top-up of that amount
// and every succeeded top-up credited; at most one open automatic top-up per
// account; every succeeded sandbox charge credited, and none twice; the
// budget flag of every account agrees with its rows; every budget's spend
// equals the usage it covers since its period began; the balance equals
// the active grants' remaining less the overdraft; each grant's remaining
// equals its amount less its overdraft payback and the funding lines that
// took from it; held equals the active holds that have not expired, and
// every captured hold is recorded once, as the usage it captured; no entry
// drew on a grant at or after its expires_at, no
// grant is still active with something left behind a later negative entry
// than its expiry, and every expired or voided grant has its one entry;
// the sandbox's refund log equals the ledger's refunds.
func (s *Ledger) Verify(ctx context.Context) ([]ledger.Violation, error) {
	var out []ledger.Violation
	add := func(id, format string, args ...any) {
		out = append(out, ledger.Violation{AccountID: id, Problem: fmt.Sprintf(format, args...)})
	}
	rows, err := s.read.QueryContext(ctx, `SELECT a.id, a.balance, a.last_seq, a.turnover, CAST(COALESCE(SUM(e.amount), 0) AS BIGINT),
CAST(COALESCE(SUM(ABS(e.amount)), 0) AS BIGINT), COUNT(e.seq), COALESCE(MAX(e.seq), 0)
FROM accounts a LEFT JOIN entries e ON e.account_id = a.id GROUP BY a.id, a.balance, a.last_seq, a.turnover ORDER BY a.id`)
	if err != nil {
		return nil, fmt.Errorf("verify balances: %w", err)
	}
	for rows.Next() {
		var id string
		var balance, lastSeq, turnover, sum, sizes, count, maxSeq int64
		if err := rows.Scan(&id, &balance, &lastSeq, &turnover, &sum, &sizes, &count, &maxSeq); err != nil {
			rows.Close()
			return nil, err
		}
		if balance != sum {
			add(id, "balance %d micros but its entries sum to %d", balance, sum)
		}
		if turnover != sizes {
			add(id, "turnover %d micros but its entries' sizes sum to %d", turnover, sizes)
		}
		if count != lastSeq || maxSeq != lastSeq {
			add(id, "%d entries numbered up to %d, but the account counts %d", count, maxSeq, lastSeq)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	checks := verifyChecks
	ledger.ReportProgress(ctx, 1, len(checks)+1)
	for i, c := range checks {
		if err := s.eachPair(ctx, c.query, func(acct, id string) { add(acct, c.problem, id) }); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		ledger.ReportProgress(ctx, i+2, len(checks)+1)
	}
	if err := s.verifyGrants(ctx, add); err != nil {
		return nil, fmt.Errorf("verify grants: %w", err)
	}
	if err := s.verifySandboxRefunds(ctx, add); err != nil {
		return nil, fmt.Errorf("verify sandbox refunds: %w", err)
	}
	return out, nil
}

// verifyGrants proves each grant's remaining: its amount, less what it paid
// of the overdraft when it was made, less every funding line that took
// from it (usage, expiration and void entries alike).
func (s *core) verifyGrants(ctx context.Context, add func(id, format string, args ...any)) error {
	taken, lastDraw, err := s.fundingTaken(ctx, add)
	if err != nil {
		return err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT account_id, id, amount, remaining, paid_back, expires_at FROM grants ORDER BY account_id, id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var acct, id string
		var amount, remaining, paidBack, expires int64
		if err := rows.Scan(&acct, &id, &amount, &remaining, &paidBack, &expires); err != nil {
			return err
		}
		if want := amount - paidBack - taken[id]; remaining != want {
			add(acct, "grant %s: remaining %d micros, but its amount less payback and funding lines leaves %d", id, remaining, want)
		}
		if at, ok := lastDraw[id]; ok && expires != 0 && at >= expires {
			add(acct, "grant %s: an entry drew on it at or after its expires_at", id)
		}
	}
	return rows.Err()
}

// fundingTaken sums, per grant, what the funding lines of every entry took
// from it, and finds when an entry other than the grant's own expiration or
// void last took from it (lastDraw: never at or after its expires_at).
func (s *core) fundingTaken(ctx context.Context, add func(id, format string, args ...any)) (taken, lastDraw map[string]int64, err error) {
	taken, lastDraw = map[string]int64{}, map[string]int64{}
	rows, err := s.read.QueryContext(ctx, `SELECT account_id, id, kind, created_at, funding FROM entries WHERE funding <> ''`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var acct, id, kind, funding string
		var at int64
		if err := rows.Scan(&acct, &id, &kind, &at, &funding); err != nil {
			return nil, nil, err
		}
		lines, err := ledger.DecodeFunding(funding)
		if err != nil {
			add(acct, "entry %s: %v", id, err)
			continue
		}
		drew := ledger.Kind(kind) != ledger.KindExpiration && ledger.Kind(kind) != ledger.KindVoid
		for _, f := range lines {
			if f.GrantID == "" {
				continue
			}
			taken[f.GrantID] += int64(f.Amount)
			if drew {
				lastDraw[f.GrantID] = max(lastDraw[f.GrantID], at)
			}
		}
	}
	return taken, lastDraw, rows.Err()
}

func (s *core) eachPair(ctx context.Context, query string, fn func(a, b string)) error {
	rows, err := s.read.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		fn(a, b)
	}
	return rows.Err()
}

// verifyChecks are the invariants Verify checks with one query each:
// the query answers the account and the id the problem names.
var verifyChecks = []struct{ problem, query string }{
	{"entry %s: balance_after differs from the running sum of amounts", `SELECT account_id, id FROM (
SELECT account_id, id, balance_after, SUM(amount) OVER (PARTITION BY account_id ORDER BY seq) AS running FROM entries) r
WHERE running <> balance_after ORDER BY account_id LIMIT 1000`},
	{"entry %s: amount has the wrong sign for its kind (or an expiration or void names no grant)", `SELECT account_id, id FROM entries
WHERE (kind IN ('usage', 'refund', 'dispute') AND amount >= 0) OR (kind IN ('credit', 'top_up', 'refund_reversal', 'dispute_reversal') AND amount <= 0)
OR amount = 0 OR (kind IN ('expiration', 'void') AND (amount > 0 OR grant_id IS NULL)) ORDER BY account_id LIMIT 1000`},
	{"top-up %s: refunded and disputed more than its amount", `SELECT t.account_id, t.id FROM top_ups t
WHERE t.amount < COALESCE((SELECT CAST(SUM(r.amount) AS BIGINT) FROM refunds r WHERE r.top_up_id = t.id AND r.status IN ('pending', 'succeeded')), 0)
+ COALESCE((SELECT CAST(SUM(d.withdrawn) AS BIGINT) FROM disputes d WHERE d.top_up_id = t.id AND d.was_drawn AND NOT d.reinstated), 0) LIMIT 1000`},
	{"refund %s: its entries differ from what it took (one refund entry once it succeeded, and a reversal once it failed after that)", `SELECT r.account_id, r.id FROM refunds r
WHERE (r.status IN ('succeeded', 'failed') AND r.taken > 0 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.kind = 'refund' AND e.idempotency_key = r.id AND e.amount = -r.taken))
OR (r.status = 'failed' AND r.taken > 0 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.kind = 'refund_reversal' AND e.idempotency_key = r.id AND e.amount = r.taken))
OR (r.status = 'succeeded' AND EXISTS (SELECT 1 FROM entries e WHERE e.kind = 'refund_reversal' AND e.idempotency_key = r.id))
OR (r.status = 'pending' AND EXISTS (SELECT 1 FROM entries e WHERE e.kind IN ('refund', 'refund_reversal') AND e.idempotency_key = r.id)) LIMIT 1000`},
	{"entry %s: a refund or dispute entry that no refund or dispute accounts for", `SELECT e.account_id, e.id FROM entries e
WHERE (e.kind IN ('refund', 'refund_reversal') AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = e.idempotency_key AND r.top_up_id = e.top_up_id))
OR (e.kind IN ('dispute', 'dispute_reversal') AND NOT EXISTS (SELECT 1 FROM disputes d WHERE d.id = e.idempotency_key AND d.top_up_id = e.top_up_id)) LIMIT 1000`},
	{"dispute %s: its entries differ from what it took (one dispute entry once the funds were withdrawn, and a reversal once reinstated)", `SELECT d.account_id, d.id FROM disputes d
WHERE (d.taken > 0 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.kind = 'dispute' AND e.idempotency_key = d.id AND e.amount = -d.taken))
OR (d.reinstated AND d.taken > 0 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.kind = 'dispute_reversal' AND e.idempotency_key = d.id AND e.amount = d.taken))
OR (NOT d.reinstated AND EXISTS (SELECT 1 FROM entries e WHERE e.kind = 'dispute_reversal' AND e.idempotency_key = d.id)) LIMIT 1000`},
	{"entry %s: a top-up credit without a succeeded top-up of the same account and amount", `SELECT e.account_id, e.id FROM entries e
LEFT JOIN top_ups t ON t.id = e.top_up_id
WHERE e.kind = 'top_up' AND (t.id IS NULL OR t.status <> 'succeeded' OR t.amount <> e.amount OR t.account_id <> e.account_id) LIMIT 1000`},
	{"daily totals (%s) differ from the sum of the entries", `SELECT a.id, a.id FROM accounts a
LEFT JOIN (SELECT account_id, CAST(SUM(credits - usage - removed) AS BIGINT) AS n FROM daily_totals GROUP BY account_id) d ON d.account_id = a.id
LEFT JOIN (SELECT account_id, CAST(SUM(amount) AS BIGINT) AS n FROM entries GROUP BY account_id) e ON e.account_id = a.id
WHERE COALESCE(d.n, 0) <> COALESCE(e.n, 0)`},
	{"top-up %s succeeded but was never credited", `SELECT t.account_id, t.id FROM top_ups t
WHERE t.status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.top_up_id = t.id) LIMIT 1000`},
	{"more than one open automatic top-up (first %s)", `SELECT account_id, MIN(id) FROM top_ups
WHERE trigger <> 'manual' AND status IN ('pending', 'processing', 'requires_action') GROUP BY account_id HAVING COUNT(*) > 1`},
	{"top-up %s: the sandbox charged it more than once", `SELECT t.account_id, t.id FROM sandbox_charges c JOIN top_ups t ON t.id = c.top_up_id
WHERE c.status = 'succeeded' GROUP BY t.account_id, t.id HAVING COUNT(*) > 1`},
	{"sandbox charge %s succeeded but its top-up was not credited", `SELECT t.account_id, c.id FROM sandbox_charges c JOIN top_ups t ON t.id = c.top_up_id
WHERE c.status = 'succeeded' AND t.status <> 'succeeded' LIMIT 1000`},
	{"account %s: the has_budgets flag disagrees with its budgets", `SELECT a.id, a.id FROM accounts a
WHERE a.has_budgets <> EXISTS (SELECT 1 FROM budgets b WHERE b.account_id = a.id)`},
	{"budget %s: spent differs from the usage it covers in its period", `SELECT b.account_id, b.id FROM budgets b
WHERE b.spent <> (SELECT CAST(COALESCE(-SUM(e.amount), 0) AS BIGINT) FROM entries e WHERE e.account_id = b.account_id AND e.kind = 'usage'
AND e.seq > b.start_seq AND e.created_at >= b.period_start AND (b.subject = '' OR e.subject = b.subject)) LIMIT 1000`},
	// Expiry: a grant whose expires_at has come is expired by the first
	// transaction that lowers its account's balance after it (a debit, a
	// void, the worker's sweep), so none may still be active, with
	// something left, behind a later negative entry; a grant that left as
	// expired or voided did so by its one entry.
	{"grant %s still has remaining after its expires_at, behind a later negative entry", `SELECT g.account_id, g.id FROM grants g
WHERE g.status = 'active' AND g.remaining > 0 AND g.expires_at > 0 AND EXISTS (SELECT 1 FROM entries e
WHERE e.account_id = g.account_id AND e.amount < 0 AND e.created_at >= g.expires_at) LIMIT 1000`},
	{"grant %s is expired or voided but has no entry of that kind, or is not active yet keeps remaining", `SELECT g.account_id, g.id FROM grants g
WHERE (g.status <> 'active' AND g.remaining <> 0)
OR (g.status = 'expired' AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.grant_id = g.id AND e.kind = 'expiration'))
OR (g.status = 'voided' AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.grant_id = g.id AND e.kind = 'void')) LIMIT 1000`},
	// Against the entries, not the balance column, so that a wrong
	// balance is one problem (above), a wrong grant or overdraft another.
	{"the active grants' remaining less the overdraft (%s) differs from the sum of the entries", `SELECT a.id, a.id FROM accounts a
WHERE COALESCE((SELECT CAST(SUM(e.amount) AS BIGINT) FROM entries e WHERE e.account_id = a.id), 0) <>
COALESCE((SELECT CAST(SUM(g.remaining) AS BIGINT) FROM grants g WHERE g.account_id = a.id AND g.status = 'active'), 0) - a.overdraft`},
	// Held equals the active holds not expired: the row's held is the sum
	// of the holds whose status is active, and each of those expires at
	// held_until or later; so until held_until every one of them is
	// unexpired, and from then on every read counts them again.
	{"held (%s) differs from the sum of the account's active holds", `SELECT a.id, a.id FROM accounts a
WHERE a.held <> COALESCE((SELECT CAST(SUM(h.amount) AS BIGINT) FROM holds h WHERE h.account_id = a.id AND h.status = 'active'), 0)`},
	{"hold %s: active, but it expires before the account's held_until", `SELECT h.account_id, h.id FROM holds h JOIN accounts a ON a.id = h.account_id
WHERE h.status = 'active' AND (a.held_until = 0 OR h.expires_at < a.held_until) LIMIT 1000`},
	{"hold %s: captured, but not recorded as one usage entry of what it captured", `SELECT h.account_id, h.id FROM holds h
WHERE h.status = 'captured' AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.hold_id = h.id AND e.id = h.entry_id AND e.account_id = h.account_id
AND e.kind = 'usage' AND e.amount = -h.captured) LIMIT 1000`},
	{"entry %s: names a hold that it did not capture", `SELECT e.account_id, e.id FROM entries e LEFT JOIN holds h ON h.id = e.hold_id
WHERE e.hold_id IS NOT NULL AND (h.id IS NULL OR h.entry_id IS NULL OR h.entry_id <> e.id) LIMIT 1000`},
}
