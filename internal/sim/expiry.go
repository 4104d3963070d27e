package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/expiry"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
)

// expiryInterval is the expiry worker's TOPUP_EXPIRY_INTERVAL (the
// default); its lease is twice that, so that a process started after a
// crash waits out its predecessor's lease before its passes do anything.
const expiryInterval = 30 * time.Second

// newExpiryWorker is the expiry worker of process p: never started (no
// goroutine, no timer); expiry steps call its RunOnce. Its sweeps go
// through p's simulated committer, as the worker's go through the group
// committer, sharing a group with whatever is queued.
func (s *Sim) newExpiryWorker(p *process) *expiry.Worker {
	return expiry.New(expiryStore{s, p}, s.workerPost, expiry.Config{Interval: expiryInterval, Owner: p.ids.New("exp"), Clock: s.clock, Logger: s.log,
		AfterFind: func([]string) error {
			s.crashPoint("after the expiry worker found accounts, before their sweeps")
			return nil
		}})
}

// errGroupFailed is what the worker hears when its group commit failed
// (the failure is a violation already).
var errGroupFailed = errors.New("group commit failed")

// workerPost is the worker's expiry.Post: its postings queued in the
// committer and the queue committed at once, as the committer's loop
// takes what is queued.
func (s *Sim) workerPost(_ context.Context, postings []ledger.Posting) ([]ledger.Result, error) {
	r := &request{postings: postings, conflict: make([]bool, len(postings)), worker: true, from: -1}
	s.submit(r)
	s.flush()
	if r.results == nil {
		return nil, errGroupFailed
	}
	return r.results, nil
}

// expiryPass is one pass of the expiry worker: the lease, the
// credit.expiring warnings due, a sweep of every account whose grants'
// expiry has come. After a pass that held the lease and ran to its end,
// no grant whose expires_at had come when it began is active (check.go:
// expiry).
func (s *Sim) expiryPass() {
	st := s.step
	if st.crashOK && st.rng.IntN(2) == 0 {
		s.tick()
	}
	at := s.clock.Now()
	p, err := s.proc.expiry.RunOnce(s.ctx)
	if err != nil {
		s.internal("expiry pass", err)
		return
	}
	if !p.Leased {
		st.tracef("expiry pass: another process holds the lease")
		return
	}
	s.stats.ExpiryPasses++
	s.stats.Warnings += p.Warned
	st.tracef("expiry pass: %d warned, %d accounts swept", p.Warned, p.Swept)
	st.passed, st.passAt = true, at
	if p.Warned > 0 {
		st.allEvents = true
	}
}

// tick moves the clock to the worker's first tick after the soonest
// expiry ahead (within a few hours), as the worker, waking every interval,
// would meet it: a pass then comes seconds after an expires_at, where a
// worker that lags behind it is seen.
func (s *Sim) tick() {
	now := s.clock.Now()
	var soonest time.Time
	for _, a := range s.accounts {
		gs, err := s.proc.store.GrantsExpiringBefore(s.ctx, a.id, now.Add(3*time.Hour), 20)
		if err != nil {
			panic(simError{err})
		}
		for _, g := range gs {
			if g.ExpiresAt.After(now) && (soonest.IsZero() || g.ExpiresAt.Before(soonest)) {
				soonest = g.ExpiresAt
			}
		}
	}
	if !soonest.IsZero() {
		s.advance(soonest.Sub(now) + time.Duration(s.step.rng.Int64N(int64(expiryInterval))))
	}
}

// void is POST …/grants/{id}/void as the API does it: the body judged by
// input.Void, the posting submitted to the committer. The grant is one of
// the account's, mostly an active one; or a void answered before, sent
// again (it replays), or the same grant voided again with a new key (409).
func (s *Sim) void(step Step) {
	rng := s.step.rng
	if len(s.hb.voids) > 0 && rng.IntN(100) < 30 {
		k := s.hb.voids[rng.IntN(len(s.hb.voids))]
		p := s.acked[k].posting
		if rng.IntN(2) == 0 {
			s.step.tracef("client re-sends void %s of %s", k.key, p.GrantID)
			s.submit(&request{postings: []ledger.Posting{p}, conflict: []bool{false}, from: step.N})
			s.maybeFlush()
			return
		}
		s.sendVoid(step, p.AccountID, p.GrantID)
		return
	}
	a := s.acct(step)
	gs, _, err := s.proc.store.Grants(s.ctx, a.id, "", ledger.Page{Limit: 100})
	if err != nil {
		panic(simError{err})
	}
	var active []ledger.Grant
	for _, g := range gs {
		if g.Status == ledger.GrantActive {
			active = append(active, g)
		}
	}
	switch {
	case len(active) > 0 && rng.IntN(100) < 75:
		s.sendVoid(step, a.id, active[rng.IntN(len(active))].ID)
	case len(gs) > 0:
		s.sendVoid(step, a.id, gs[rng.IntN(len(gs))].ID)
	}
}

