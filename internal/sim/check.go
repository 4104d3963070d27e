package sim

import (
	"cmp"
	"fmt"
	"slices"
	"sort"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
)

// The invariants, checked after every step (the first broken one stops the
// run). Names are what a failure prints.
//
//   - verify: store.Verify finds nothing: every balance equals the sum of
//     its entries, entries are numbered without gaps with the running
//     balance, signs fit kinds, daily totals add up, every top-up credit has
//     a succeeded top-up of the same amount and every succeeded top-up a
//     credit, at most one open automatic top-up per account.
//   - one-open-automatic-top-up: at most one automatic top-up (trigger
//     threshold or settings) per account is pending, processing or
//     requires_action.
//   - idempotent-postings: every posting the client was answered for
//     (acknowledged) has exactly one entry, the one it was answered with;
//     every usage and credit entry belongs to a posting the client sent, with
//     the amount it was first sent with, and no (account, call, key) has two
//     entries — a posting committed but never answered (a crash between the
//     commit and the answer) may exist, but once; a key re-sent replays its
//     first answer, and re-sent with another amount is a conflict.
//   - one-charge-per-credit: every top-up credit is backed by exactly one
//     charge the provider made for that top-up that succeeded, of the same
//     amount.
//   - charged-at-most-once: the provider holds at most one succeeded charge
//     per top-up, every charge names a top-up Topup has, and no retry reused
//     an idempotency key with other parameters.
//   - answers-settle: when the provider gave Topup a final answer (a charge
//     succeeded or declined, or waiting for 3-D Secure) and the process did
//     not die before the step ended, the top-up shows it at the end of that
//     step: succeeded; not open; not pending or processing.
//   - monthly-limit (checked when an automatic top-up's amount is fixed, just
//     before its first charge; hooks.go): amount + the amounts of the
//     account's automatic top-ups fixed earlier in the same calendar month
//     (UTC) that are succeeded or still open at that moment <= the account's
//     monthly_limit at that moment. A limit changed later does not apply to
//     amounts fixed before; a top-up that failed does not count, even if a
//     late success of its charge is credited afterwards (Stats.Revived
//     counts those).
//   - monthly-limit-charged (only with Config.StrictLimit): a top-up given
//     up on and credited later, because its charge succeeded after all,
//     does not take its month's succeeded automatic top-ups past the limit
//     (on in CI and by default on the command line).
//   - charges-the-card-in-use (checked with monthly-limit): an automatic
//     top-up's first charge is sent only while Automatic Top-Up is on, and to
//     its named card, or else to the account's default card of that moment
//     (a card removed since the crossing is never charged).
//   - open-top-ups-end (a quiet period, ops.go): once the provider answers
//     every request truthfully, webhooks are delivered and nothing crashes,
//     a top-up open when the quiet began is no longer pending or processing
//     after the clock passes the lease (2 min) and the longest retry wait
//     (5 min) and the engine makes one pass, and is final once the clock
//     passes the 24 hours of 3-D Secure and a sweep.
//   - every-charge-credited (the end of a quiet period): every charge the
//     provider made that succeeded is credited (its top-up succeeded).
//   - funding (grants.go): every negative entry's funding lines add up to
//     its amount, take the grants in the spending order (a refund's or a
//     dispute's entry: its top-up's grant first) with overdraft last,
//     never draw a usage on a grant whose expires_at had come (the debit
//     expires it first), and an expiration takes exactly its own grant,
//     expired by then. Operator credits make grants of random categories,
//     priorities and expiries minutes to days ahead.
//   - holds (holds.go): a hold is made exactly when available credit
//     covers it (402 insufficient_balance otherwise), leaves available at
//     or above zero and raises held by its amount, balance unchanged;
//     every acknowledged capture has exactly one usage entry, with its
//     hold_id, written before the hold's expires_at and no larger than
//     the hold, and the hold reads captured with that entry and amount; a
//     capture or release refused 409 finds the hold captured or expired,
//     and a capture answered once is never refused when sent again; a
//     hold reads expired from its expires_at on and never before, released
//     once released; and held as read (the account, through the store's
//     own refresh of expired holds) equals the holds the client made and
//     neither captured nor released whose expires_at is ahead (Verify
//     proves the row's held against the holds' written status; this
//     proves it against the clock). Every hold answers a request the
//     client sent, for its amount.
//   - expiry (expiry.go): after an expiry pass that held the lease and ran
//     to its end, no grant whose expires_at had come when the pass began
//     is active (stricter than the contract's minute: the worker sweeps
//     everything due at its start); one expiration entry per grant; the
//     customer is told credit.expired once per expiration entry, and
//     never without one, and credit.expiring at most once per grant.
//   - void (expiry.go): an acknowledged void has exactly one void entry,
//     for the grant it named, and a grant at most one; a void sent again
//     replays its answer (never 409); a 409 answers only a grant that is
//     no longer active, or has nothing left, or whose expiry has come.
//   - refund-in-ledger-once (refunds.go): a refund's entry, and its
//     reversal, are each in the ledger at most once, a reversal only after
//     its entry; a refund Topup holds as succeeded has exactly one refund
//     entry with its id (none when it took nothing: its grant was spent,
//     expired or voided); at the end of a quiet period, every refund the
//     provider made that succeeded has its one entry and no reversal, and
//     a failed one as many reversals as entries.
//   - refunded-within-amount (refunds.go, after steps that may change
//     refunds or disputes): for every top-up, its refunds that succeeded
//     plus what disputes withdrew and did not reinstate is at most its
//     amount.
//   - dispute-entries-once (refunds.go): a dispute's entry and its
//     reversal are each in the ledger at most once, a reversal only after
//     its entry (verify proves what they take against the disputes' rows).
//   - refunds-final (the end of a quiet period): no refund is pending, and
//     the provider's refund log equals Topup's refunds: each refund the
//     provider made is Topup's (by its id), with the same status and
//     provider id, and every refund Topup holds as succeeded the provider
//     made.
//   - one-open-automatic-top-up (above) also holds while holds take
//     available below the threshold and trigger top-ups (Stats.HoldTopUps).
//   - no-internal-error, no-panic: no call of Topup fails with an internal
//     error, logs an error or panics; the run is single-threaded and the
//     database healthy, so there is no excuse.
func (s *Sim) check() {
	st := s.step
	store := s.proc.store
	// Verify is a function of the database alone: after a step that wrote
	// nothing (the clock moved, a duplicate webhook, a pass that found
	// nothing due) it would find what it found after the last one.
	var vs []ledger.Violation
	wrote := false
	mark := s.db.writeMark(s.ctx, store)
	if mark == "" || mark != s.verified {
		var err error
		if vs, err = store.Verify(s.ctx); err != nil {
			panic(simError{fmt.Errorf("verify: %w", err)})
		}
		s.verified = mark
		wrote = true
	}
	slices.SortFunc(vs, func(a, b ledger.Violation) int {
		return cmp.Or(cmp.Compare(a.AccountID, b.AccountID), cmp.Compare(a.Problem, b.Problem))
	})
	for _, v := range vs {
		st.fail("verify", "%s: %s", s.nameOf(v.AccountID), v.Problem)
	}

	tus := s.readTopUps()
	openAuto := map[string]string{}
	for _, t := range tus {
		if t.Status.Open() && t.Trigger != topup.TriggerManual {
			if other, ok := openAuto[t.AccountID]; ok {
				st.fail("one-open-automatic-top-up", "%s has automatic top-ups %s and %s open", s.nameOf(t.AccountID), other, t.ID)
			}
			openAuto[t.AccountID] = t.ID
		}
	}

	s.readEntries()
	s.checkAcked()

	succ := s.stripe.succeededFor()
	for _, id := range sortedKeys(s.credits) {
		c := s.credits[id]
		charges := succ[id]
		if len(charges) != 1 {
			st.fail("one-charge-per-credit", "top-up %s is credited (%s, %s) but the provider holds %d succeeded charges for it", id, c.entry, c.amount, len(charges))
			continue
		}
		cur := s.currency(c.acct)
		paid, err := money.FromMinor(charges[0].Amount, cur)
		if err != nil || paid != c.amount {
			st.fail("one-charge-per-credit", "top-up %s is credited %s but its charge %s was %d %s", id, c.amount.Format(cur), charges[0].ID, charges[0].Amount, charges[0].Currency)
		}
	}
	for _, id := range sortedKeys(succ) {
		if cs := succ[id]; len(cs) > 1 {
			ids := make([]string, len(cs))
			for i, c := range cs {
				ids[i] = c.ID + " (" + c.IdempotencyKey + ")"
			}
			st.fail("charged-at-most-once", "top-up %s was charged %d times: %v", id, len(cs), ids)
		}
	}
	for _, c := range s.stripe.charges {
		if _, ok := s.status[c.TopUpID]; !ok {
			st.fail("charged-at-most-once", "charge %s names top-up %q, which Topup does not have", c.ID, c.TopUpID)
		}
	}
	if len(s.stripe.misuse) > 0 {
		st.fail("charged-at-most-once", "idempotency keys reused with other parameters: %v", s.stripe.misuse)
	}

	s.checkGrantsAndHolds(mark)
	s.checkRefunds(wrote)

	if !st.crashed {
		for _, ch := range st.answers {
			got := s.status[ch.TopUpID]
			switch {
			case ch.Status == payment.Succeeded && got != topup.Succeeded:
				st.fail("answers-settle", "the provider answered that %s (%s) succeeded, but the top-up is %s", ch.TopUpID, ch.ID, got)
			case ch.Status == payment.Declined && ch.DeclineCode != "authentication_required" && got.Open():
				st.fail("answers-settle", "the provider answered that %s (%s) was declined, but the top-up is %s", ch.TopUpID, ch.ID, got)
			case (ch.Status == payment.RequiresAction || ch.DeclineCode == "authentication_required") && (got == topup.Pending || got == topup.Processing):
				st.fail("answers-settle", "the provider answered that %s (%s) needs the customer, but the top-up is %s", ch.TopUpID, ch.ID, got)
			}
		}
	}
}

