package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// What the API client knows of holds (PRODUCT.md "Credit grants and
// holds"): the requests it sent, the holds it was answered with, and what
// it did to them since. It survives the process's crashes; what a crash
// left unanswered (a hold made, a capture committed) is learned again from
// the store (reconcile) before the checks lean on it.

// holdReq is a POST …/holds the client sent, and may send again.
type holdReq struct {
	acct *account
	body input.Hold
	id   string // the hold it made, once answered
}

// holdState is what the client was told of a hold.
type holdState uint8

const (
	holdActive   holdState = iota // made; active until its expires_at
	holdCaptured                  // a capture was answered (or read)
	holdReleased                  // a release was answered (or read)
)

// simHold is a hold the client knows.
type simHold struct {
	id, acct  string
	key       string
	amount    money.Amount
	expiresAt time.Time
	state     holdState
	entry     string       // the capture's entry (holdCaptured)
	captured  money.Amount // what the capture took
	expired   bool         // counted in Stats.HoldsExpired
}

// holdBook is the client's record of holds.
type holdBook struct {
	reqs  []*holdReq
	byKey map[postKey]*holdReq // (account, "hold", key)
	holds map[string]*simHold
	order []string // hold ids, in the order the client learned them
	// unsure lists the accounts whose holds a crash or a refusal left
	// unknown to the client: reconcile reads them before the held check.
	unsure map[string]bool
	// byHold is the capture entry of each hold, read from the ledger.
	byHold map[string]string
	// captures and voids are the acknowledged keys, for replays.
	captures, voids []postKey
	// mark and markAt are the database's write mark and the time when
	// held last agreed with the client ("" after a restart: a new
	// connection counts its writes from zero).
	mark   string
	markAt time.Time
}

func newHoldBook() holdBook {
	return holdBook{byKey: map[postKey]*holdReq{}, holds: map[string]*simHold{}, unsure: map[string]bool{}, byHold: map[string]string{}}
}

// holdLifetime is a hold's expires_in: seconds (it expires between two
// steps), minutes, the default (left out), hours, or the longest.
func holdLifetime(rng *rand.Rand) *int64 {
	var s int64
	switch n := rng.IntN(100); {
	case n < 20:
		s = int64(1 + rng.IntN(60))
	case n < 45:
		s = int64(60 + rng.IntN(840))
	case n < 65:
		return nil
	case n < 90:
		s = int64(3600 * (1 + rng.IntN(6)))
	default:
		s = ledger.MaxHoldSeconds
	}
	return &s
}

// hold is POST …/holds as the API does it: the body judged by input.Hold,
// then CreateHold; sometimes a key sent before, the same body (a replay)
// or, rarely, another amount (a conflict). A hold is refused 402 exactly
// when available credit is short of it (invariant holds).
func (s *Sim) hold(step Step) {
	rng := s.step.rng
	var req *holdReq
	conflict := false
	if n := rng.IntN(100); n < 15 && len(s.hb.reqs) > 0 {
		req = s.hb.reqs[rng.IntN(len(s.hb.reqs))]
		// Another amount under a key that made a hold is a conflict (a key
		// refused 402 kept nothing: sent again, it is a new request).
		conflict = n < 3 && req.id != ""
	} else {
		req = s.newHoldReq(step)
	}
	a := req.acct
	a.holdsSent = true
	body := req.body
	if conflict {
		other := micros(int64(s.scaled(a, 1+rng.Int64N(1_000_000))))
		body.Amount = &other
	}
	hr, err := body.Request(a.id, input.DefaultMaxAmount)
	if err != nil {
		s.step.fail("holds", "hold request %s refused by its own validation: %v", *body.IdempotencyKey, err)
		return
	}
	before, err := s.proc.store.Account(s.ctx, a.id)
	if err != nil {
		panic(simError{err})
	}
	s.step.tracef("hold %s of %s on %s (available %s, expires in %s)", hr.IdempotencyKey, hr.Amount.Format(a.cur), a.name,
		before.Available().Format(a.cur), hr.Lifetime)
	h, replay, err := holdStore{s, s.proc}.CreateHold(s.ctx, hr)
	switch code := apperr.CodeOf(err); {
	case err == nil && replay:
		s.holdReplayed(req, h, conflict)
	case err == nil:
		s.holdMade(req, h, before, hr, conflict)
	case code == apperr.InsufficientBalance:
		s.stats.HoldsRefused++
		s.step.tracef("hold refused: %v", err)
		if before.Available() >= hr.Amount {
			s.step.fail("holds", "hold %s of %s on %s refused as insufficient with %s available", hr.IdempotencyKey, hr.Amount.Format(a.cur), a.name, before.Available().Format(a.cur))
		}
	case code == apperr.IdempotencyConflict && conflict:
		s.stats.Conflicts++
		s.step.tracef("hold key %s with another amount refused as a conflict", hr.IdempotencyKey)
	default:
		s.internal("create hold "+hr.IdempotencyKey, err)
	}
}

