package sim

import (
	"fmt"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/topup"
)

// do runs one step's action.
func (s *Sim) do(step Step) {
	switch step.Kind {
	case KindUsage:
		s.usage(step)
	case KindBatch:
		s.batch(step)
	case KindRetry:
		s.retry(step)
	case KindCommit:
		s.flush()
	case KindCredit:
		s.credit(step, s.acct(step))
		s.maybeFlush()
	case KindSettings:
		s.settings(step)
	case KindCardAdd:
		if a := s.acct(step); len(s.cards(a)) < 4 {
			s.addCard(a)
		}
	case KindCardRemove:
		s.removeCard(s.acct(step))
	case KindCardDefault:
		s.defaultCard(s.acct(step))
	case KindManual:
		s.manual(step)
	case KindRunOnce:
		for range 1 + s.step.rng.IntN(2) {
			n, err := s.proc.engine.RunOnce(s.ctx)
			if err != nil {
				s.internal("engine pass", err)
			}
			s.step.tracef("engine pass attempted %d", n)
		}
	case KindSweep:
		if _, err := s.proc.engine.Sweep(s.ctx); err != nil {
			s.internal("sweep", err)
		}
	case KindWebhook:
		s.webhook()
	case KindCustomer:
		s.customer()
	case KindClock:
		s.advance(time.Duration(step.Arg))
	case KindCrash:
		s.step.tracef("CRASH between steps")
		s.step.crashOK = false
		if err := s.restart(); err != nil {
			panic(simError{err})
		}
	case KindQuiet:
		s.quiet()
	default:
		s.doCredit(step)
	}
}

// doCredit runs the steps of holds, expiry and voids.
func (s *Sim) doCredit(step Step) {
	switch step.Kind {
	case KindHold:
		s.hold(step)
	case KindCapture:
		s.capture(step)
	case KindRelease:
		s.release(step)
	case KindExpiry:
		s.expiryPass()
	case KindVoid:
		s.void(step)
	case KindRefund:
		s.refundStep(step)
	case KindRefundPass:
		s.refundPass()
	case KindDispute:
		s.dispute(step)
	}
}

// acct is the account a step acts on, hot accounts weighing more.
func (s *Sim) acct(step Step) *account {
	total := 0
	for _, a := range s.accounts {
		total += a.weight
	}
	n := step.Acct % total
	for _, a := range s.accounts {
		if n < a.weight {
			return a
		}
		n -= a.weight
	}
	return s.accounts[0]
}

func (s *Sim) scaled(a *account, micros int64) money.Amount { return money.Amount(micros * a.scale) }

// submit queues a request in the committer, as the HTTP handler does.
func (s *Sim) submit(r *request) {
	for i := range r.postings {
		p := &r.postings[i]
		p.Prepare()
		if p.IsSweep() {
			continue
		}
		k := postKey{p.AccountID, p.Call, p.IdempotencyKey}
		if _, ok := s.first[k]; !ok && !r.conflict[i] {
			s.first[k] = int64(p.Amount)
			if p.Kind == ledger.KindVoid {
				s.sentGrant[k] = p.GrantID
			}
		}
	}
	s.proc.queue = append(s.proc.queue, r)
}

