package refund

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/payment"
)

// KeyTTL is how long the provider remembers an idempotency key (Stripe: 24
// hours, as topup.KeyTTL for charges). A refund older than that is looked
// up (FindRefund) before it is sent again, since the provider would take
// its key for a new request.
const KeyTTL = 24 * time.Hour

// Store is what the worker needs of storage; *sqlstore.Refunds is one. Its
// refusals are *apperr.Error (CreateRefund: NotFound, Conflict, Invalid on
// amount, IdempotencyConflict).
type Store interface {
	// CreateRefund records a pending refund, leased to the caller for
	// Request.Lease, before the provider is ever called.
	CreateRefund(ctx context.Context, req Request) (Refund, bool, error)
	// ClaimRefunds leases pending refunds whose next attempt has come and
	// whose lease ran out.
	ClaimRefunds(ctx context.Context, lease time.Duration, limit int) ([]Due, error)
	// RefundDue returns a refund with what asking the provider needs.
	RefundDue(ctx context.Context, id string) (Due, error)
	// ApplyRefund applies the provider's word once, in any order.
	ApplyRefund(ctx context.Context, w Word) (Refund, bool, error)
	// RetryRefund releases a pending refund's claim until at.
	RetryRefund(ctx context.Context, id string, at time.Time) error
	// RenewRefund extends a pending refund's claim to until.
	RenewRefund(ctx context.Context, id string, until time.Time) error
}