func (s *Sim) sendVoid(step Step, acct, grant string) {
	key := fmt.Sprintf("v%d", step.N)
	p, err := (&input.Void{IdempotencyKey: &key}).Posting(acct, grant)
	if err != nil {
		s.step.fail("void", "void of %s refused by its own validation: %v", grant, err)
		return
	}
	s.step.tracef("void %s of grant %s on %s", key, grant, s.nameOf(acct))
	s.submit(&request{postings: []ledger.Posting{p}, conflict: []bool{false}, from: step.N})
	s.maybeFlush()
}

// answerVoid is the client receiving a void's result: the grant it named,
// once (a key sent again replays it); 409 only for a grant that is no
// longer active, or has nothing left.
func (s *Sim) answerVoid(p ledger.Posting, res ledger.Result) {
	k := postKey{p.AccountID, p.Call, p.IdempotencyKey}
	st := s.step
	switch code := apperr.CodeOf(res.Err); {
	case res.Err == nil:
		if res.GrantID != p.GrantID {
			st.fail("void", "void %s of grant %s answered grant %s", k.key, p.GrantID, res.GrantID)
		}
		if s.acknowledge(k, p, res) {
			s.stats.Voids++
			s.hb.voids = append(s.hb.voids, k)
			st.tracef("void %s of %s answered: entry %s", k.key, p.GrantID, res.EntryID)
		}
	case code == apperr.Conflict:
		s.stats.VoidsRefused++
		st.tracef("void %s of %s refused: %v", k.key, p.GrantID, res.Err)
		if prev, ok := s.acked[k]; ok {
			st.fail("void", "void %s was answered (entry %s) and, sent again, is refused: %v", k.key, prev.entry, res.Err)
		}
		g, err := s.proc.store.Grant(s.ctx, p.AccountID, p.GrantID)
		if err != nil {
			panic(simError{err})
		}
		if g.Status == ledger.GrantActive && g.Remaining > 0 && !g.ExpiredAt(s.clock.Now()) {
			st.fail("void", "void %s of grant %s refused as a conflict, but the grant is active with %s left", k.key, g.ID, micros(int64(g.Remaining)))
		}
	default:
		st.fail("void", "void %s of grant %s answered %v", k.key, p.GrantID, res.Err)
	}
}

// checkExpiry checks, after an expiry pass that held the lease and ran to
// its end, that no grant whose expires_at had come when it began is still
// active.
func (s *Sim) checkExpiry() {
	st := s.step
	if !st.passed || st.crashed {
		return
	}
	for _, a := range s.accounts {
		page := ledger.Page{Limit: 100}
		for {
			gs, more, err := s.proc.store.Grants(s.ctx, a.id, ledger.GrantActive, page)
			if err != nil {
				panic(simError{err})
			}
			for _, g := range gs {
				if g.ExpiredAt(st.passAt) {
					st.fail("expiry", "grant %s of %s (%s left) expired at %s and is still active after an expiry pass at %s", g.ID, a.name,
						micros(int64(g.Remaining)), g.ExpiresAt.Format(time.RFC3339), st.passAt.Format(time.RFC3339))
				}
			}
			if !more || len(gs) == 0 {
				break
			}
			page.StartingAfter = gs[len(gs)-1].ID
		}
	}
}

// checkEvents checks what a's customer was told of expiry: credit.expired
// once per expiration entry (and none without one), credit.expiring at
// most once per grant.
func (s *Sim) checkEvents(a *account) {
	st := s.step
	expired, expiring := s.expiryEvents(a)
	for _, g := range sortedKeys(expiring) {
		if expiring[g] > 1 {
			st.fail("expiry", "%s was told credit.expiring %d times for grant %s", a.name, expiring[g], g)
		}
	}
	entries := s.expirations[a.id]
	for _, g := range sortedKeys(entries) {
		if expired[g] != 1 {
			st.fail("expiry", "grant %s of %s expired (entry %s) and was told credit.expired %d times", g, a.name, entries[g], expired[g])
		}
	}
	for _, g := range sortedKeys(expired) {
		if _, ok := entries[g]; !ok {
			st.fail("expiry", "%s was told credit.expired for grant %s, which has no expiration entry", a.name, g)
		}
	}
}

// expiryEvents counts, by grant, the credit.expired and credit.expiring
// events of a's outbox.
func (s *Sim) expiryEvents(a *account) (expired, expiring map[string]int) {
	expired, expiring = map[string]int{}, map[string]int{}
	page := ledger.Page{Limit: 100}
	for {
		ns, more, err := s.proc.store.NotificationPage(s.ctx, a.id, page)
		if err != nil {
			panic(simError{err})
		}
		for _, n := range ns {
			if n.Type != ledger.EventCreditExpired && n.Type != ledger.EventCreditExpiring {
				continue
			}
			var g struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(n.Data, &g); err != nil || g.ID == "" {
				s.step.fail("expiry", "event %s (%s) names no grant: %s", n.ID, n.Type, n.Data)
				continue
			}
			if n.Type == ledger.EventCreditExpired {
				expired[g.ID]++
			} else {
				expiring[g.ID]++
			}
		}
		if !more || len(ns) == 0 {
			return expired, expiring
		}
		page.StartingAfter = ns[len(ns)-1].ID
	}
}
