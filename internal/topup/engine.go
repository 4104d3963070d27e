package topup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/payment"
)

// Store is what the engine needs of storage. Begin fixes the amount (or
// cancels) and counts the attempt before the provider is called; Settle
// applies an outcome once; Claim leases due top-ups so that replicas share
// the work, each claim ending at now+lease; Renew moves a claim's end from
// held to until while the claim is still the caller's (false when it was
// lost: another worker claimed the top-up after it ran out, or it was
// settled), or takes the claim whatever it was when held is zero.
type Store interface {
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error)
	Renew(ctx context.Context, id string, held, until time.Time) (bool, error)
	Begin(ctx context.Context, id string) (TopUp, bool, error)
	Settle(ctx context.Context, id string, o Outcome, backoff time.Duration) (Settled, error)
	Sweep(ctx context.Context, backoff time.Duration) ([]string, error)
	// NextDue returns the earliest back-off end after the instant after
	// (false when no account waits for one): the engine sweeps then.
	NextDue(ctx context.Context, after time.Time) (time.Time, bool, error)
	ExpiredActions(ctx context.Context) ([]string, error)
	TopUpByID(ctx context.Context, id string) (TopUp, error)
	CustomerID(ctx context.Context, accountID string) (string, error)
	ReleaseLeases(ctx context.Context) error
}

// ClaimBeginner is what a Store may offer beside Claim: Claim and then
// Begin of each claimed top-up in one transaction, for the running worker,
// which attempts what it claims at once. ok is false when the store does
// not offer it for its database; the worker then claims and begins apart.
type ClaimBeginner interface {
	ClaimBegin(ctx context.Context, now time.Time, lease time.Duration, limit int) (begun []Begun, ok bool, err error)
}

// Begun is one top-up claimed and begun (Begin's answers).
type Begun struct {
	TopUp TopUp
	OK    bool // there is something to charge
}

// Config tunes the engine; zero values take the defaults.
type Config struct {
	RetryBackoff time.Duration // TOPUP_RETRY_BACKOFF: wait after a declined automatic top-up (1h)
	// Lease is TOPUP_WORKER_LEASE: how long a claim keeps other workers
	// away unless renewed (10s). The engine renews its claim every Lease/3
	// while it charges, however long the provider takes, so the lease
	// bounds only how soon another replica resumes a top-up whose charge a
	// dead one left in flight.
	Lease         time.Duration
	PollInterval  time.Duration // how often the worker looks for due top-ups, and for back-offs other replicas began (1s)
	SweepInterval time.Duration // how often the sweep runs at the latest (15s); it also runs when a back-off ends
	UnknownRetry  time.Duration // first wait after an unknown outcome, doubling to 5m (2s)
	ChargeTimeout time.Duration // one provider call (30s)
	// Concurrency is how many claimed top-ups one pass charges at once
	// (default 1, one after another, as the simulator needs). A provider
	// call takes hundreds of milliseconds; serve sets 16, so that many
	// accounts crossing together do not queue behind each other's charges.
	Concurrency int
	// ReclaimOnStart releases every claim when the worker starts: right
	// when this process is the only one using the database (SQLite), so a
	// restarted process resumes what it was charging at once instead of
	// after the lease. Replicas sharing PostgreSQL wait for the lease.
	ReclaimOnStart bool
	Clock          clock.Clock
	Logger         *slog.Logger
	// PayURL is the page where customers complete 3-D Secure challenges
	// (the console's /pay): the action_url of top_up.action_required
	// events is ActionURL(PayURL, top-up). Empty, the events carry none.
	PayURL string
	// OnSettled, when set, hears of every settled attempt (metrics).
	OnSettled func(Settled)
	// OnPass, when set, hears of every pass of the worker (Start), after
	// it: how many top-ups it attempted and its error. Tests wait on it.
	OnPass func(attempted int, err error)
}

// DefaultLease is the claim of a top-up when Config.Lease is zero.
const DefaultLease = 10 * time.Second