// Config tunes the worker; zero values take the defaults.
type Config struct {
	// Interval is how often the worker looks for due refunds (5s).
	Interval time.Duration
	// Lease is how long a claim keeps other replicas' workers away unless
	// renewed (TOPUP_WORKER_LEASE, 10s): a refund whose worker died is
	// taken up again after it. The worker renews its claim every third of
	// it while the provider call runs, so a slow call keeps it.
	Lease time.Duration
	// Batch is the most refunds one claim takes (32).
	Batch int
	// CallTimeout bounds one provider call (30s).
	CallTimeout time.Duration
	// UnknownRetry is the first wait after an unknown outcome (2s),
	// doubling to 5m.
	UnknownRetry time.Duration
	// PendingRetry is the first wait before asking again about a refund
	// the provider left pending (1m), doubling to 1h; its outcome usually
	// comes sooner, by the provider's event.
	PendingRetry time.Duration
	// Wait is how long Request waits for the provider before it answers
	// with the pending refund (10s); the worker finishes it.
	Wait   time.Duration
	Clock  clock.Clock
	Logger *slog.Logger
	// OnPass, when set, hears of every pass of Start's loop: how many
	// refunds it attempted and its error. Tests wait on it.
	OnPass func(attempted int, err error)
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 10 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	if c.UnknownRetry <= 0 {
		c.UnknownRetry = 2 * time.Second
	}
	if c.PendingRetry <= 0 {
		c.PendingRetry = time.Minute
	}
	if c.Wait <= 0 {
		c.Wait = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.System
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Worker sends refunds to the payment provider, exactly once across
// crashes: the refund row exists before the provider is called, every call
// carries the key derived from its id, an unknown outcome is retried with
// that key, and a refund whose caller died is claimed again once its lease
// ran out. It never calls the provider inside a transaction (the sandbox
// sends its events before it answers). A loop (Start/Stop) around RunOnce
// and Attempt, which tests and the simulator call directly.
type Worker struct {
	cfg      Config
	store    Store
	provider payment.Provider
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	// inflight counts the attempts Request started, so that Stop waits
	// for them before the store closes.
	inflight sync.WaitGroup
}

// NewWorker returns a worker; Start runs its loop.
func NewWorker(store Store, provider payment.Provider, cfg Config) *Worker {
	cfg.defaults()
	return &Worker{cfg: cfg, store: store, provider: provider, stop: make(chan struct{})}
}

// Start runs the worker until Stop: a pass at once, then one every
// Interval (at once again after a full batch). Refunds left by a crashed
// process are resumed by the first pass after their lease ran out.
func (w *Worker) Start() {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(w.cfg.Interval)
		defer t.Stop()
		for {
			// A pass attempts up to Batch refunds, each call bounded by
			// CallTimeout.
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(w.cfg.Batch+1)*w.cfg.CallTimeout)
			n, err := w.RunOnce(ctx)
			cancel()
			if err != nil {
				w.cfg.Logger.Error("refund worker pass", "err", err)
			}
			if w.cfg.OnPass != nil {
				w.cfg.OnPass(n, err)
			}
			if err == nil && n >= w.cfg.Batch {
				select {
				case <-w.stop:
					return
				default:
					continue
				}
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the worker after its current pass and waits for the attempts
// Request started. It may be called more than once, and without Start.
func (w *Worker) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
	w.inflight.Wait()
}

// RunOnce claims the refunds that are due and attempts each once; it
// returns how many it attempted. A failed attempt is logged and left to
// its lease: the next claim after it tries again with the same key.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	due, err := w.store.ClaimRefunds(ctx, w.cfg.Lease, w.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("claim refunds: %w", err)
	}
	for _, d := range due {
		if _, err := w.Attempt(ctx, d); err != nil {
			w.cfg.Logger.Error("refund attempt", "refund_id", d.ID, "top_up_id", d.TopUpID, "err", err)
		}
	}
	return len(due), nil
}

// Request records a refund asked for through the API (leased to this
// call) and sends it to the provider at once, waiting up to Wait for the
// answer; past that it returns the pending refund and the attempt goes on
// (the worker finishes what it leaves). A replay returns the first
// refund, or RequestInProgress while the first request may still be
// waiting for the provider. The store's refusals pass through.
func (w *Worker) Request(ctx context.Context, req Request) (Refund, bool, error) {
	req.Lease = w.cfg.Lease
	r, replayed, err := w.store.CreateRefund(ctx, req)
	if err != nil {
		return r, replayed, err
	}
	if replayed {
		if r.Status == Pending && r.ProviderID == "" && w.cfg.Clock.Now().Sub(r.CreatedAt) < w.cfg.Wait {
			return r, true, apperr.New(apperr.RequestInProgress, "a request with this idempotency_key is still being processed")
		}
		return r, true, nil
	}
	return w.attemptNow(r), false, nil
}

// attemptNow attempts a new refund on a context of its own (a client that
// goes away does not stop a refund half sent) and waits up to Wait for it.
func (w *Worker) attemptNow(r Refund) Refund {
	done := make(chan Refund, 1)
	w.inflight.Add(1)
	go func() {
		defer w.inflight.Done()
		ctx := context.Background()
		got := r
		d, err := w.store.RefundDue(ctx, r.ID)
		if err == nil {
			got, err = w.Attempt(ctx, d)
		}
		if err != nil {
			w.cfg.Logger.Error("refund", "refund_id", r.ID, "err", err)
			got = r
		}
		done <- got
	}()
	select {
	case got := <-done:
		return got
	case <-time.After(w.cfg.Wait):
		return r
	}
}

// Attempt asks the provider for one pending refund and applies what it
// said: a refund the provider made (succeeded, pending or failed) is
// applied through the store once; an unknown outcome leaves it pending
// for a retry with the same key after a back-off; a refusal fails it,
// nothing having moved. A refund the provider left pending is asked about
// again later (its outcome may also come by event). It returns the refund
// as it then stands.
func (w *Worker) Attempt(ctx context.Context, d Due) (Refund, error) {
	if d.Status != Pending {
		return d.Refund, nil
	}
	re, err := w.ask(ctx, d)
	now := w.cfg.Clock.Now()
	var word Word
	switch {
	case errors.Is(err, payment.ErrUnknownOutcome):
		at := now.Add(backoff(w.cfg.UnknownRetry, d.Attempts, 5*time.Minute))
		w.cfg.Logger.Warn("refund outcome unknown: retrying with the same key", "refund_id", d.ID, "retry_at", at, "err", err)
		if rerr := w.store.RetryRefund(ctx, d.ID, at); rerr != nil {
			return d.Refund, rerr
		}
		return d.Refund, nil
	case err != nil:
		word = Word{RefundID: d.ID, Status: Failed, FailureReason: failureReason(err)}
	default:
		word = WordOf(re)
		word.RefundID = d.ID
	}
	r, ok, err := w.store.ApplyRefund(ctx, word)
	if err != nil {
		return d.Refund, fmt.Errorf("apply refund %s: %w", d.ID, err)
	}
	if !ok {
		return d.Refund, fmt.Errorf("apply refund %s: the store does not know it", d.ID)
	}
	w.cfg.Logger.Info("refund", "refund_id", r.ID, "top_up_id", r.TopUpID, "status", r.Status, "provider_id", r.ProviderID,
		"failure_reason", word.FailureReason, "attempt", d.Attempts)
	if r.Status == Pending {
		at := now.Add(backoff(w.cfg.PendingRetry, d.Attempts, time.Hour))
		if err := w.store.RetryRefund(ctx, d.ID, at); err != nil {
			return r, err
		}
	}
	return r, nil
}

// ask is the provider's word on d. A refund the provider answered before
// (pending), or one older than the provider's key memory, is looked up
// first; otherwise, and when the lookup finds none, the refund is sent
// with its key. A refusal is checked against the provider's list of the
// charge's refunds, since an earlier attempt whose answer was lost may
// have made it after all (a lookup that cannot be made then is an unknown
// outcome; one the provider refuses leaves the refusal standing). Before
// a resend, any lookup failure is an unknown outcome: the worker never
// sends again a refund that may have been made.
func (w *Worker) ask(ctx context.Context, d Due) (payment.Refund, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
	defer cancel()
	defer w.renew(ctx, d.ID)()
	if d.ProviderID != "" || w.cfg.Clock.Now().Sub(d.CreatedAt) >= KeyTTL {
		re, found, err := w.find(ctx, d)
		switch {
		case err != nil || found:
			return re, unknown(err)
		case d.ProviderID != "":
			return re, fmt.Errorf("%w: the provider answered refund %s as %s but does not list it", payment.ErrUnknownOutcome, d.ID, d.ProviderID)
		}
	}
	minor, err := d.Amount.MinorUnits(d.Currency)
	if err != nil {
		return payment.Refund{}, fmt.Errorf("refund %s: %w", d.ID, err)
	}
	re, err := w.provider.Refund(ctx, payment.RefundRequest{
		RefundID: d.ID, IdempotencyKey: d.IdempotencyKey(), ChargeID: d.ChargeID, TopUpID: d.TopUpID,
		Amount: minor, Currency: d.Currency.Code, Reason: d.Reason,
	})
	if err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
		return re, err
	}
	found, ok, ferr := w.find(ctx, d)
	switch {
	case ferr == nil && ok:
		return found, nil
	case errors.Is(ferr, payment.ErrUnknownOutcome):
		return payment.Refund{}, ferr
	}
	return payment.Refund{}, err
}