// newHoldReq is a new hold request of the step: its amount the
// schedule's, or often what an account can afford (the simulated accounts
// spend much of a run in overdraft, where every hold is 402).
func (s *Sim) newHoldReq(step Step) *holdReq {
	rng := s.step.rng
	a := s.acct(step)
	key := fmt.Sprintf("h%d", step.N)
	size := s.scaled(a, step.Arg)
	if rng.IntN(2) == 0 {
		if b, avail := s.affording(); b != nil {
			a, size = b, 1+money.Amount(rng.Int64N(int64(avail)))
		}
	}
	amount := micros(int64(size))
	desc := "hold " + key
	subject := []string{"", "gpu", "inference"}[rng.IntN(3)]
	req := &holdReq{acct: a, body: input.Hold{Amount: &amount, IdempotencyKey: &key, Subject: &subject, Description: &desc, ExpiresIn: holdLifetime(rng)}}
	s.hb.reqs = append(s.hb.reqs, req)
	s.hb.byKey[postKey{a.id, "hold", key}] = req
	return req
}

// affording picks an account with available credit, and how much, nil
// when none has any.
func (s *Sim) affording() (*account, money.Amount) {
	accts, _, err := s.proc.store.Accounts(s.ctx, ledger.Page{Limit: 100})
	if err != nil {
		panic(simError{err})
	}
	var some []ledger.Account
	for _, a := range accts {
		if a.Available() > 0 {
			some = append(some, a)
		}
	}
	if len(some) == 0 {
		return nil, 0
	}
	a := some[s.step.rng.IntN(len(some))]
	return s.accountOf(a.ID), a.Available()
}

// holdMade checks a new hold: it was made only with available credit
// enough for it, leaves available at or above zero, and counts in held at
// once; the client learns it.
func (s *Sim) holdMade(req *holdReq, h ledger.Hold, before ledger.Account, hr ledger.HoldRequest, conflict bool) {
	a := req.acct
	st := s.step
	if conflict || req.id != "" {
		st.fail("holds", "hold key %s sent again made a new hold %s (first %q, other amount %v)", hr.IdempotencyKey, h.ID, req.id, conflict)
		return
	}
	s.stats.HoldsMade++
	note := ""
	if h.TopUpID != "" {
		s.stats.HoldTopUps++
		note = ", triggering top-up " + h.TopUpID
	}
	st.tracef("hold %s made, expires %s%s", h.ID, h.ExpiresAt.Format(time.RFC3339), note)
	after, err := s.proc.store.Account(s.ctx, a.id)
	if err != nil {
		panic(simError{err})
	}
	switch {
	case before.Available() < hr.Amount:
		st.fail("holds", "hold %s of %s made on %s with only %s available", h.ID, hr.Amount.Format(a.cur), a.name, before.Available().Format(a.cur))
	case after.Available() < 0:
		st.fail("holds", "hold %s left %s with available %s", h.ID, a.name, after.Available().Format(a.cur))
	case after.Held != before.Held+hr.Amount || after.Balance != before.Balance:
		st.fail("holds", "hold %s of %s: held went from %s to %s, balance from %s to %s", h.ID, hr.Amount.Format(a.cur),
			before.Held.Format(a.cur), after.Held.Format(a.cur), before.Balance.Format(a.cur), after.Balance.Format(a.cur))
	case h.Status != ledger.HoldActive || h.Amount != hr.Amount || !h.ExpiresAt.Equal(s.clock.Now().UTC().Truncate(time.Microsecond).Add(hr.Lifetime)):
		st.fail("holds", "hold %s answered %s of %s expiring %s, asked %s for %s", h.ID, h.Status, h.Amount.Format(a.cur), h.ExpiresAt, hr.Amount.Format(a.cur), hr.Lifetime)
	}
	s.learnHold(req, h)
}