// revalidate is what the API judges again of a request sent again,
// before it reaches the committer: a credit's expires_at must still be
// ahead (input.Credit.Terms), so a credit re-sent after its grant's expiry
// is refused 400.
func (s *Sim) revalidate(postings []ledger.Posting) error {
	now := s.clock.Now()
	for _, p := range postings {
		if t := p.Terms; p.Kind == ledger.KindCredit && t.Category != "" {
			if err := ledger.CheckGrantTerms(t.Category, t.Priority, t.ExpiresAt, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// maybeFlush commits the queue now, most of the time: the committer's loop
// takes what is queued at once, and a few requests wait to share a group.
func (s *Sim) maybeFlush() {
	if s.step.rng.IntN(4) > 0 {
		s.flush()
	}
}

func usagePosting(a *account, amount money.Amount, key string) ledger.Posting {
	return ledger.Posting{AccountID: a.id, Kind: ledger.KindUsage, Amount: -amount, Description: "API usage", IdempotencyKey: key, Call: ledger.ScopeUsage}
}

func (s *Sim) usage(step Step) {
	a := s.acct(step)
	s.step.tracef("usage of %s on %s", s.scaled(a, step.Arg).Format(a.cur), a.name)
	s.submit(&request{postings: []ledger.Posting{usagePosting(a, s.scaled(a, step.Arg), fmt.Sprintf("u%d", step.N))}, conflict: []bool{false}, from: step.N})
	s.maybeFlush()
}

func (s *Sim) batch(step Step) {
	r := &request{from: step.N}
	rng := s.step.rng
	for i := range int(step.Arg) {
		if i > 0 && rng.IntN(12) == 0 {
			// A key repeated inside the batch: it replays the first.
			r.postings = append(r.postings, r.postings[rng.IntN(len(r.postings))])
		} else {
			a := s.acct(Step{Acct: rng.IntN(1 << 16)})
			r.postings = append(r.postings, usagePosting(a, s.scaled(a, usageAmount(rng)), fmt.Sprintf("b%d.%d", step.N, i)))
		}
		r.conflict = append(r.conflict, false)
	}
	s.submit(r)
	s.maybeFlush()
}

// retry is the metering client sending again: a request that was never
// answered (the same keys and bodies), a posting that was answered (it must
// replay), or an answered key with another amount (a conflict).
func (s *Sim) retry(step Step) {
	rng := s.step.rng
	n := rng.IntN(100)
	switch {
	case n < 50 && len(s.pending) > 0:
		i := rng.IntN(len(s.pending))
		r := s.pending[i]
		s.pending = append(s.pending[:i:i], s.pending[i+1:]...)
		s.step.tracef("client re-sends the unanswered request of step %d (%d postings)", r.from, len(r.postings))
		if err := s.revalidate(r.postings); err != nil {
			s.step.tracef("  refused by the API (%v): the client gives up on it", err)
			return
		}
		s.submit(&request{postings: r.postings, conflict: r.conflict, from: r.from})
	case len(s.ackList) > 0:
		k := s.ackList[rng.IntN(len(s.ackList))]
		p := s.acked[k].posting
		conflict := n >= 85
		if conflict {
			p.Amount--
			if p.Amount == 0 {
				p.Amount = -2
			}
			s.step.tracef("client re-sends key %s with another amount", k.key)
		} else {
			s.step.tracef("client re-sends answered key %s", k.key)
		}
		if err := s.revalidate([]ledger.Posting{p}); err != nil {
			s.step.tracef("  refused by the API (%v)", err)
			return
		}
		s.submit(&request{postings: []ledger.Posting{p}, conflict: []bool{conflict}, from: step.N})
	default:
		return
	}
	s.maybeFlush()
}

func (s *Sim) credit(step Step, a *account) {
	s.step.tracef("credit of %s to %s", s.scaled(a, step.Arg).Format(a.cur), a.name)
	p := ledger.Posting{AccountID: a.id, Kind: ledger.KindCredit, Amount: s.scaled(a, step.Arg), Description: "grant",
		IdempotencyKey: fmt.Sprintf("c%d.%d", step.N, step.Acct), Call: ledger.ScopeCredit, Terms: s.creditTerms()}
	if t := p.Terms; t.Category != "" {
		s.step.tracef("  a %s grant, priority %d, expiring %v", t.Category, t.Priority, t.ExpiresAt)
	}
	s.submit(&request{postings: []ledger.Posting{p}, conflict: []bool{false}, from: step.N})
}

// flush is one group commit: every queued request in one store.Post, and
// only after it committed does each caller get its answer.
func (s *Sim) flush() {
	q := s.proc.queue
	if len(q) == 0 {
		return
	}
	var group []ledger.Posting
	for _, r := range q {
		group = append(group, r.postings...)
	}
	s.crashPoint("before a group commit")
	results, err := s.proc.store.Post(s.ctx, group)
	if err != nil {
		s.internal("group commit", err)
		s.lose(q)
		s.proc.queue = nil
		return
	}
	s.stats.Groups++
	s.stats.Postings += len(group)
	s.step.tracef("group commit of %d requests, %d postings", len(q), len(group))
	s.crashPoint("after a group commit, before the answers")
	s.proc.queue = nil
	i := 0
	for _, r := range q {
		r.results = results[i : i+len(r.postings)]
		for j, p := range r.postings {
			s.answer(p, r.conflict[j], results[i])
			i++
		}
	}
}

// answer is the client receiving one posting's result (a sweep's is the
// expiry worker's, which checks it itself).
func (s *Sim) answer(p ledger.Posting, conflict bool, res ledger.Result) {
	k := postKey{p.AccountID, p.Call, p.IdempotencyKey}
	switch {
	case p.IsSweep():
	case p.Call == ledger.ScopeCapture && !conflict:
		s.answerCapture(p, res)
	case p.Call == ledger.ScopeVoid && !conflict:
		s.answerVoid(p, res)
	case conflict && ledger.IsConflict(res.Err):
		s.stats.Conflicts++
	case conflict:
		s.step.fail("idempotent-postings", "key %s re-sent with another amount was not refused as a conflict: %+v", k.key, res)
	case res.Err != nil:
		s.step.fail("idempotent-postings", "posting %s of %s refused: %v", k.key, micros(int64(p.Amount)), res.Err)
	default:
		if s.acknowledge(k, p, res) {
			s.ackList = append(s.ackList, k)
			s.stats.Acked++
		}
	}
}

// acknowledge records a posting's successful answer: the first for its
// key (first is true; the check finds its entry), or a replay, which must
// answer the same entry and say it is a replay.
func (s *Sim) acknowledge(k postKey, p ledger.Posting, res ledger.Result) (first bool) {
	if prev, ok := s.acked[k]; ok {
		if prev.entry != res.EntryID {
			s.step.fail("idempotent-postings", "key %s answered entry %s, and %s before", k.key, res.EntryID, prev.entry)
		}
		if !res.Replayed {
			s.step.fail("idempotent-postings", "key %s answered again without being marked a replay", k.key)
		}
		s.stats.Replays++
		return false
	}
	s.acked[k] = ack{entry: res.EntryID, posting: p}
	s.newlyAcked = append(s.newlyAcked, k)
	return true
}

// cards lists an account's cards, newest first.
func (s *Sim) cards(a *account) []topup.Card {
	cs, err := s.proc.store.Cards(s.ctx, a.id)
	if err != nil {
		panic(simError{err})
	}
	return cs
}

func (s *Sim) addCard(a *account) {
	rng := s.step.rng
	total := 0
	for _, k := range cardKinds {
		total += k.weight
	}
	n := rng.IntN(total)
	kind := cardKinds[0].kind
	for _, k := range cardKinds {
		if n < k.weight {
			kind = k.kind
			break
		}
		n -= k.weight
	}
	cust, err := s.proc.store.CustomerID(s.ctx, a.id)
	if err != nil {
		panic(simError{err})
	}
	if cust == "" {
		cust, _ = s.stripe.EnsureCustomer(s.ctx, "", a.id, "")
		s.crashPoint("after the provider made a customer")
		if cust, err = s.proc.store.SetCustomerID(s.ctx, a.id, cust); err != nil {
			s.internal("set customer", err)
			return
		}
	}
	pc, _ := s.stripe.AttachPaymentMethod(s.ctx, cust, string(kind))
	if rng.IntN(5) == 0 {
		// The hosted card page: Topup hears of the card by webhook.
		s.queueEvent(payment.Event{Type: "setup_intent.succeeded", Card: &pc, Customer: cust, AccountID: a.id})
		s.step.tracef("card %s (%s) saved on the hosted page for %s; a webhook will tell", pc.ID, kind, a.name)
		return
	}
	s.crashPoint("after the provider attached a card")
	if _, err := s.proc.store.AddCard(s.ctx, a.id, pc); err != nil {
		s.internal("add card", err)
		return
	}
	s.step.tracef("card %s (%s) added to %s", pc.ID, kind, a.name)
}

// inUse is the card Automatic Top-Up charges: the named one, or the
// default.
func (s *Sim) inUse(a *account, cards []topup.Card) string {
	st, _, err := s.proc.store.Settings(s.ctx, a.id)
	if err != nil {
		panic(simError{err})
	}
	if st.PaymentMethod != "" {
		return st.PaymentMethod
	}
	for _, c := range cards {
		if c.Default {
			return c.ID
		}
	}
	return ""
}

func (s *Sim) removeCard(a *account) {
	cards := s.cards(a)
	if len(cards) == 0 {
		return
	}
	id := cards[s.step.rng.IntN(len(cards))].ID
	if s.step.rng.IntN(2) == 0 {
		if u := s.inUse(a, cards); u != "" {
			id = u
		}
	}
	if s.step.rng.IntN(5) == 0 {
		// Detached at the provider (the customer's bank, the dashboard):
		// Topup hears of it by webhook, and may charge the card before.
		if err := s.stripe.DetachPaymentMethod(s.ctx, id); err == nil {
			s.queueEvent(payment.Event{Type: "payment_method.detached", Card: &payment.Card{ID: id}})
			s.step.tracef("card %s detached at the provider; a webhook will tell", id)
		}
		return
	}
	s.crashPoint("before a card removal")
	// billing removes the card, then detaches it at the provider through
	// simDetach, which may crash in between.
	disabled, err := s.proc.billing.RemoveCard(s.ctx, a.id, id)
	if err != nil {
		s.internal("remove card", err)
		return
	}
	s.stats.CardsRemoved++
	s.step.tracef("card %s removed from %s (auto top-up switched off: %v)", id, a.name, disabled)
}

func (s *Sim) defaultCard(a *account) {
	cards := s.cards(a)
	if len(cards) == 0 {
		return
	}
	id := cards[s.step.rng.IntN(len(cards))].ID
	if _, err := s.proc.store.SetDefaultCard(s.ctx, a.id, id); err != nil {
		s.internal("set default card", err)
		return
	}
	s.step.tracef("card %s is the default of %s", id, a.name)
}

func (s *Sim) settings(step Step) {
	s.saveSettings(s.acct(step), false)
}

// saveSettings saves random settings: enabled with thresholds, a named card
// (maybe the one about to be removed) and a monthly limit set, kept or
// removed; or switched off; or only the limit changed. Some saves are
// invalid and must change nothing.
func (s *Sim) saveSettings(a *account, enable bool) {
	rng := s.step.rng
	cur, _, err := s.proc.store.Settings(s.ctx, a.id)
	if err != nil {
		panic(simError{err})
	}
	unit := money.Amount(a.scale) * money.MicrosPerUnit
	cents := func(lo, hi int) money.Amount {
		if a.cur.Minor == 0 {
			return money.Amount(lo+rng.IntN(hi-lo+1)) * unit
		}
		return money.Amount((lo*100)+rng.IntN((hi-lo)*100+1)) * unit / 100
	}
	in := topup.Input{}
	on := true
	variant := rng.IntN(100)
	if enable {
		variant = 0
	}
	switch {
	case variant < 60:
		in.Enabled = &on
		th := cents(1, 60)
		tg := th + a.cur.MinCharge + cents(0, 25)
		if rng.IntN(4) == 0 {
			tg += cents(0, 80)
		}
		if rng.IntN(20) == 0 {
			tg = th // invalid: refused, nothing saved
		}
		in.Threshold, in.Target = &th, &tg
		if cards := s.cards(a); len(cards) > 0 && rng.IntN(4) == 0 {
			in.PaymentMethod = &cards[rng.IntN(len(cards))].ID
		}
		s.limitInput(&in, cents, rng.IntN(3))
	case variant < 72:
		off := false
		in.Enabled = &off
	default:
		en := cur.Enabled
		in.Enabled = &en
		s.limitInput(&in, cents, 1+rng.IntN(2))
	}
	s.crashPoint("before a settings save")
	st, created, err := s.proc.billing.SaveSettings(s.ctx, a.id, "sim", in)
	switch code := apperr.CodeOf(err); {
	case err == nil:
		s.stats.Settings++
		note := ""
		if created != nil {
			note = ", created " + created.ID
		}
		s.step.tracef("settings of %s: enabled %v threshold %s target %s limit %s card %q%s", a.name, st.Enabled, fmtAmount(st.Threshold, a.cur),
			fmtAmount(st.Target, a.cur), fmtAmount(st.MonthlyLimit, a.cur), st.PaymentMethod, note)
	case code == apperr.Invalid:
		s.stats.SettingsRefused++
		s.step.tracef("settings of %s refused: %v", a.name, err)
	default:
		s.internal("save settings", err)
	}
	s.crashPoint("after a settings save")
}

// limitInput sets monthly_limit: left out (0), a new cap (1), removed (2).
func (s *Sim) limitInput(in *topup.Input, cents func(lo, hi int) money.Amount, how int) {
	switch how {
	case 1:
		l := cents(10, 300)
		in.MonthlyLimit, in.MonthlyLimitSet = &l, true
	case 2:
		in.MonthlyLimitSet = true
	}
}

// manual is a manual top-up as POST …/top_ups does it, through billing:
// recorded under the request's key and charged at once; a replayed key
// returns the same top-up and charges nothing.
func (s *Sim) manual(step Step) {
	rng := s.step.rng
	var m manualReq
	if len(s.manuals) > 0 && rng.IntN(5) == 0 {
		m = s.manuals[rng.IntN(len(s.manuals))]
	} else {
		a := s.acct(step)
		unit := money.Amount(a.scale) * money.MicrosPerUnit
		m = manualReq{acct: a.id, amount: a.cur.MinCharge + money.Amount(rng.IntN(20))*unit, key: fmt.Sprintf("m%d", step.N)}
		if cards := s.cards(a); len(cards) > 0 && rng.IntN(4) == 0 {
			m.card = cards[rng.IntN(len(cards))].ID
		}
		s.manuals = append(s.manuals, m)
	}
	acct, err := s.proc.store.Account(s.ctx, m.acct)
	if err != nil {
		panic(simError{err})
	}
	s.crashPoint("before a manual top-up was recorded")
	t, replay, err := s.proc.billing.RecordManualTopUp(s.ctx, acct, m.amount, m.card, m.key)
	if err != nil {
		if c := apperr.CodeOf(err); c == apperr.Invalid || c == apperr.NotFound {
			s.step.tracef("manual top-up refused: %v", err)
			return
		}
		s.internal("create manual top-up", err)
		return
	}
	s.stats.Manual++
	s.step.tracef("manual top-up %s of %s on %s (replay %v, %s)", t.ID, m.amount, s.nameOf(m.acct), replay, t.Status)
	if replay {
		return
	}
	s.crashPoint("after a manual top-up was recorded, before its charge")
	if _, err := s.proc.engine.Attempt(s.ctx, t.ID); err != nil {
		s.internal("manual top-up attempt", err)
	}
}

// webhook delivers one queued provider event, any of them (out of order,
// late), and keeps it queued when Topup did not acknowledge it or, now and
// then, even when it did (a duplicate).
func (s *Sim) webhook() {
	if len(s.webhooks) == 0 {
		return
	}
	rng := s.step.rng
	s.step.refunds = true
	i := rng.IntN(len(s.webhooks))
	ev := s.webhooks[i]
	s.step.tracef("webhook %s", describeEvent(ev))
	s.crashPoint("before a webhook was applied")
	err := topup.ApplyEvent(s.ctx, engineStore{s, s.proc}, ev, s.backoff, s.log)
	if err != nil {
		s.internal("apply webhook "+ev.ID, err)
		return
	}
	s.stats.Webhooks++
	s.crashPoint("after a webhook was applied, before the 200")
	if !s.step.fault(0.1) {
		s.webhooks = append(s.webhooks[:i:i], s.webhooks[i+1:]...)
	}
}

// deliverNow delivers the first queued webhook about a charge at once, as
// the webhook handler would while the worker still waits for the answer.
func (s *Sim) deliverNow(chargeID string) {
	for i, ev := range s.webhooks {
		if ev.Charge == nil || ev.Charge.ID != chargeID {
			continue
		}
		s.step.tracef("webhook %s %s for %s arrives before the answer", ev.ID, ev.Type, ev.Charge.TopUpID)
		if err := topup.ApplyEvent(s.ctx, engineStore{s, s.proc}, ev, s.backoff, s.log); err != nil {
			s.internal("apply webhook "+ev.ID, err)
			return
		}
		s.stats.Webhooks++
		s.webhooks = append(s.webhooks[:i:i], s.webhooks[i+1:]...)
		return
	}
}

// customer is a customer answering a 3-D Secure challenge: on Topup's
// action page (the answer goes to the provider, then the page settles), or
// with Stripe.js (the answer goes to the provider, and Topup hears of it by
// webhook or when the page reloads); sometimes on a stale page, for a
// top-up Topup already gave up on.
func (s *Sim) customer() {
	rng := s.step.rng
	ok := rng.IntN(100) < 70
	if rng.IntN(10) == 0 {
		// A stale page: the customer answers a charge whose top-up Topup
		// no longer waits for (expired after 24 hours): Stripe.js confirms
		// the payment with the provider all the same.
		var stale []*sandbox.Charge
		for _, c := range s.stripe.charges {
			if st, ok := s.status[c.TopUpID]; c.Status == payment.RequiresAction && ok && !st.Open() {
				stale = append(stale, c)
			}
		}
		if len(stale) > 0 {
			c := stale[rng.IntN(len(stale))]
			s.stats.StaleAuth++
			s.step.tracef("customer answers a stale page for %s", c.TopUpID)
			s.stripe.authenticate(c.ID, ok)
			return
		}
	}
	waiting, err := s.proc.store.TopUpIDs(s.ctx, topup.RequiresAction)
	if err != nil {
		panic(simError{err})
	}
	if len(waiting) == 0 {
		return
	}
	id := waiting[rng.IntN(len(waiting))]
	if rng.IntN(6) == 0 {
		s.step.tracef("customer ignores the challenge of %s", id)
		return
	}
	t, err := s.proc.store.TopUpByID(s.ctx, id)
	if err != nil {
		panic(simError{err})
	}
	s.stats.Authenticated++
	s.step.tracef("customer answers the challenge of %s: ok %v", id, ok)
	ch, found := s.stripe.authenticate(t.ChargeID, ok)
	if !found {
		s.step.fail("one-charge-per-credit", "top-up %s waits for the customer on charge %q the provider never made", id, t.ChargeID)
		return
	}
	if rng.IntN(2) == 0 {
		// Stripe.js: the provider knows; the page may reload and ask.
		if rng.IntN(2) == 0 {
			return
		}
		s.crashPoint("before the action page reloaded")
		var err error
		if ch, err = s.stripe.GetCharge(s.ctx, t.ChargeID); err != nil {
			return
		}
	} else {
		s.crashPoint("after the customer authenticated, before the action page settled")
		s.answered(ch)
	}
	if o, ok := topup.ChargeOutcome(ch); ok {
		if _, err := (engineStore{s, s.proc}).Settle(s.ctx, id, o, s.backoff); err != nil {
			s.internal("settle after 3-D Secure", err)
		}
	}
}

// advance moves the clock (to the next month boundary, give or take a
// minute, for a negative d); the provider finishes what is due.
func (s *Sim) advance(d time.Duration) {
	now := s.clock.Now()
	if d < 0 {
		next := topup.MonthStart(now).AddDate(0, 1, 0)
		d = next.Sub(now) + time.Duration(s.step.rng.IntN(180)-90)*time.Second
		if d <= 0 {
			d = time.Second
		}
	}
	if d >= 24*time.Hour {
		s.stats.KeyExpiryJumps++
	}
	if topup.Month(now) != topup.Month(now.Add(d)) {
		s.stats.MonthBoundaries++
	}
	s.clock.Advance(d)
	s.step.tracef("clock at %s", s.clock.Now().Format(time.RFC3339))
	s.stripe.advance(false)
}

// quiet is a quiet period: the provider answers at once and truthfully,
// webhooks are delivered, the process does not crash, and the clock moves
// past every retry, lease and expiry. Every top-up open when it began must
// end final (check.go: open-top-ups-end).
func (s *Sim) quiet() {
	s.stats.Quiet++
	st := s.step
	st.refunds = true
	st.faults, st.crashOK = false, false
	open := s.openTopUps()
	s.stripe.advance(true)
	s.flush()
	// Round 1: past every retry wait and lease, one pass.
	s.drain(lease + 5*time.Minute + time.Second)
	for _, id := range open {
		if t := s.topUp(id); t.Status == topup.Pending || t.Status == topup.Processing {
			st.fail("open-top-ups-end", "top-up %s still %s after a quiet %s with the provider answering (charge %q)", id, t.Status, lease+5*time.Minute, t.ChargeID)
			return
		}
	}
	// Round 2: past the 24 hours of 3-D Secure; every challenge expires.
	s.drain(topup.ActionTTL + time.Minute)
	for _, id := range open {
		if t := s.topUp(id); t.Status.Open() {
			st.fail("open-top-ups-end", "top-up %s still %s a day after a quiet period began", id, t.Status)
			return
		}
	}
	// More rounds until nothing is left to do (new top-ups after back-offs
	// are made and decided too), then every charge must be credited.
	for range 12 {
		if len(s.webhooks) == 0 && !s.anyDue() {
			break
		}
		s.drain(s.backoff + time.Minute)
	}
	// The expiry worker makes a pass too: it holds the lease (a dead
	// process's ran out long ago), every grant due expires, and every
	// account's events are checked.
	s.expiryPass()
	st.allEvents = true
	s.eventually()
	s.refundsFinal()
}

// drain moves the clock by d, delivers every queued webhook once, and
// runs engine passes until none attempts anything.
func (s *Sim) drain(d time.Duration) {
	s.clock.Advance(d)
	s.stripe.advance(true)
	for len(s.webhooks) > 0 {
		ev := s.webhooks[0]
		s.webhooks = s.webhooks[1:]
		if err := topup.ApplyEvent(s.ctx, engineStore{s, s.proc}, ev, s.backoff, s.log); err != nil {
			s.internal("apply webhook "+ev.ID, err)
		}
	}
	for range 20 {
		n, err := s.proc.engine.RunOnce(s.ctx)
		if err != nil {
			s.internal("engine pass", err)
		}
		s.stripe.advance(true)
		if n == 0 {
			break
		}
		s.clock.Advance(lease + 5*time.Minute + time.Second)
	}
	s.drainRefunds()
	for len(s.webhooks) > 0 {
		ev := s.webhooks[0]
		s.webhooks = s.webhooks[1:]
		if err := topup.ApplyEvent(s.ctx, engineStore{s, s.proc}, ev, s.backoff, s.log); err != nil {
			s.internal("apply webhook "+ev.ID, err)
		}
	}
}

func (s *Sim) openTopUps() []string {
	out, err := s.proc.store.TopUpIDs(s.ctx, topup.Pending, topup.Processing, topup.RequiresAction)
	if err != nil {
		panic(simError{err})
	}
	return out
}

func (s *Sim) anyDue() bool {
	n, err := s.proc.store.CountTopUps(s.ctx, topup.Pending, topup.Processing)
	if err != nil {
		panic(simError{err})
	}
	return n > 0
}

func (s *Sim) topUp(id string) topup.TopUp {
	t, err := s.proc.store.TopUpByID(s.ctx, id)
	if err != nil {
		panic(simError{err})
	}
	return t
}
