package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/topup/topup/client"
	"github.com/topup/topup/internal/progress"
)

// Each account starts with this credit, a card and Automatic Top-Up
// (threshold, target); debits are 0.01 to 0.50, so that an account
// crosses its threshold after about twenty of them.
const (
	soakCard      = "pm_card_visa"
	soakGrant     = "10.00"
	soakThreshold = "5.00"
	soakTarget    = "10.00"
	soakZipfS     = 1.1
	setupWorkers  = 16
)

// account is one of the soak's accounts; mu keeps one card or settings
// change at a time (the load skips an account whose change is under way).
type account struct {
	id string
	mu sync.Mutex
	// card is the account's card (changed by card removals), under mu.
	card string
}

// setup creates the accounts through the replicas: each gets a card, its
// opening credit and Automatic Top-Up.
func (s *soak) setup(ctx context.Context) error {
	c := newCaller(s.fleet.urls(), s.adminKey, setupWorkers)
	s.accounts = make([]*account, s.cfg.Accounts)
	bar := progress.New(s.stderr, int64(s.cfg.Accounts), "soak: accounts")
	defer bar.Finish()
	var next atomic.Int64
	errs := make([]error, setupWorkers)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for {
				i := int(next.Add(1) - 1)
				if i >= len(s.accounts) || ctx.Err() != nil {
					return
				}
				a, err := s.setupAccount(ctx, c, rng, i)
				if err != nil {
					errs[w] = fmt.Errorf("soak: set up account %d: %w", i, err)
					return
				}
				s.accounts[i] = a
				bar.Add(1)
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// setupAccount creates account i, attaches a card, credits it and turns
// Automatic Top-Up on.
func (s *soak) setupAccount(ctx context.Context, c *caller, rng *rand.Rand, i int) (*account, error) {
	st := &opStats{}
	var a client.Account
	if _, err := c.do(ctx, rng, st, false, func(cl *client.Client) error {
		r, err := cl.CreateAccount(ctx, client.AccountParams{Email: fmt.Sprintf("soak-%s-%d@example.com", s.runID, i)})
		if err == nil {
			a = *r
		}
		return err
	}); err != nil {
		return nil, err
	}
	acct := &account{id: a.ID}
	var pm client.PaymentMethod
	if _, err := c.do(ctx, rng, st, false, func(cl *client.Client) error {
		r, err := cl.AttachPaymentMethod(ctx, a.ID, soakCard)
		if err == nil {
			pm = *r
		}
		return err
	}); err != nil {
		return nil, err
	}
	acct.card = pm.ID
	if _, err := c.do(ctx, rng, st, false, func(cl *client.Client) error {
		_, err := cl.Credit(ctx, a.ID, client.CreditParams{Amount: soakGrant, IdempotencyKey: s.creditKey(i), Description: "soak opening credit"})
		return err
	}); err != nil {
		return nil, err
	}
	settings := client.AutoTopUpParams{Enabled: true, Threshold: client.MoneyPtr(soakThreshold), Target: client.MoneyPtr(soakTarget), PaymentMethod: pm.ID}
	_, err := c.do(ctx, rng, st, false, func(cl *client.Client) error {
		_, err := cl.SetAutoTopUp(ctx, a.ID, settings)
		return err
	})
	return acct, err
}

func (s *soak) creditKey(i int) string { return fmt.Sprintf("soak-%s-credit-%d", s.runID, i) }

// load runs the clients, the kills and the monitor for cfg.Duration.
func (s *soak) load(ctx context.Context) error {
	c := newCaller(s.fleet.urls(), s.adminKey, s.cfg.Clients)
	loadCtx, stop := context.WithTimeout(ctx, s.cfg.Duration)
	defer stop()
	s.report.loadStart = time.Now()
	var wg sync.WaitGroup
	for w := range s.cfg.Clients {
		wg.Go(func() { s.client(ctx, loadCtx, c, w) })
	}
	var killErr error
	var side sync.WaitGroup
	side.Go(func() { killErr = s.killLoop(ctx, loadCtx) })
	side.Go(func() { s.monitor(loadCtx) })
	wg.Wait()
	s.report.loadTook = time.Since(s.report.loadStart)
	stop()
	side.Wait()
	return errors.Join(killErr, ctx.Err())
}

// pick is an account: half of the load goes to a few hot accounts (Zipf),
// the rest spreads evenly.
type picker struct {
	rng      *rand.Rand
	zipf     *rand.Zipf
	accounts []*account
}

func newPicker(seed uint64, accounts []*account) *picker {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	return &picker{rng: rng, zipf: rand.NewZipf(rng, soakZipfS, 1, uint64(len(accounts)-1)), accounts: accounts}
}

func (p *picker) account() *account {
	if p.rng.IntN(2) == 0 {
		return p.accounts[p.zipf.Uint64()]
	}
	return p.accounts[p.rng.IntN(len(p.accounts))]
}

// cents is a random amount of 1 to max cents, as the API spells it.
func (p *picker) cents(lo, hi int) client.Money {
	n := lo + p.rng.IntN(hi-lo+1)
	return client.Money(fmt.Sprintf("%d.%02d", n/100, n%100))
}

// client sends operations until loadCtx ends; requests already sent are
// finished under ctx, so that the load's end leaves no answer lost on
// purpose.
func (s *soak) client(ctx, loadCtx context.Context, c *caller, w int) {
	p := newPicker(uint64(w)+1, s.accounts)
	for n := 0; loadCtx.Err() == nil; n++ {
		switch r := p.rng.IntN(100); {
		case r < 50:
			s.usage(ctx, c, p, w, n)
		case r < 62:
			s.batch(ctx, c, p, w, n)
		case r < 80:
			s.hold(ctx, c, p, w, n)
		case r < 88:
			s.settings(ctx, c, p)
		case r < 95:
			s.topUp(ctx, c, p, w, n)
		default:
			s.cardRemoval(ctx, c, p)
		}
	}
}

func (s *soak) key(kind string, w, n int) string {
	return fmt.Sprintf("soak-%s-%s-%d-%d", s.runID, kind, w, n)
}

// usage records one debit.
func (s *soak) usage(ctx context.Context, c *caller, p *picker, w, n int) {
	a, key := p.account(), s.key("u", w, n)
	s.rec.sentDebit(key)
	// The same request, amount included, is sent again after a lost
	// answer: a new amount under the same key would be a conflict.
	params := client.UsageParams{Amount: p.cents(1, 50), IdempotencyKey: key, Description: "soak"}
	var res *client.UsageResult
	t0 := time.Now()
	out, _ := c.do(ctx, p.rng, s.rec.ops[opUsage], false, func(cl *client.Client) (err error) {
		res, err = cl.RecordUsage(ctx, a.id, params)
		return err
	})
	if out == acked {
		s.rec.latency(time.Since(t0))
		s.rec.ackDebit(key, a.id, res.EntryID)
	}
}

// batch records 20 to 100 debits in one request.
func (s *soak) batch(ctx context.Context, c *caller, p *picker, w, n int) {
	events := make([]client.BatchEvent, 20+p.rng.IntN(81))
	keys := make([]string, len(events))
	for i := range events {
		keys[i] = s.key("b", w, n) + fmt.Sprintf("-%d", i)
		events[i] = client.BatchEvent{AccountID: p.account().id, Amount: p.cents(1, 50), IdempotencyKey: keys[i], Description: "soak batch"}
	}
	s.rec.sentDebit(keys...)
	var res *client.BatchResult
	out, _ := c.do(ctx, p.rng, s.rec.ops[opBatch], false, func(cl *client.Client) (err error) {
		res, err = cl.RecordUsageBatch(ctx, events)
		return err
	})
	if out != acked || len(res.Results) != len(events) {
		return
	}
	for i, r := range res.Results {
		if r.Error == nil {
			s.rec.ackDebit(keys[i], events[i].AccountID, r.EntryID)
		}
	}
}

// hold reserves 0.10 to 2.00 and then captures part of it (a debit) or
// releases it.
func (s *soak) hold(ctx context.Context, c *caller, p *picker, w, n int) {
	a := p.account()
	params := client.HoldParams{Amount: p.cents(10, 200), IdempotencyKey: s.key("h", w, n), ExpiresIn: 600}
	var h *client.Hold
	out, _ := c.do(ctx, p.rng, s.rec.ops[opHold], false, func(cl *client.Client) (err error) {
		h, err = cl.CreateHold(ctx, a.id, params)
		return err
	})
	if out != acked {
		return
	}
	if p.rng.IntN(5) < 2 {
		c.do(ctx, p.rng, s.rec.ops[opRelease], false, func(cl *client.Client) error {
			_, err := cl.ReleaseHold(ctx, a.id, h.ID)
			return err
		})
		return
	}
	key := s.key("c", w, n)
	s.rec.sentDebit(key)
	capture := client.CaptureParams{Amount: p.cents(1, 10), IdempotencyKey: key}
	var res *client.CaptureResult
	out, _ = c.do(ctx, p.rng, s.rec.ops[opCapture], false, func(cl *client.Client) (err error) {
		res, err = cl.CaptureHold(ctx, a.id, h.ID, capture)
		return err
	})
	if out == acked {
		s.rec.ackDebit(key, a.id, res.EntryID)
	}
}

// settings saves new Automatic Top-Up amounts (threshold 3.00 to 8.00,
// target 5.00 to 20.00 above it), which may start a top-up.
func (s *soak) settings(ctx context.Context, c *caller, p *picker) {
	a := p.account()
	if !a.mu.TryLock() {
		return
	}
	defer a.mu.Unlock()
	threshold := 3 + p.rng.IntN(6)
	target := threshold + 5 + p.rng.IntN(16)
	set := client.AutoTopUpParams{Enabled: true, Threshold: client.MoneyPtr(client.Money(fmt.Sprintf("%d.00", threshold))),
		Target: client.MoneyPtr(client.Money(fmt.Sprintf("%d.00", target))), PaymentMethod: a.card}
	c.do(ctx, p.rng, s.rec.ops[opSettings], false, func(cl *client.Client) error {
		_, err := cl.SetAutoTopUp(ctx, a.id, set)
		return err
	})
}

// topUp buys 5.00 to 20.00 by hand.
func (s *soak) topUp(ctx context.Context, c *caller, p *picker, w, n int) {
	a := p.account()
	params := client.TopUpParams{Amount: p.cents(500, 2000), IdempotencyKey: s.key("t", w, n)}
	var t *client.TopUp
	out, _ := c.do(ctx, p.rng, s.rec.ops[opTopUp], false, func(cl *client.Client) (err error) {
		t, err = cl.CreateTopUp(ctx, a.id, params)
		return err
	})
	if out != acked {
		return
	}
	s.rec.ackTopUp(t.ID, a.id)
	if t.Status == "succeeded" && p.rng.IntN(4) == 0 {
		s.refund(ctx, c, p, a, t.ID, s.key("r", w, n))
	}
}

// refund gives 1.00 of a manual top-up that just succeeded back to its
// card (a top-up is at least 5.00, so it is never more than is left).
func (s *soak) refund(ctx context.Context, c *caller, p *picker, a *account, topUp, key string) {
	params := client.RefundParams{Amount: client.MoneyPtr("1.00"), IdempotencyKey: key, Reason: "requested_by_customer"}
	var r *client.Refund
	out, _ := c.do(ctx, p.rng, s.rec.ops[opRefund], false, func(cl *client.Client) (err error) {
		r, err = cl.CreateRefund(ctx, a.id, topUp, params)
		return err
	})
	if out == acked {
		s.rec.ackRefund(r.ID, topUp)
	}
}

// cardRemoval removes the account's card (which switches Automatic Top-Up
// off), attaches a new one and turns Automatic Top-Up on again with it.
func (s *soak) cardRemoval(ctx context.Context, c *caller, p *picker) {
	a := p.account()
	if !a.mu.TryLock() {
		return
	}
	defer a.mu.Unlock()
	st := s.rec.ops[opCard]
	if out, _ := c.do(ctx, p.rng, st, true, func(cl *client.Client) error {
		_, err := cl.DeletePaymentMethod(ctx, a.id, a.card)
		return err
	}); out != acked {
		return
	}
	var pm *client.PaymentMethod
	if out, _ := c.do(ctx, p.rng, &opStats{}, false, func(cl *client.Client) (err error) {
		pm, err = cl.AttachPaymentMethod(ctx, a.id, soakCard)
		return err
	}); out != acked {
		return
	}
	a.card = pm.ID
	set := client.AutoTopUpParams{Enabled: true, Threshold: client.MoneyPtr(soakThreshold), Target: client.MoneyPtr(soakTarget), PaymentMethod: pm.ID}
	c.do(ctx, p.rng, &opStats{}, false, func(cl *client.Client) error {
		_, err := cl.SetAutoTopUp(ctx, a.id, set)
		return err
	})
}