// holdReplayed checks the answer to a key sent again: the hold it made
// first (learned now if its first answer was lost).
func (s *Sim) holdReplayed(req *holdReq, h ledger.Hold, conflict bool) {
	st := s.step
	st.tracef("hold key %s replayed: %s (%s)", *req.body.IdempotencyKey, h.ID, h.Status)
	if conflict {
		st.fail("holds", "hold key %s sent with another amount replayed %s instead of a conflict", *req.body.IdempotencyKey, h.ID)
	}
	if req.id != "" && req.id != h.ID {
		st.fail("holds", "hold key %s made %s, and replays %s", *req.body.IdempotencyKey, req.id, h.ID)
	}
	s.checkHoldRead(h)
	if req.id == "" {
		s.learnHold(req, h)
	}
}

// learnHold records a hold the client was told of.
func (s *Sim) learnHold(req *holdReq, h ledger.Hold) {
	req.id = h.ID
	if _, ok := s.hb.holds[h.ID]; ok {
		return
	}
	s.hb.holds[h.ID] = &simHold{id: h.ID, acct: h.AccountID, key: *req.body.IdempotencyKey, amount: h.Amount, expiresAt: h.ExpiresAt}
	s.hb.order = append(s.hb.order, h.ID)
	if h.Status != ledger.HoldActive {
		// Learned by a replay after a crash: what happened since is read.
		s.hb.unsure[h.AccountID] = true
	}
}

// pickHold chooses a hold the client knows, of the step's account when it
// has one, mostly one it believes active.
func (s *Sim) pickHold(step Step) *simHold {
	if len(s.hb.order) == 0 {
		return nil
	}
	rng := s.step.rng
	acct := s.acct(step).id
	now := s.clock.Now()
	var mine, live []*simHold
	for _, id := range s.hb.order {
		h := s.hb.holds[id]
		if h.acct == acct {
			mine = append(mine, h)
		}
		if h.state == holdActive && now.Before(h.expiresAt) {
			live = append(live, h)
		}
	}
	switch {
	case len(live) > 0 && rng.IntN(100) < 85:
		return live[rng.IntN(len(live))]
	case len(live) == 0 && rng.IntN(2) == 0:
		return nil // the client has no work in flight
	case len(mine) > 0:
		return mine[rng.IntN(len(mine))]
	default:
		return s.hb.holds[s.hb.order[rng.IntN(len(s.hb.order))]]
	}
}

