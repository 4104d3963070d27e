package soak

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/postgres"
)

// maxSamples bounds the broken items a check names.
const maxSamples = 5

// problems collects broken checks, each with a few samples.
type problems struct {
	list    []string
	samples map[string]int
}

func (p *problems) add(check, format string, args ...any) {
	if p.samples == nil {
		p.samples = map[string]int{}
	}
	p.samples[check]++
	if n := p.samples[check]; n <= maxSamples {
		p.list = append(p.list, check+": "+fmt.Sprintf(format, args...))
	} else if n == maxSamples+1 {
		p.list = append(p.list, check+": …and more")
	}
}

// check proves what the soak left, with the replicas stopped, and fills
// the report's lines; it returns the broken checks.
func (s *soak) check(ctx context.Context) ([]string, error) {
	var p problems
	if err := s.checkDebits(ctx, &p); err != nil {
		return nil, err
	}
	if err := s.checkMoney(ctx, &p); err != nil {
		return nil, err
	}
	if err := s.resumed(ctx); err != nil {
		return nil, err
	}
	if err := s.verify(ctx, &p); err != nil {
		return nil, err
	}
	s.checkRefusals(&p)
	if s.report.openAfterQuiet > 0 {
		p.add("quiet", "%d top-ups still open %s after the load", s.report.openAfterQuiet, s.cfg.Quiet)
	}
	if s.polls.doubles > 0 || s.polls.err != nil {
		p.add("polls", "%d samples found an account with two open automatic top-ups (poll error: %v)", s.polls.doubles, s.polls.err)
	}
	if s.report.deadlocks > 0 {
		p.add("deadlocks", "pg_stat_database counted %d deadlocks in the soak's database during the run", s.report.deadlocks)
	}
	if s.report.logDeadlocks > 0 {
		p.add("deadlocks", "PostgreSQL's log shows %d `deadlock detected` in the soak's database during the run", s.report.logDeadlocks)
	}
	return p.list, nil
}

// expectedRefusals are the refusals the product owes the soak's load: a
// hold beyond the available credit; a manual top-up while the account's
// card is being replaced (no card: invalid payment_method; the card
// detached during the charge: a processing_error decline). Any other (an idempotency conflict after a
// failover above all) breaks the check.
var expectedRefusals = map[string][]string{
	opHold:  {"402 insufficient_balance amount"},
	opTopUp: {"402 card_declined processing_error", "400 invalid payment_method"},
}

// checkRefusals proves every refusal was one the product owes the load.
func (s *soak) checkRefusals(p *problems) {
	for _, op := range opOrder {
		st := s.rec.ops[op]
		st.mu.Lock()
		for code, n := range st.codes {
			if !slices.Contains(expectedRefusals[op], code) {
				p.add("refusals", "%s answered %d × %s", op, n, code)
			}
		}
		st.mu.Unlock()
	}
}

// checkDebits proves every acknowledged debit (usage, batch event,
// capture) is in the ledger exactly once, as the entry its answer named,
// and that no debit the soak never sent is there.
func (s *soak) checkDebits(ctx context.Context, p *problems) error {
	byKey := map[string][]debitEntry{}
	err := s.scan(ctx, `SELECT idempotency_key, id, account_id FROM entries WHERE kind = 'usage'`, func(sc func(...any) error) error {
		var key string
		var e debitEntry
		err := sc(&key, &e.id, &e.account)
		byKey[key] = append(byKey[key], e)
		return err
	})
	if err != nil {
		return err
	}
	s.judgeDebits(byKey, p)
	return nil
}

// debitEntry is a usage entry of the ledger.
type debitEntry struct{ id, account string }