// renew extends the claim on refund id every third of the lease until the
// returned function is called: a provider call slower than the lease does
// not let another replica take the refund up meanwhile (it would send the
// same key, so nothing would be refunded twice, but the work would be).
// The claim is renewed at once too: a refund claimed in a batch may have
// waited its turn. A renewal is never canceled half sent: the returned
// function waits for the one in flight, so that none lands after the
// caller released the claim (RetryRefund) and holds the refund for a lease.
func (w *Worker) renew(ctx context.Context, id string) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.Lease / 3)
		defer t.Stop()
		for {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Lease/3)
			err := w.store.RenewRefund(rctx, id, w.cfg.Clock.Now().Add(w.cfg.Lease))
			cancel()
			if err != nil {
				w.cfg.Logger.Warn("refund: renew the claim", "refund_id", id, "err", err)
			}
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// find looks d up at the provider by its id. An unknown charge
// (ErrNotFound) holds no refund; other errors pass through.
func (w *Worker) find(ctx context.Context, d Due) (payment.Refund, bool, error) {
	re, ok, err := w.provider.FindRefund(ctx, d.ChargeID, d.ID)
	if errors.Is(err, payment.ErrNotFound) {
		return payment.Refund{}, false, nil
	}
	return re, ok, err
}

// unknown marks err as an unknown outcome, when it is not one already.
func unknown(err error) error {
	if err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
		return err
	}
	return fmt.Errorf("%w: %w", payment.ErrUnknownOutcome, err)
}

// backoff is base doubled per earlier attempt, at most most.
func backoff(base time.Duration, attempts int, most time.Duration) time.Duration {
	return min(base<<min(max(attempts-1, 0), 10), most)
}

// failureReason keeps why the provider refused a refund, short enough
// for the refund's row.
func failureReason(err error) string {
	const most = 500
	s := err.Error()
	if r := []rune(s); len(r) > most {
		s = string(r[:most])
	}
	return s
}

// StatusOf maps a provider's refund status to the contract's: canceled
// is failed (nothing was refunded); anything not yet final is pending.
func StatusOf(s payment.RefundStatus) Status {
	switch s {
	case payment.RefundSucceeded:
		return Succeeded
	case payment.RefundFailed, payment.RefundCanceled:
		return Failed
	}
	return Pending
}

// WordOf is what a provider's refund says, for ApplyRefund: Topup's
// own refund by its id (from the metadata), else one made at the provider,
// found by its provider id or recorded for its charge.
func WordOf(re payment.Refund) Word {
	return Word{RefundID: re.RefundID, ProviderID: re.ID, ChargeID: re.ChargeID, AmountMinor: re.Amount,
		Status: StatusOf(re.Status), FailureReason: re.FailureReason}
}