// checkAcked checks the postings answered since the last check against
// the ledger. Entries never change, so an acknowledged posting found once
// in the ledger stays there: each is checked after the step that answered
// it.
func (s *Sim) checkAcked() {
	st := s.step
	for _, k := range s.newlyAcked {
		a := s.acked[k]
		if e, ok := s.byKey[k]; !ok {
			st.fail("idempotent-postings", "posting %s of %s was acknowledged (entry %s) but is not in the ledger", k.key, s.nameOf(k.acct), a.entry)
		} else if e != a.entry {
			st.fail("idempotent-postings", "posting %s was acknowledged as entry %s but the ledger has %s", k.key, a.entry, e)
		}
		if h := a.posting.HoldID; h != "" && s.hb.byHold[h] != a.entry {
			st.fail("holds", "capture %s of hold %s was acknowledged as entry %s, but the hold's capture entry is %q", k.key, h, a.entry, s.hb.byHold[h])
		}
	}
	s.newlyAcked = s.newlyAcked[:0]
}

// checkGrantsAndHolds checks the invariants holds, expiry and void that
// need reads of their own.
func (s *Sim) checkGrantsAndHolds(mark string) {
	s.checkHolds(mark)
	s.checkExpiry()
	for _, a := range s.accounts {
		if s.step.allEvents || slices.Contains(s.step.expiredIn, a.id) {
			s.checkEvents(a)
		}
	}
}