// judgeDebits holds the ledger's usage entries, by idempotency key, to
// what the load sent and was told.
func (s *soak) judgeDebits(byKey map[string][]debitEntry, p *problems) {
	r := &s.report
	for key, a := range s.rec.acked {
		got := byKey[key]
		if len(got) != 1 || got[0].id != a.entry || got[0].account != a.account {
			p.add("debits", "acknowledged %s (entry %s of %s) is in the ledger as %v", key, a.entry, a.account, got)
		}
	}
	for key, es := range byKey {
		switch {
		case !s.rec.sent[key]:
			p.add("debits", "%s is in the ledger but was never sent", key)
		case len(es) > 1:
			p.add("debits", "%s is in the ledger %d times", key, len(es))
		}
		if _, ok := s.rec.acked[key]; !ok {
			r.recordedUnacked++
		}
	}
	r.ackedDebits, r.sentDebits, r.ledgerDebits = len(s.rec.acked), len(s.rec.sent), len(byKey)
}

// soakTopUp is a top-up as the checks read it (times in Unix µs).
type soakTopUp struct {
	id, account, status, trigger string
	amount                       money.Amount
	created, completed           int64
}

// moneyIn is what the database says came in: top-ups, the sandbox's
// charges and the ledger's positive entries.
type moneyIn struct {
	topUps   map[string]soakTopUp
	charges  map[string][]money.Amount // succeeded charges' amounts per top-up
	stray    []string                  // succeeded charges for no top-up
	credits  map[string][]money.Amount // top_up entries per top-up
	positive map[string][2]int64       // kind → count, sum of its positive entries
}

// checkMoney proves every succeeded sandbox charge is credited exactly
// once with its amount, every top-up credit has its charge, nothing else
// credits an account but the soak's opening credits, every acknowledged
// manual top-up exists, and no account ever had two open automatic
// top-ups.
func (s *soak) checkMoney(ctx context.Context, p *problems) error {
	in, err := s.readMoney(ctx)
	if err != nil {
		return err
	}
	s.checkCharges(in, p)
	s.checkCredits(in, p)
	s.checkPositive(in, p)
	for id, acct := range s.rec.manual {
		if t, ok := in.topUps[id]; !ok || t.account != acct || t.trigger != "manual" {
			p.add("top-ups", "acknowledged manual top-up %s of %s is stored as %+v", id, acct, t)
		}
	}
	s.checkOneOpen(in, p)
	return s.checkRefunds(ctx, p)
}

// checkRefunds proves every acknowledged refund succeeded, of its top-up,
// with its refund entry exactly once, and that the sandbox made exactly the
// refunds the ledger holds: each succeeded sandbox refund is one succeeded
// refund of the ledger, and no other (verify proves the same from the
// store's side).
func (s *soak) checkRefunds(ctx context.Context, p *problems) error {
	type row struct {
		topUp, status string
		entries       int
	}
	ledgerRefunds := map[string]row{}
	byProvider := map[string]string{}
	err := s.scan(ctx, `SELECT r.id, r.top_up_id, r.status, COALESCE(r.provider_id, ''),
(SELECT count(*) FROM entries e WHERE e.kind = 'refund' AND e.idempotency_key = r.id) FROM refunds r`, func(sc func(...any) error) error {
		var id, provider string
		var r row
		if err := sc(&id, &r.topUp, &r.status, &provider, &r.entries); err != nil {
			return err
		}
		ledgerRefunds[id], byProvider[provider] = r, id
		return nil
	})
	if err != nil {
		return err
	}
	for id, topUp := range s.rec.refund {
		if r, ok := ledgerRefunds[id]; !ok || r.topUp != topUp || r.status != "succeeded" || r.entries != 1 {
			p.add("refunds", "acknowledged refund %s of %s is stored as %+v", id, topUp, r)
		}
	}
	sandbox := 0
	err = s.scan(ctx, `SELECT id FROM sandbox_refunds WHERE status = 'succeeded'`, func(sc func(...any) error) error {
		var id string
		if err := sc(&id); err != nil {
			return err
		}
		sandbox++
		if r, ok := ledgerRefunds[byProvider[id]]; !ok || r.status != "succeeded" || r.entries != 1 {
			p.add("refunds", "sandbox refund %s is in the ledger as %+v", id, r)
		}
		return nil
	})
	s.report.refunds = sandbox
	return err
}

