package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/topup/topup/internal/clock"
)

// Config tunes the worker; zero values take the defaults.
type Config struct {
	// SMTPURL is TOPUP_SMTP_URL (smtp://user:pass@host:587, STARTTLS when
	// the server offers it; smtps:// for TLS from the start; ?from= sets
	// the sender). Empty: mail is only recorded (logged) and marked
	// delivered.
	SMTPURL string
	// SMTPTLS is the TLS configuration for the mail server (nil: the
	// system's roots); tests trust their own certificate with it.
	SMTPTLS *tls.Config
	// RetryBase is TOPUP_WEBHOOK_RETRY_BASE: the first wait after a failed
	// attempt, doubling each time (30s).
	RetryBase time.Duration
	// GiveUpAfter is how long after the event retrying stops (72h).
	GiveUpAfter time.Duration
	// WebhookTimeout bounds one webhook POST (10s); MailTimeout one
	// mail's SMTP conversation (30s).
	WebhookTimeout time.Duration
	MailTimeout    time.Duration
	// AllowPrivate is TOPUP_WEBHOOKS_ALLOW_PRIVATE: endpoints may live on
	// loopback and private addresses.
	AllowPrivate bool
	// ConsoleURL is where the console is served (TOPUP_PUBLIC_URL +
	// "/console"): a top_up.succeeded mail links to the receipt there.
	// Empty: no link.
	ConsoleURL string
	// Lease is how long a claim keeps other workers away from a delivery
	// unless renewed (10s, at least 1s): the claims of a pass are renewed
	// every Lease/3 until each is finished, so the lease bounds only how
	// soon another replica takes up what a dead one was sending.
	Lease time.Duration
	// PollInterval is how often the worker looks for work (1s).
	PollInterval time.Duration
	// Batch is how many deliveries one pass claims (32); Concurrency how
	// many it sends at once (8).
	Batch       int
	Concurrency int
	// ReclaimOnStart releases every claim when the worker starts: right
	// when this process is the database's only user (SQLite).
	ReclaimOnStart bool
	Clock          clock.Clock
	Logger         *slog.Logger
	// OnPass, when set, is told of every pass of the running worker: tests
	// wait on it instead of sleeping.
	OnPass func(Pass, error)
}

// DefaultLease is the claim on a delivery when Config.Lease is zero.
const DefaultLease = 10 * time.Second