// capture is POST …/holds/{id}/capture as the API does it: the hold read,
// the body judged by input.Capture into a usage posting with HoldID,
// submitted to the committer; or a capture answered before, sent again.
// The whole hold, a part of it, or (now and then) more than it (400).
func (s *Sim) capture(step Step) {
	rng := s.step.rng
	if len(s.hb.captures) > 0 && rng.IntN(100) < 15 {
		k := s.hb.captures[rng.IntN(len(s.hb.captures))]
		p := s.acked[k].posting
		s.step.tracef("client re-sends capture %s of %s", k.key, p.HoldID)
		s.submit(&request{postings: []ledger.Posting{p}, conflict: []bool{false}, from: step.N})
		s.maybeFlush()
		return
	}
	sh := s.pickHold(step)
	if sh == nil {
		return
	}
	h, err := holdStore{s, s.proc}.Hold(s.ctx, sh.acct, sh.id)
	if err != nil {
		s.internal("read hold "+sh.id, err)
		return
	}
	s.checkHoldRead(h)
	key := fmt.Sprintf("k%d", step.N)
	body := input.Capture{IdempotencyKey: &key}
	a := s.accountOf(sh.acct)
	switch n := rng.IntN(100); {
	case n < 45:
	case n < 92:
		part := micros(1 + rng.Int64N(int64(h.Amount)))
		body.Amount = &part
	default:
		over := micros(int64(h.Amount) + 1 + rng.Int64N(int64(h.Amount)))
		body.Amount = &over
	}
	p, err := body.Posting(h, input.DefaultMaxAmount)
	if err != nil {
		s.step.fail("holds", "capture of %s refused by its own validation: %v", h.ID, err)
		return
	}
	s.step.tracef("capture %s of %s on %s (%s, expires %s)", key, (-p.Amount).Format(a.cur), h.ID, h.Status, h.ExpiresAt.Format(time.RFC3339))
	s.submit(&request{postings: []ledger.Posting{p}, conflict: []bool{false}, from: step.N})
	s.maybeFlush()
}

// answerCapture is the client receiving a capture's result: a capture of
// an active hold is usage with the hold's id (checked in the ledger once
// answered); one refused as not active (409) finds the hold captured or
// expired; more than the hold is refused 400.
func (s *Sim) answerCapture(p ledger.Posting, res ledger.Result) {
	k := postKey{p.AccountID, p.Call, p.IdempotencyKey}
	sh := s.hb.holds[p.HoldID]
	code := apperr.CodeOf(res.Err)
	switch {
	case res.Err == nil:
		if -p.Amount > sh.amount || !res.CreatedAt.Before(sh.expiresAt) {
			s.step.fail("holds", "capture %s of %s took %s of a hold of %s at %s, its expires_at %s", k.key, sh.id, micros(int64(-p.Amount)),
				micros(int64(sh.amount)), res.CreatedAt, sh.expiresAt)
		}
		if s.acknowledge(k, p, res) {
			s.stats.HoldsCaptured++
			s.hb.captures = append(s.hb.captures, k)
			sh.state, sh.entry, sh.captured = holdCaptured, res.EntryID, -p.Amount
			s.step.tracef("capture %s of %s answered: entry %s", k.key, p.HoldID, res.EntryID)
		}
	case code == apperr.Invalid && -p.Amount > sh.amount:
		s.step.tracef("capture %s of more than %s refused: %v", k.key, p.HoldID, res.Err)
	case code == apperr.Conflict:
		s.stats.CapturesRefused++
		h, err := s.proc.store.Hold(s.ctx, sh.acct, sh.id)
		if err != nil {
			panic(simError{err})
		}
		s.step.tracef("capture %s of %s refused: %v", k.key, p.HoldID, res.Err)
		if prev, ok := s.acked[k]; ok {
			s.step.fail("holds", "capture %s was answered (entry %s) and, sent again, is refused: %v", k.key, prev.entry, res.Err)
		}
		if h.Status == ledger.HoldActive {
			s.step.fail("holds", "capture %s of %s refused as not active, but the hold reads active (expires %s)", k.key, h.ID, h.ExpiresAt)
		}
		s.checkHoldRead(h)
		// Captured by a capture whose answer was lost, or expired: the
		// check reads which.
		s.hb.unsure[sh.acct] = true
	default:
		s.step.fail("holds", "capture %s of %s (%s) answered %v", k.key, p.HoldID, micros(int64(-p.Amount)), res.Err)
	}
}