// checkCharges proves each succeeded sandbox charge belongs to a top-up,
// which succeeded with its amount, is its only succeeded charge and is
// credited once with that amount.
func (s *soak) checkCharges(in *moneyIn, p *problems) {
	r := &s.report
	for _, id := range in.stray {
		p.add("charges", "succeeded sandbox charge %s names no top-up", id)
	}
	for id, cs := range in.charges {
		t, ok := in.topUps[id]
		credits := in.credits[id]
		switch {
		case !ok:
			p.add("charges", "sandbox charge for unknown top-up %s", id)
		case len(cs) != 1:
			p.add("charges", "top-up %s has %d succeeded charges %v", id, len(cs), cs)
		case t.status != "succeeded" || t.amount != cs[0]:
			p.add("charges", "top-up %s is %s of %s but its charge succeeded with %s", id, t.status, t.amount, cs[0])
		case len(credits) != 1 || credits[0] != cs[0]:
			p.add("charges", "top-up %s charged %s is credited %v", id, cs[0], credits)
		}
		r.charges += len(cs)
		for _, c := range cs {
			r.charged += c
		}
	}
}

// checkCredits proves every top-up credit has its succeeded charge and
// every succeeded top-up is credited.
func (s *soak) checkCredits(in *moneyIn, p *problems) {
	r := &s.report
	r.topUps = map[string]int{}
	for id, cr := range in.credits {
		if len(in.charges[id]) == 0 {
			p.add("charges", "top-up %s is credited %v without a succeeded charge", id, cr)
		}
		for _, c := range cr {
			r.credited += c
		}
	}
	for _, t := range in.topUps {
		r.topUps[t.trigger+" "+t.status]++
		if t.status == "succeeded" && len(in.credits[t.id]) == 0 {
			p.add("charges", "top-up %s succeeded but is not credited", t.id)
		}
	}
}

// checkPositive proves the only positive entries are top-up credits and
// the soak's opening credits, one per account.
func (s *soak) checkPositive(in *moneyIn, p *problems) {
	grant, _ := money.Parse(soakGrant)
	for kind, cs := range in.positive {
		switch kind {
		case "top_up":
			if money.Amount(cs[1]) != s.report.credited {
				p.add("credits", "top_up entries add up to %s, the top-up credits to %s", money.Amount(cs[1]), s.report.credited)
			}
		case "credit":
			if cs[0] != int64(len(s.accounts)) || money.Amount(cs[1]) != grant*money.Amount(len(s.accounts)) {
				p.add("credits", "%d credits of %s in all; want the %d opening credits of %s", cs[0], money.Amount(cs[1]), len(s.accounts), grant)
			}
		default:
			p.add("credits", "%d positive %s entries (%s) the soak never asked for", cs[0], kind, money.Amount(cs[1]))
		}
	}
}

// checkOneOpen proves each automatic top-up was created at or after the
// previous one of its account closed (both stamped inside their
// transactions): never two open at once.
func (s *soak) checkOneOpen(in *moneyIn, p *problems) {
	var auto []soakTopUp
	for _, t := range in.topUps {
		if t.trigger != "manual" {
			auto = append(auto, t)
		}
	}
	slices.SortFunc(auto, func(x, y soakTopUp) int {
		return cmp.Or(cmp.Compare(x.account, y.account), cmp.Compare(x.created, y.created), cmp.Compare(x.id, y.id))
	})
	for i := 1; i < len(auto); i++ {
		prev, t := auto[i-1], auto[i]
		if prev.account == t.account && (prev.completed == 0 || t.created < prev.completed) {
			p.add("one open", "%s: automatic top-up %s created while %s was open", t.account, t.id, prev.id)
		}
	}
	s.report.autoTopUps = len(auto)
}