// validate fills in the defaults and refuses what cannot work.
func (c *Config) validate() error {
	if c.RetryBase < 0 || c.GiveUpAfter < 0 || c.WebhookTimeout < 0 || c.MailTimeout < 0 || c.Lease < 0 || c.PollInterval < 0 ||
		c.Batch < 0 || c.Concurrency < 0 {
		return errors.New("notify: durations and counts must not be negative")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RetryBase, 30*time.Second)
	def(&c.GiveUpAfter, 72*time.Hour)
	def(&c.WebhookTimeout, 10*time.Second)
	def(&c.MailTimeout, 30*time.Second)
	def(&c.Lease, DefaultLease)
	def(&c.PollInterval, time.Second)
	if c.Batch == 0 {
		c.Batch = 32
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Lease < time.Second {
		return fmt.Errorf("notify: the lease (%s) must be at least 1s, time for its renewals to reach the database", c.Lease)
	}
	if c.Clock == nil {
		c.Clock = clock.System
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Worker delivers the outbox: a loop (Start/Stop) around RunOnce, a step
// that tests call directly with a manual clock.
type Worker struct {
	cfg   Config
	store Store
	smtp  *smtpServer // nil: mail is only recorded
	http  *http.Client
	kick  chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// New returns a worker for store; Start runs it.
func New(store Store, cfg Config) (*Worker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, store: store, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if cfg.SMTPURL != "" {
		srv, err := ParseSMTPURL(cfg.SMTPURL)
		if err != nil {
			return nil, err
		}
		w.smtp = &srv
	}
	dialer := &net.Dialer{Timeout: cfg.WebhookTimeout, KeepAlive: 30 * time.Second, Control: dialControl(cfg.AllowPrivate)}
	w.http = &http.Client{
		Transport: &http.Transport{
			// No proxy: the dialer must see the receiver's own address.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   cfg.WebhookTimeout,
			ResponseHeaderTimeout: cfg.WebhookTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		},
		// A redirect is an answer, not a delivery: it is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// Kick wakes the worker now.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Start runs the worker until Stop. Deliveries a stopped or crashed
// process held are taken up again when their lease runs out (at once with
// ReclaimOnStart).
func (w *Worker) Start() {
	if w.cfg.ReclaimOnStart {
		if err := w.store.ReleaseDeliveryLeases(context.Background()); err != nil {
			w.cfg.Logger.Error("release delivery claims", "err", err)
		}
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(w.cfg.PollInterval)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), w.passTimeout())
			p, err := w.RunOnce(ctx)
			cancel()
			if err != nil {
				w.cfg.Logger.Error("notification pass", "err", err)
			}
			if w.cfg.OnPass != nil {
				w.cfg.OnPass(p, err)
			}
			if p.More {
				w.Kick()
			}
			select {
			case <-w.stop:
				return
			case <-w.kick:
			case <-t.C:
			}
		}
	}()
}

// passTimeout bounds one pass: Batch/Concurrency rounds of attempts, each
// within its timeout, and a lease's worth of storage work. The claims are
// renewed meanwhile, so a pass may outlast the lease.
func (w *Worker) passTimeout() time.Duration {
	rounds := time.Duration((w.cfg.Batch + w.cfg.Concurrency - 1) / w.cfg.Concurrency)
	return w.cfg.Lease + (rounds+1)*max(w.cfg.WebhookTimeout, w.cfg.MailTimeout)
}

// Stop ends the worker after its current pass: every attempt under way is
// finished and recorded first.
func (w *Worker) Stop() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
	w.http.CloseIdleConnections()
}

// Pass is what one RunOnce did.
type Pass struct {
	Dispatched int // events fanned out into deliveries
	Attempted  int
	Delivered  int
	Failed     int // deliveries given up
	// More is true when a batch was full: another pass should follow at once.
	More bool
}

// RunOnce is one pass: fan new events out, then claim due deliveries and
// attempt each once (Concurrency at a time), recording every attempt.
func (w *Worker) RunOnce(ctx context.Context) (Pass, error) {
	var p Pass
	now := w.cfg.Clock.Now()
	busy, err := w.store.PendingWork(ctx, now)
	if err != nil || !busy {
		return p, err
	}
	if p.Dispatched, err = w.store.Dispatch(ctx, now, w.cfg.GiveUpAfter, w.cfg.Batch); err != nil {
		return p, fmt.Errorf("dispatch notifications: %w", err)
	}
	ds, err := w.store.ClaimDeliveries(ctx, now, w.cfg.Lease, w.cfg.Batch)
	if err != nil {
		return p, fmt.Errorf("claim deliveries: %w", err)
	}
	p.More = p.Dispatched == w.cfg.Batch || len(ds) == w.cfg.Batch
	p.Attempted = len(ds)
	held := w.keepClaims(ctx, ds)
	defer held.stop()
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, d := range ds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			a := w.attempt(ctx, d)
			// The claim as last renewed; renewed no more.
			a.Lease = held.finish(d)
			err := w.store.FinishDelivery(ctx, a)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("record delivery %s: %w", d.ID, err))
				return
			}
			if a.Delivered {
				p.Delivered++
			}
			if a.Failed {
				p.Failed++
			}
		})
	}
	wg.Wait()
	return p, errors.Join(errs...)
}

// claims are the deliveries a pass claimed and has not finished, each
// with the end of its claim, renewed together until finished.
type claims struct {
	mu   sync.Mutex
	held map[string]time.Time
	done chan struct{}
	wg   sync.WaitGroup
}