// release is POST …/holds/{id}/release: an active hold is released; one
// released answers unchanged; one captured or expired, 409.
func (s *Sim) release(step Step) {
	sh := s.pickHold(step)
	if sh == nil {
		return
	}
	s.step.tracef("release %s", sh.id)
	h, err := holdStore{s, s.proc}.ReleaseHold(s.ctx, sh.acct, sh.id)
	st := s.step
	switch code := apperr.CodeOf(err); {
	case err == nil:
		if h.Status != ledger.HoldReleased {
			st.fail("holds", "release of %s answered status %s", h.ID, h.Status)
		}
		// Released again, it answers unchanged; captured, or active past
		// its expires_at, it cannot be released.
		switch {
		case sh.state == holdCaptured:
			st.fail("holds", "hold %s released, but it was captured (entry %s)", h.ID, sh.entry)
		case sh.state == holdActive && !s.clock.Now().Before(sh.expiresAt):
			st.fail("holds", "hold %s released at %s, but it expired at %s", h.ID, s.clock.Now().Format(time.RFC3339), sh.expiresAt)
		case sh.state == holdActive:
			s.stats.HoldsReleased++
		}
		sh.state = holdReleased
	case code == apperr.Conflict:
		st.tracef("release refused: %v", err)
		if h, err = s.proc.store.Hold(s.ctx, sh.acct, sh.id); err != nil {
			panic(simError{err})
		}
		s.checkHoldRead(h)
		if h.Status != ledger.HoldCaptured && h.Status != ledger.HoldExpired {
			st.fail("holds", "release of %s refused, but the hold reads %s", h.ID, h.Status)
		}
		s.hb.unsure[sh.acct] = true
	default:
		s.internal("release hold "+sh.id, err)
	}
}

// checkHoldRead checks a hold as a read answered it, against the clock
// (expired once past expires_at, never before) and what the client was
// told of it (captured with its entry and amount, released).
func (s *Sim) checkHoldRead(h ledger.Hold) {
	st := s.step
	now := s.clock.Now()
	switch {
	case h.Status == ledger.HoldActive && !now.Before(h.ExpiresAt):
		st.fail("holds", "hold %s reads active at %s, past its expires_at %s", h.ID, now.Format(time.RFC3339), h.ExpiresAt)
	case h.Status == ledger.HoldExpired && now.Before(h.ExpiresAt):
		st.fail("holds", "hold %s reads expired at %s, before its expires_at %s", h.ID, now.Format(time.RFC3339), h.ExpiresAt)
	}
	sh := s.hb.holds[h.ID]
	if sh == nil {
		return
	}
	switch sh.state {
	case holdCaptured:
		if h.Status != ledger.HoldCaptured || h.EntryID != sh.entry || h.Captured != sh.captured {
			st.fail("holds", "hold %s was captured (entry %s, %s) but reads %s (entry %s, %s)", h.ID, sh.entry, micros(int64(sh.captured)),
				h.Status, h.EntryID, micros(int64(h.Captured)))
		}
	case holdReleased:
		if h.Status != ledger.HoldReleased {
			st.fail("holds", "hold %s was released but reads %s", h.ID, h.Status)
		}
	}
}