func (c *Config) defaults() {
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = time.Hour
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 15 * time.Second
	}
	if c.UnknownRetry <= 0 {
		c.UnknownRetry = 2 * time.Second
	}
	if c.ChargeTimeout <= 0 {
		c.ChargeTimeout = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.System
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Engine charges top-ups: a worker loop (Start/Stop) built from step
// functions (RunOnce, Attempt) that tests and the simulator call directly.
type Engine struct {
	cfg      Config
	store    Store
	provider payment.Provider
	kick     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	lastSwp  time.Time
	// nextDue is the earliest back-off end after lastSwp the store knew of
	// when it was last asked (dueRead); zero when none.
	nextDue time.Time
	dueRead time.Time
}

// NewEngine returns an engine; Start runs its worker.
func NewEngine(store Store, provider payment.Provider, cfg Config) *Engine {
	cfg.defaults()
	return &Engine{cfg: cfg, store: store, provider: provider, kick: make(chan struct{}, 1), stop: make(chan struct{})}
}

// RetryBackoff is the configured wait after a declined automatic top-up.
func (e *Engine) RetryBackoff() time.Duration { return e.cfg.RetryBackoff }

// Kick wakes the worker now, after a debit created a top-up.
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Start runs the worker until Stop. Open top-ups left by a crashed process
// are resumed by the first pass: their lease has run out.
//
// Unlike RunOnce, the worker does not wait for a pass's charges to end
// before it looks again: each claimed top-up is attempted on its own, up to
// Concurrency at once, and the worker claims more as soon as it is woken —
// a debit created a top-up (Kick), an attempt ended while every place was
// taken, the tick, a back-off's end. A top-up that crosses while others are being
// charged is therefore claimed and charged at once, not after the slowest
// charge of the pass under way.
func (e *Engine) Start() {
	if err := e.Resume(context.Background()); err != nil {
		e.cfg.Logger.Error("release top-up claims", "err", err)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.run()
	}()
}

// run is the worker's loop (Start).
func (e *Engine) run() {
	var attempts sync.WaitGroup
	defer attempts.Wait()
	var inFlight atomic.Int64
	// ended is set when an attempt ended since the last pass (its settle may
	// have begun a back-off: the next pass asks NextDue); freed says that
	// one did.
	var ended atomic.Bool
	freed := make(chan struct{}, 1)
	// full is set when the last claim took as many top-ups as there was
	// room for: more may be due, to claim as soon as an attempt ends.
	full := false
	launch := func(ctx context.Context, now time.Time) (int, error) {
		free := e.cfg.Concurrency - int(inFlight.Load())
		if full = free <= 0; full {
			return 0, nil
		}
		// Claim set each claim to end here: the value the first renewal checks.
		held := now.Add(e.cfg.Lease)
		var begun []Begun
		ok := false
		if cb, can := e.store.(ClaimBeginner); can {
			var err error
			if begun, ok, err = cb.ClaimBegin(ctx, now, e.cfg.Lease, free); err != nil {
				return 0, err
			}
		}
		if !ok {
			ids, err := e.store.Claim(ctx, now, e.cfg.Lease, free)
			if err != nil {
				return 0, err
			}
			for _, id := range ids {
				begun = append(begun, Begun{TopUp: TopUp{ID: id}})
			}
		}
		full = len(begun) == free
		for _, b := range begun {
			id := b.TopUp.ID
			inFlight.Add(1)
			attempts.Go(func() {
				defer func() {
					inFlight.Add(-1)
					ended.Store(true)
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
				actx, cancel := context.WithTimeout(context.Background(), e.cfg.Lease+2*e.cfg.ChargeTimeout)
				defer cancel()
				var err error
				if ok {
					_, err = e.attemptBegun(actx, b, held)
				} else {
					_, err = e.attempt(actx, id, held)
				}
				if err != nil {
					e.cfg.Logger.Error("top-up attempt", "top_up_id", id, "err", err)
				}
			})
		}
		return len(begun), nil
	}
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	wake := time.NewTimer(e.cfg.SweepInterval)
	defer wake.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), e.passTimeout())
		n, err := e.pass(ctx, ended.Swap(false), func(now time.Time) (int, error) { return launch(ctx, now) })
		if err != nil {
			e.cfg.Logger.Error("top-up worker pass", "err", err)
		}
		cancel()
		if e.cfg.OnPass != nil {
			e.cfg.OnPass(n, err)
		}
		// Wake when the next back-off ends, not at the next tick; after
		// an error, at the next tick.
		if err != nil {
			wake.Reset(e.cfg.SweepInterval)
		} else {
			wake.Reset(e.untilDue())
		}
		// An attempt that ends wakes the worker only when more may be due
		// (every place was taken): each look is a write transaction.
		var room chan struct{}
		if full && err == nil {
			room = freed
		}
		select {
		case <-e.stop:
			return
		case <-e.kick:
		case <-room:
		case <-t.C:
		case <-wake.C:
		}
	}
}