// keepClaims renews the claims on ds every Lease/3 until stop or ctx
// ends (a dead process renews nothing: its claims run out within a
// lease). A claim found lost (this worker stalled past the lease, and
// another claimed the delivery) is renewed no more; its outcome is then
// recorded as an attempt only (FinishDelivery).
func (w *Worker) keepClaims(ctx context.Context, ds []Delivery) *claims {
	c := &claims{held: make(map[string]time.Time, len(ds)), done: make(chan struct{})}
	for _, d := range ds {
		c.held[d.ID] = d.Lease
	}
	c.wg.Go(func() {
		t := time.NewTicker(max(w.cfg.Lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c.renew(ctx, w)
		}
	})
	return c
}

// renew renews every unfinished claim once. It holds the lock throughout,
// so that a delivery finished meanwhile is recorded under the end its
// claim has in the database.
func (c *claims) renew(ctx context.Context, w *Worker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, held := range c.held {
		until := w.cfg.Clock.Now().Add(w.cfg.Lease)
		ok, err := w.store.RenewDelivery(ctx, id, held, until)
		switch {
		case err != nil && ctx.Err() != nil:
			return // the pass ends: nothing more to renew
		case err != nil:
			w.cfg.Logger.Warn("renew a delivery claim", "delivery_id", id, "err", err)
		case !ok:
			w.cfg.Logger.Warn("delivery claim lost while sending", "delivery_id", id)
			delete(c.held, id)
		default:
			c.held[id] = until
		}
	}
}

// finish ends the renewals of d's claim and returns the claim's end.
func (c *claims) finish(d Delivery) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.held[d.ID]
	if !ok {
		return d.Lease // lost: FinishDelivery records the attempt only
	}
	delete(c.held, d.ID)
	return until
}

// stop ends the renewals and waits for the one under way, if any.
func (c *claims) stop() {
	close(c.done)
	c.wg.Wait()
}

// attempt tries one delivery and says what became of it and what follows.
func (w *Worker) attempt(ctx context.Context, d Delivery) Attempt {
	a := Attempt{DeliveryID: d.ID, EndpointID: d.EndpointID, EventID: d.Event.ID, Type: d.Event.Type, Lease: d.Lease,
		AttemptedAt: w.cfg.Clock.Now()}
	log := w.cfg.Logger.With("delivery_id", d.ID, "event_id", d.Event.ID, "type", d.Event.Type, "channel", d.Channel,
		"account_id", d.Event.AccountID, "attempt", d.Attempts+1)
	var err error
	permanent := false
	switch d.Channel {
	case Email:
		permanent, err = w.sendMail(ctx, d, log)
	case Webhook:
		a.StatusCode, err = w.post(ctx, d)
		log = log.With("endpoint_id", d.EndpointID, "status_code", a.StatusCode)
	default:
		permanent, err = true, fmt.Errorf("unknown channel %q", d.Channel)
	}
	if err == nil {
		a.Delivered = true
		log.Info("notification delivered")
		return a
	}
	a.Error = clip(err.Error(), 500)
	next := a.AttemptedAt.Add(w.backoff(d.Attempts + 1))
	if permanent || next.After(d.Deadline) {
		a.Failed = true
		log.Warn("notification not delivered; giving up", "err", err)
		return a
	}
	a.NextAttemptAt = next
	log.Info("notification attempt failed", "err", err, "next_attempt_at", next)
	return a
}

// backoff is the wait after the n-th failed attempt: RetryBase doubling.
func (w *Worker) backoff(n int) time.Duration {
	d := w.cfg.RetryBase
	for i := 1; i < n; i++ {
		if d > w.cfg.GiveUpAfter {
			break
		}
		d *= 2
	}
	return d
}

// post sends a webhook: the event's JSON, signed, within WebhookTimeout.
// Only a 2xx answer delivers it.
func (w *Worker) post(ctx context.Context, d Delivery) (int, error) {
	if d.URL == "" {
		return 0, errors.New("the endpoint was removed")
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.WebhookTimeout)
	defer cancel()
	body := d.Event.Body()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Topup-Webhooks/1")
	req.Header.Set("Topup-Event-Id", d.Event.ID)
	SetHeaders(req.Header, d.Event.ID, w.cfg.Clock.Now(), body, d.Secret, d.PreviousSecret)
	resp, err := w.http.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the endpoint answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