// readMoney reads top-ups, charges and positive entries.
func (s *soak) readMoney(ctx context.Context) (*moneyIn, error) {
	in := &moneyIn{topUps: map[string]soakTopUp{}, charges: map[string][]money.Amount{}, credits: map[string][]money.Amount{}, positive: map[string][2]int64{}}
	err := s.scan(ctx, `SELECT id, account_id, status, trigger, COALESCE(amount, 0), created_at, completed_at FROM top_ups`, func(sc func(...any) error) error {
		var t soakTopUp
		err := sc(&t.id, &t.account, &t.status, &t.trigger, &t.amount, &t.created, &t.completed)
		in.topUps[t.id] = t
		return err
	})
	if err == nil {
		err = s.scan(ctx, `SELECT id, top_up_id, amount, currency FROM sandbox_charges WHERE status = 'succeeded'`, func(sc func(...any) error) error {
			var id, topUp, currency string
			var minor int64
			if err := sc(&id, &topUp, &minor, &currency); err != nil {
				return err
			}
			cur, err := money.LookupCurrency(currency)
			if err != nil {
				return fmt.Errorf("soak: sandbox charge %s: %w", id, err)
			}
			amount, err := money.FromMinor(minor, cur)
			if topUp == "" {
				in.stray = append(in.stray, id)
			} else {
				in.charges[topUp] = append(in.charges[topUp], amount)
			}
			return err
		})
	}
	if err == nil {
		err = s.scan(ctx, `SELECT top_up_id, amount FROM entries WHERE kind = 'top_up'`, func(sc func(...any) error) error {
			var id string
			var amount money.Amount
			err := sc(&id, &amount)
			in.credits[id] = append(in.credits[id], amount)
			return err
		})
	}
	if err == nil {
		err = s.scan(ctx, `SELECT kind, count(*), sum(amount) FROM entries WHERE amount > 0 GROUP BY kind`, func(sc func(...any) error) error {
			var kind string
			var n, sum int64
			err := sc(&kind, &n, &sum)
			in.positive[kind] = [2]int64{n, sum}
			return err
		})
	}
	return in, err
}

// scan runs q and calls row for each row with its Scan.
func (s *soak) scan(ctx context.Context, q string, row func(func(...any) error) error, args ...any) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return fmt.Errorf("soak: %s: %w", q, err)
		}
	}
	return rows.Err()
}

// resumed sets, for each kill, how long after it the last automatic and
// the last manual top-up open at that moment settled: the killed
// replica's were resumed by another once their lease ran out.
func (s *soak) resumed(ctx context.Context) error {
	for i := range s.kills {
		k := &s.kills[i]
		if len(k.open) == 0 {
			continue
		}
		err := s.scan(ctx, `SELECT trigger = 'manual', count(*), count(*) FILTER (WHERE completed_at = 0), max(completed_at)
			FROM top_ups WHERE id = ANY($1) GROUP BY 1`, func(sc func(...any) error) error {
			var manual bool
			var st settling
			var last int64
			if err := sc(&manual, &st.open, &st.never, &last); err != nil {
				return err
			}
			st.last = time.UnixMicro(last).Sub(k.at)
			if manual {
				k.settled[1] = st
			} else {
				k.settled[0] = st
			}
			return nil
		}, k.open)
		if err != nil {
			return fmt.Errorf("soak: read the top-ups open at kill %d: %w", i+1, err)
		}
	}
	return nil
}

// verify runs the store's Verify on the soak's schema.
func (s *soak) verify(ctx context.Context, p *problems) error {
	store, err := postgres.Open(ctx, s.dbURL, clock.System, ids.New(clock.System))
	if err != nil {
		return fmt.Errorf("soak: open the store to verify: %w", err)
	}
	defer store.Close()
	t0 := time.Now()
	vs, err := store.Verify(ctx)
	s.report.verifyTook = time.Since(t0)
	if err != nil {
		return fmt.Errorf("soak: verify: %w", err)
	}
	for _, v := range vs {
		p.add("verify", "%v", v)
	}
	return nil
}