// claimLimit is how many due top-ups one pass claims.
func (e *Engine) claimLimit() int { return max(32, 2*e.cfg.Concurrency) }

// passTimeout bounds one pass of RunOnce: its claims charged Concurrency at
// a time, each within ChargeTimeout, and a lease's worth of storage work
// (the running worker's passes, whose attempts run on their own, take it
// too: a sweep may cancel expired 3-D Secure charges at the provider). Claims are renewed while they are charged, so a pass may
// outlast the lease; a claim that waited for its turn longer than the
// lease may have been taken by another replica, and is then left to it.
func (e *Engine) passTimeout() time.Duration {
	rounds := (e.claimLimit() + e.cfg.Concurrency - 1) / e.cfg.Concurrency
	return e.cfg.Lease + time.Duration(rounds+1)*e.cfg.ChargeTimeout
}

// Lease is the configured claim of a top-up (TOPUP_WORKER_LEASE).
func (e *Engine) Lease() time.Duration { return e.cfg.Lease }

// untilDue is how long the worker may sleep before the next back-off ends,
// at most the sweep interval.
func (e *Engine) untilDue() time.Duration {
	if e.nextDue.IsZero() {
		return e.cfg.SweepInterval
	}
	return max(0, min(e.nextDue.Sub(e.cfg.Clock.Now()), e.cfg.SweepInterval))
}

// Resume is what Start does before the worker's first pass, as a step of
// its own for the simulator's restarted processes: with ReclaimOnStart it
// releases every claim, so that what a dead process was charging is resumed
// at once instead of after the lease.
func (e *Engine) Resume(ctx context.Context) error {
	if !e.cfg.ReclaimOnStart {
		return nil
	}
	return e.store.ReleaseLeases(ctx)
}

// Stop ends the worker after its current pass. It may be called more than
// once, and without Start: a shutdown need not know what ran.
func (e *Engine) Stop() {
	e.stopOnce.Do(func() { close(e.stop) })
	e.wg.Wait()
}

// RunOnce is one pass: the sweep when it is due (every SweepInterval, and
// as soon as a back-off has ended), then every claimed top-up attempted
// once, then a look at when the next back-off ends. It returns how many
// top-ups it attempted.
func (e *Engine) RunOnce(ctx context.Context) (int, error) {
	return e.pass(ctx, false, func(now time.Time) (int, error) { return e.attemptDue(ctx, now) })
}

// pass is one pass: the sweep when it is due, then attempt (RunOnce's:
// every top-up due attempted once; Start's: claimed and started), then a
// look at when the next back-off ends, also when settled says attempts
// ended since the last pass.
func (e *Engine) pass(ctx context.Context, settled bool, attempt func(now time.Time) (int, error)) (int, error) {
	now := e.cfg.Clock.Now()
	swept := false
	if now.Sub(e.lastSwp) >= e.cfg.SweepInterval || (!e.nextDue.IsZero() && !now.Before(e.nextDue)) {
		e.lastSwp = now
		if _, err := e.Sweep(ctx); err != nil {
			// nextDue stays: the next pass sweeps again.
			return 0, err
		}
		e.nextDue, swept = time.Time{}, true
	}
	// What the sweep just created is due: claim as of after it.
	n, err := attempt(e.cfg.Clock.Now())
	if err != nil {
		return n, err
	}
	// A failure settled in this pass, or on another replica since the last
	// look, starts a back-off: learn when it ends. Asked after every pass
	// that did something, and at most once per PollInterval otherwise.
	if swept || settled || n > 0 || now.Sub(e.dueRead) >= e.cfg.PollInterval {
		due, ok, err := e.store.NextDue(ctx, e.lastSwp)
		if err != nil {
			return n, err
		}
		e.nextDue, e.dueRead = time.Time{}, now
		if ok {
			e.nextDue = due
		}
	}
	return n, nil
}