// eventually checks, at the end of a quiet period, that every charge that
// succeeded is credited.
func (s *Sim) eventually() {
	for _, c := range s.stripe.charges {
		if c.Status != payment.Succeeded {
			continue
		}
		if got := s.status[c.TopUpID]; got != topup.Succeeded {
			// The status map is refreshed by check; read it now.
			if t := s.topUp(c.TopUpID); t.Status != topup.Succeeded {
				s.step.fail("every-charge-credited", "charge %s of top-up %s succeeded, but after a quiet period the top-up is %s %s", c.ID, c.TopUpID, t.Status, t.FailureCode)
				return
			}
		}
	}
}

type topUpRow struct {
	ID, AccountID string
	Status        topup.Status
	Trigger       topup.Trigger
}

func (s *Sim) readTopUps() []topUpRow {
	all, err := s.proc.store.AllTopUps(s.ctx)
	if err != nil {
		panic(simError{err})
	}
	out := make([]topUpRow, 0, len(all))
	for _, t := range all {
		out = append(out, topUpRow{ID: t.ID, AccountID: t.AccountID, Status: t.Status, Trigger: t.Trigger})
		s.status[t.ID] = t.Status
	}
	return out
}

// readEntries reads the entries written since the last check (entries
// never change: the database refuses it, and Verify proves the numbering)
// and checks each against what the client sent.
func (s *Sim) readEntries() {
	accts, err := s.proc.store.AccountSeqs(s.ctx)
	if err != nil {
		panic(simError{err})
	}
	for _, a := range accts {
		if a.LastSeq <= s.seen[a.AccountID] {
			continue
		}
		s.readAccountEntries(a.AccountID)
	}
}