// checkHolds checks, for every account the client ever sent a hold,
// that held as read equals what the client knows to be held: its holds
// neither captured nor released whose expires_at is still ahead
// (accounts a crash or a refusal left unsure are read in full first); and
// checks each hold whose expires_at passed since as read expired. The
// held credit is read again only when the database (its write mark) or
// the clock moved since it last agreed: it is a function of both.
func (s *Sim) checkHolds(mark string) {
	if len(s.hb.reqs) == 0 {
		return
	}
	for _, a := range s.accounts {
		if a.holdsSent && s.hb.unsure[a.id] {
			s.reconcile(a)
		}
	}
	now := s.clock.Now()
	want := s.heldNow(now)
	if mark != "" && mark == s.hb.mark && now.Equal(s.hb.markAt) {
		return
	}
	s.hb.mark, s.hb.markAt = mark, now
	accts, _, err := s.proc.store.Accounts(s.ctx, ledger.Page{Limit: 100})
	if err != nil {
		panic(simError{err})
	}
	for _, got := range accts {
		a := s.accountOf(got.ID)
		if a == nil || !a.holdsSent {
			continue
		}
		if got.Held != want[a.id] {
			s.step.fail("holds", "%s holds %s, but its holds active at %s add up to %s", a.name, got.Held.Format(a.cur), now.Format(time.RFC3339), want[a.id].Format(a.cur))
		}
	}
}

// heldNow is what the client knows to be held at now, by account: its
// holds neither captured nor released whose expires_at is ahead. Each
// hold whose expires_at passed since is read once, and must read expired.
func (s *Sim) heldNow(now time.Time) map[string]money.Amount {
	want := map[string]money.Amount{}
	for _, id := range s.hb.order {
		h := s.hb.holds[id]
		switch {
		case h.state != holdActive:
		case now.Before(h.expiresAt):
			want[h.acct] += h.amount
		case !h.expired:
			h.expired = true
			s.stats.HoldsExpired++
			read, err := s.proc.store.Hold(s.ctx, h.acct, h.id)
			if err != nil {
				panic(simError{err})
			}
			s.checkHoldRead(read)
			if read.Status != ledger.HoldExpired {
				s.step.fail("holds", "hold %s reads %s past its expires_at %s, but the client neither captured nor released it", h.id, read.Status, h.expiresAt)
			}
		}
	}
	return want
}

// reconcile reads all of a's holds and learns what the client was not
// told: a hold made whose answer was lost, a capture committed whose answer
// was lost, a hold captured or expired that a refusal hinted at. Every hold
// must answer a request the client sent, for the amount it asked.
func (s *Sim) reconcile(a *account) {
	delete(s.hb.unsure, a.id)
	page := ledger.Page{Limit: 100}
	for {
		hs, more, err := s.proc.store.Holds(s.ctx, a.id, "", page)
		if err != nil {
			panic(simError{err})
		}
		for _, h := range hs {
			s.reconcileHold(a, h)
		}
		if !more || len(hs) == 0 {
			return
		}
		page.StartingAfter = hs[len(hs)-1].ID
	}
}

func (s *Sim) reconcileHold(a *account, h ledger.Hold) {
	s.checkHoldRead(h)
	sh := s.hb.holds[h.ID]
	if sh == nil {
		key := strings.TrimPrefix(h.Description, "hold ")
		req := s.hb.byKey[postKey{a.id, "hold", key}]
		if req == nil || *req.body.Amount != micros(int64(h.Amount)) {
			s.step.fail("holds", "hold %s of %s (%q) answers no hold request the client sent", h.ID, micros(int64(h.Amount)), h.Description)
			return
		}
		s.step.tracef("hold %s of key %s learned from the store (its answer was lost)", h.ID, key)
		s.learnHold(req, h)
		sh = s.hb.holds[h.ID]
	}
	// checkHoldRead failed a hold that contradicts what the client was
	// told; what it was not told, it learns. An expired hold stays active
	// for the client: the clock says it expired (checkHolds).
	switch {
	case h.Status == ledger.HoldCaptured && sh.state == holdActive:
		sh.state, sh.entry, sh.captured = holdCaptured, h.EntryID, h.Captured
	case h.Status == ledger.HoldReleased && sh.state == holdActive:
		sh.state = holdReleased
	}
}

// accountOf is the simulated account with id, nil for none.
func (s *Sim) accountOf(id string) *account {
	for _, a := range s.accounts {
		if a.id == id {
			return a
		}
	}
	return nil
}