// attemptDue claims the top-ups due at now and attempts each once.
func (e *Engine) attemptDue(ctx context.Context, now time.Time) (int, error) {
	ids, err := e.store.Claim(ctx, now, e.cfg.Lease, e.claimLimit())
	if err != nil {
		return 0, err
	}
	// Claim set each claim to end here: the value the first renewal checks.
	held := now.Add(e.cfg.Lease)
	if e.cfg.Concurrency > 1 && len(ids) > 1 {
		// Claimed top-ups are of different accounts' charges, independent of
		// each other: charge them side by side.
		sem := make(chan struct{}, e.cfg.Concurrency)
		var wg sync.WaitGroup
		for _, id := range ids {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := e.attempt(ctx, id, held); err != nil {
					e.cfg.Logger.Error("top-up attempt", "top_up_id", id, "err", err)
				}
			})
		}
		wg.Wait()
		return len(ids), nil
	}
	for _, id := range ids {
		if _, err := e.attempt(ctx, id, held); err != nil {
			e.cfg.Logger.Error("top-up attempt", "top_up_id", id, "err", err)
		}
	}
	return len(ids), nil
}

// Sweep runs the store's sweep now (the simulator's step).
func (e *Engine) Sweep(ctx context.Context) ([]string, error) {
	expired, err := e.store.ExpiredActions(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range expired {
		if err := e.expire(ctx, id); err != nil {
			// Asked again at the next sweep; the top-up stays open meanwhile.
			e.cfg.Logger.Warn("expire a 3-D Secure request", "top_up_id", id, "err", err)
		}
	}
	return e.store.Sweep(ctx, e.cfg.RetryBackoff)
}

// expire ends a requires_action top-up the customer left unanswered for
// 24 hours. The charge is canceled at the provider first, so that a late
// authentication cannot take money Topup no longer expects; if the
// customer did authenticate in time, it is credited instead.
func (e *Engine) expire(ctx context.Context, id string) error {
	t, err := e.store.TopUpByID(ctx, id)
	if err != nil || t.Status != RequiresAction {
		return err
	}
	o := Outcome{Status: Canceled, FailureCode: AuthenticationExpired}
	if t.ChargeID != "" {
		cctx, cancel := context.WithTimeout(ctx, e.cfg.ChargeTimeout)
		ch, err := e.provider.CancelCharge(cctx, t.ChargeID)
		cancel()
		if err != nil {
			return err
		}
		if ch.Status == payment.Succeeded {
			o = Outcome{Status: Succeeded, ChargeID: ch.ID}
		}
	}
	s, err := e.store.Settle(ctx, id, o, e.cfg.RetryBackoff)
	if err == nil && s.Changed && e.cfg.OnSettled != nil {
		e.cfg.OnSettled(s)
	}
	return err
}

// Attempt makes one charge attempt of a top-up its caller has just made (a
// manual one), taking the claim on it whatever it was, and settles what
// the provider said. The amount is fixed and stored before the provider
// is called; every attempt sends the same amount under the same key; after
// the provider's key memory (24 h) the charge is looked up by the top-up
// id before anything is sent again.
func (e *Engine) Attempt(ctx context.Context, id string) (Settled, error) {
	return e.attempt(ctx, id, time.Time{})
}

// attempt is Attempt under the claim that ends at held (zero: whatever the
// claim). The claim is renewed first (unless it was taken less than a
// third of a lease ago), and then every Lease/3 until the outcome is
// settled; a claim found lost before the attempt leaves the
// top-up to the worker that holds it now. A claim lost during the charge
// (this replica stalled longer than the lease) changes nothing of the
// attempt: another worker's attempt sends the same key, so the provider
// charges once, and Settle applies an outcome once.
func (e *Engine) attempt(ctx context.Context, id string, held time.Time) (Settled, error) {
	now := e.cfg.Clock.Now()
	until := held
	if held.IsZero() || !now.Before(held.Add(-e.cfg.Lease*2/3)) {
		// The claim is the caller's to take, or a third of it has gone
		// (the top-up waited for its turn in a pass): renew it, which also
		// tells whether another worker took it after it ran out. A claim
		// taken less than a third of a lease ago cannot have run out: the
		// renewals below begin from it, and one transaction (one wait for
		// the writer) fewer stands between a crossing and its credit.
		until = now.Add(e.cfg.Lease)
		ok, err := e.store.Renew(ctx, id, held, until)
		if err != nil {
			return Settled{}, err
		}
		if !ok {
			e.cfg.Logger.Debug("top-up claim lost before the attempt", "top_up_id", id)
			t, err := e.store.TopUpByID(ctx, id)
			return Settled{TopUp: t}, err
		}
	}
	hb := e.keepClaim(ctx, id, until)
	t, ok, err := e.store.Begin(ctx, id)
	if err != nil || !ok {
		hb.stop()
		return Settled{TopUp: t}, err
	}
	return e.charged(ctx, hb, t)
}

// attemptBegun is attempt of a top-up claimed and begun together
// (ClaimBeginner), the claim ending at held.
func (e *Engine) attemptBegun(ctx context.Context, b Begun, held time.Time) (Settled, error) {
	if !b.OK {
		return Settled{TopUp: b.TopUp}, nil
	}
	return e.charged(ctx, e.keepClaim(ctx, b.TopUp.ID, held), b.TopUp)
}

// charged is the rest of an attempt of t, begun, its claim kept by hb:
// the charge and its settle.
func (e *Engine) charged(ctx context.Context, hb *heartbeat, t TopUp) (Settled, error) {
	id := t.ID
	customer, err := e.store.CustomerID(ctx, t.AccountID)
	if err != nil {
		hb.stop()
		return Settled{TopUp: t}, err
	}
	ch, err := e.charge(ctx, t, customer)
	o := e.outcome(t, ch, err)
	hb.stop()
	s, serr := e.store.Settle(ctx, id, o, e.cfg.RetryBackoff)
	if serr != nil {
		return s, serr
	}
	if s.Changed {
		e.cfg.Logger.Info("top-up", "top_up_id", id, "account_id", t.AccountID, "status", s.TopUp.Status, "attempt", t.Attempts,
			"failure_code", s.TopUp.FailureCode, "charge_err", errString(err))
		if e.cfg.OnSettled != nil {
			e.cfg.OnSettled(s)
		}
	}
	if s.Next != nil {
		e.Kick()
	}
	return s, nil
}

// heartbeat renews one claim until stopped.
type heartbeat struct {
	done chan struct{}
	wg   sync.WaitGroup
}

// stop ends the renewals and waits for the one under way, if any.
func (h *heartbeat) stop() {
	close(h.done)
	h.wg.Wait()
}

// keepClaim renews the claim on top-up id, which ends at held, every
// Lease/3 until stopped or ctx ends (a dead process renews nothing: its
// claim runs out within a lease). A renewal that finds the claim lost
// stops renewing and says so; one that fails is tried again at the next
// tick.
func (e *Engine) keepClaim(ctx context.Context, id string, held time.Time) *heartbeat {
	h := &heartbeat{done: make(chan struct{})}
	h.wg.Go(func() {
		t := time.NewTicker(max(e.cfg.Lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			until := e.cfg.Clock.Now().Add(e.cfg.Lease)
			ok, err := e.store.Renew(ctx, id, held, until)
			switch {
			case err != nil && ctx.Err() != nil:
				return // the pass ends: nothing more to renew
			case err != nil:
				e.cfg.Logger.Warn("renew a top-up claim", "top_up_id", id, "err", err)
			case !ok:
				e.cfg.Logger.Warn("top-up claim lost while charging; the provider's idempotency key keeps it one charge", "top_up_id", id)
				return
			default:
				held = until
			}
		}
	})
	return h
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (e *Engine) charge(ctx context.Context, t TopUp, customer string) (payment.Charge, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ChargeTimeout)
	defer cancel()
	if t.ChargeID != "" {
		// The provider answered before (processing): ask what became of it.
		return e.provider.GetCharge(ctx, t.ChargeID)
	}
	now := e.cfg.Clock.Now()
	if t.Attempts > 1 && now.Sub(t.FirstAttemptAt) >= KeyTTL {
		ch, found, err := e.provider.FindCharge(ctx, customer, t.ID)
		if err != nil || found {
			return ch, err
		}
	}
	minor, err := t.Amount.MinorUnits(t.Currency)
	if err != nil {
		return payment.Charge{}, err
	}
	ch, err := e.provider.Charge(ctx, payment.ChargeRequest{
		TopUpID: t.ID, IdempotencyKey: t.IdempotencyKey(), Customer: customer, PaymentMethod: t.PaymentMethod,
		Amount: minor, Currency: t.Currency.Code, OffSession: t.Trigger != TriggerManual, Description: "Topup credit " + t.ID,
	})
	if err != nil && !errors.Is(err, payment.ErrUnknownOutcome) {
		// Refused (its card detached since…, or its key already used for
		// another amount: a database restored from before a charge made
		// under it, whose amount Begin then fixed anew): when the provider
		// holds no charge for the top-up, none was ever made and the refusal
		// is final, and retrying for ever would keep the top-up open and
		// block every later one; when it holds one, that charge is the
		// outcome, and what it took is credited (Outcome.Charged).
		found, ok, ferr := e.provider.FindCharge(ctx, customer, t.ID)
		switch {
		case ferr == nil && ok:
			return found, nil
		case ferr == nil:
			return payment.Charge{}, fmt.Errorf("%w: %w", errNothingCharged, err)
		default:
			// Whether a charge exists is not known: try again later.
			return payment.Charge{}, fmt.Errorf("%w: refused (%w), and looking for a charge of the top-up failed: %w",
				payment.ErrUnknownOutcome, err, ferr)
		}
	}
	return ch, err
}

// errNothingCharged marks a refusal after which the provider was found to
// hold no charge for the top-up.
var errNothingCharged = errors.New("refused, and no charge was made")

// outcome maps what the provider said to what Settle does.
func (e *Engine) outcome(t TopUp, ch payment.Charge, err error) Outcome {
	now := e.cfg.Clock.Now()
	if err != nil && !errors.Is(err, payment.ErrUnknownOutcome) && t.ChargeID == "" && (t.Attempts == 1 || errors.Is(err, errNothingCharged)) {
		// The provider refused the request itself (a card detached since,
		// an invalid request) on the first attempt, or on a retry with no
		// charge of the top-up found: nothing was charged, and sending it
		// again would be refused again.
		return Outcome{Status: Failed, FailureCode: ProcessingError}
	}
	if err != nil {
		// Unknown (timeout, 5xx, crash), or refused on a retry whose first
		// attempt may have charged: try again later with the same key; never
		// give up on a charge that may have been made.
		wait := e.cfg.UnknownRetry << min(t.Attempts-1, 8)
		return Outcome{Status: Processing, ChargeID: t.ChargeID, RetryAt: now.Add(min(wait, 5*time.Minute))}
	}
	switch {
	case ch.Status == payment.Succeeded:
		return Outcome{Status: Succeeded, ChargeID: ch.ID, Charged: ch.Amount}
	case ch.Status == payment.RequiresAction || (ch.Status == payment.Declined && ch.DeclineCode == "authentication_required"):
		return Outcome{Status: RequiresAction, ChargeID: ch.ID, ClientSecret: ch.ClientSecret, PayURL: e.cfg.PayURL}
	case ch.Status == payment.Declined:
		return Outcome{Status: Failed, ChargeID: ch.ID, FailureCode: ch.DeclineCode, NeverRetry: payment.NeverRetry[ch.DeclineCode]}
	}
	return Outcome{Status: Processing, ChargeID: ch.ID, RetryAt: now.Add(e.cfg.UnknownRetry)}
}

// ChargeOutcome maps a provider charge (from a webhook or the 3-D Secure
// page) to an outcome for Settle.
func ChargeOutcome(ch payment.Charge) (Outcome, bool) {
	switch ch.Status {
	case payment.Succeeded:
		return Outcome{Status: Succeeded, ChargeID: ch.ID, Charged: ch.Amount}, true
	case payment.Declined:
		if ch.DeclineCode == "authentication_required" {
			return Outcome{}, false
		}
		return Outcome{Status: Failed, ChargeID: ch.ID, FailureCode: ch.DeclineCode, NeverRetry: payment.NeverRetry[ch.DeclineCode]}, true
	}
	return Outcome{}, false
}