func (s *Sim) readAccountEntries(acct string) {
	st := s.step
	entries, err := s.proc.store.EntriesAfter(s.ctx, acct, s.seen[acct])
	if err != nil {
		panic(simError{err})
	}
	for _, e := range entries {
		id, kind, key, topUp, amount := e.ID, string(e.Kind), e.IdempotencyKey, e.TopUpID, e.Amount
		s.seen[acct] = e.Seq
		if amount < 0 {
			s.checkFunding(e)
		}
		switch e.Kind {
		case ledger.KindExpiration:
			s.stats.Expirations++
			s.readExpiration(e)
		case ledger.KindVoid:
			s.readVoid(e)
		case ledger.KindUsage, ledger.KindCredit:
			call := ledger.ScopeUsage
			switch {
			case kind == string(ledger.KindCredit):
				call = ledger.ScopeCredit
			case e.HoldID != "":
				call = ledger.ScopeCapture
				s.readCapture(e)
			}
			k := postKey{acct, call, key}
			if prev, ok := s.byKey[k]; ok {
				st.fail("idempotent-postings", "posting %s of %s is in the ledger twice: %s and %s", key, s.nameOf(acct), prev, id)
			}
			s.byKey[k] = id
			first, ok := s.first[k]
			switch {
			case !ok:
				st.fail("idempotent-postings", "entry %s (%s %s) answers no posting the client sent", id, kind, key)
			case money.Amount(first) != amount:
				st.fail("idempotent-postings", "entry %s for %s is %s, but the posting was %s", id, key, micros(int64(amount)), micros(first))
			}
		case ledger.KindTopUp:
			if prev, ok := s.credits[topUp]; ok {
				st.fail("one-charge-per-credit", "top-up %s is credited twice: %s and %s", topUp, prev.entry, id)
			}
			s.credits[topUp] = credit{entry: id, acct: acct, amount: amount}
		default:
			s.readClaw(e)
		}
	}
}

// readExpiration records an expiration entry: one per grant (the
// database allows no other), each told credit.expired (checkEvents).
func (s *Sim) readExpiration(e ledger.Entry) {
	m := s.expirations[e.AccountID]
	if m == nil {
		m = map[string]string{}
		s.expirations[e.AccountID] = m
	}
	if prev, ok := m[e.GrantID]; ok {
		s.step.fail("expiry", "grant %s expired twice: entries %s and %s", e.GrantID, prev, e.ID)
	}
	m[e.GrantID] = e.ID
	if !slices.Contains(s.step.expiredIn, e.AccountID) {
		s.step.expiredIn = append(s.step.expiredIn, e.AccountID)
	}
}

// readVoid checks a void entry: it answers a void the client sent, for the
// grant it named, once per key and once per grant.
func (s *Sim) readVoid(e ledger.Entry) {
	st := s.step
	k := postKey{e.AccountID, ledger.ScopeVoid, e.IdempotencyKey}
	if prev, ok := s.byKey[k]; ok {
		st.fail("void", "void %s of %s is in the ledger twice: %s and %s", k.key, s.nameOf(e.AccountID), prev, e.ID)
	}
	s.byKey[k] = e.ID
	if prev, ok := s.voided[e.GrantID]; ok {
		st.fail("void", "grant %s is voided twice: %s and %s", e.GrantID, prev, e.ID)
	}
	s.voided[e.GrantID] = e.ID
	if g, ok := s.sentGrant[k]; !ok || g != e.GrantID {
		st.fail("void", "void entry %s (key %s, grant %s) answers no void the client sent (it named %q)", e.ID, k.key, e.GrantID, g)
	}
}

// readCapture checks a capture's entry: one per hold, written while the
// hold was active.
func (s *Sim) readCapture(e ledger.Entry) {
	st := s.step
	if prev, ok := s.hb.byHold[e.HoldID]; ok {
		st.fail("holds", "hold %s is captured by two entries: %s and %s", e.HoldID, prev, e.ID)
	}
	s.hb.byHold[e.HoldID] = e.ID
	h := s.hb.holds[e.HoldID]
	switch {
	case h == nil:
		st.fail("holds", "entry %s captures hold %s, which the client never learned of", e.ID, e.HoldID)
	case h.acct != e.AccountID || !e.CreatedAt.Before(h.expiresAt) || -e.Amount > h.amount:
		st.fail("holds", "entry %s of %s captures %s at %s of hold %s (%s, %s, expiring %s)", e.ID, s.nameOf(e.AccountID), micros(int64(-e.Amount)),
			e.CreatedAt, h.id, s.nameOf(h.acct), micros(int64(h.amount)), h.expiresAt)
	}
}

// nameOf is an account's name in the traces (acct0, acct1…; the setup
// prints their ids).
func (s *Sim) nameOf(id string) string {
	for _, a := range s.accounts {
		if a.id == id {
			return a.name
		}
	}
	return id
}

func (s *Sim) currency(acct string) money.Currency {
	for _, a := range s.accounts {
		if a.id == acct {
			return a.cur
		}
	}
	return money.Currency{}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
