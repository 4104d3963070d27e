// Package sandbox is the in-process payment.Provider that behaves like
// Stripe in test mode: the same test payment methods (pm_card_visa,
// pm_card_chargeDeclined, pm_card_authenticationRequired…) give the same
// outcomes, idempotency keys are kept for Stripe's 24 hours, and a charge
// whose caller gave up waiting has still happened. It is a real
// implementation of the payment interface, not a mock (STYLE habit 7): the
// demo, the tests and anyone running Topup without a Stripe account use it.
//
// Everything it knows is kept durably through a Store, so that a charge
// survives a crash of the process that asked for it and the admin can read
// the log of every charge (GET /v1/sandbox/charges) to check that no top-up
// was charged twice. Ids come from the configured generator and time from
// the configured clock, so a seeded run is reproducible.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/payment"
)

// Store is the sandbox's durable memory; *sqlstore.Sandbox implements it on
// SQLite and PostgreSQL. Unknown ids give errors wrapping
// payment.ErrNotFound.
type Store interface {
	// SandboxChargeForKey returns the charge made under an idempotency key
	// remembered since forgetBefore; ok is false when there is none.
	SandboxChargeForKey(ctx context.Context, key string, forgetBefore time.Time) (Charge, bool, error)
	// SandboxInsertCharge records c under c.IdempotencyKey, unless a charge
	// made under that key since forgetBefore exists: then nothing is written
	// and that charge is returned with inserted false. Two callers racing
	// with one key get one charge.
	SandboxInsertCharge(ctx context.Context, c Charge, forgetBefore time.Time) (_ Charge, inserted bool, _ error)
	// SandboxCharge returns a charge by id.
	SandboxCharge(ctx context.Context, id string) (Charge, error)
	// SandboxChargesForTopUp returns the charges whose metadata names
	// topUpID, of customer unless customer is empty, newest first.
	SandboxChargesForTopUp(ctx context.Context, customer, topUpID string) ([]Charge, error)
	// SandboxUpdateCharge moves a charge that is in status from to status
	// to, with declineCode, and returns the charge as it then is: a charge
	// no longer in from is returned unchanged.
	SandboxUpdateCharge(ctx context.Context, id string, from, to payment.ChargeStatus, declineCode string) (Charge, error)
	// SandboxCharges lists every charge, newest first, for the admin; an
	// unknown startingAfter is an invalid-input error on starting_after.
	SandboxCharges(ctx context.Context, limit int, startingAfter string) (_ []Charge, hasMore bool, _ error)
	// SandboxInsertCard saves an attached card.
	SandboxInsertCard(ctx context.Context, c SavedCard) error
	// SandboxCard returns a saved card by id, detached ones included.
	SandboxCard(ctx context.Context, id string) (SavedCard, error)
	// SandboxDetachCard takes a card from its customer; detaching a
	// detached card succeeds.
	SandboxDetachCard(ctx context.Context, id string) error
	// SandboxInsertSession records a hosted setup session.
	SandboxInsertSession(ctx context.Context, s Session) error
	// SandboxSession returns a hosted setup session by id.
	SandboxSession(ctx context.Context, id string) (Session, error)
	// SandboxCompleteSession records cardID as the card a session saved,
	// unless it already has one, and returns the session's card: the first
	// completion wins.
	SandboxCompleteSession(ctx context.Context, id, cardID string) (string, error)

	// SandboxRefundForKey returns the refund made under an idempotency key
	// remembered since forgetBefore; ok is false when there is none.
	SandboxRefundForKey(ctx context.Context, key string, forgetBefore time.Time) (Refund, bool, error)
	// SandboxInsertRefund records r under r.IdempotencyKey, unless a
	// refund made under that key since forgetBefore exists: then nothing
	// is written and that refund is returned with inserted false. Else, in
	// the same transaction and under the lock of r's charge, it loads the
	// charge's ChargeMoney and writes r only if check allows it, returning
	// check's error otherwise; so two refunds racing on one charge are
	// judged one after the other. An unknown charge wraps
	// payment.ErrNotFound.
	SandboxInsertRefund(ctx context.Context, r Refund, forgetBefore time.Time, check func(ChargeMoney) error) (_ Refund, inserted bool, _ error)
	// SandboxRefund returns a refund by id.
	SandboxRefund(ctx context.Context, id string) (Refund, error)
	// SandboxRefundsOfCharge returns a charge's refunds, newest first.
	SandboxRefundsOfCharge(ctx context.Context, chargeID string) ([]Refund, error)
	// SandboxUpdateRefund moves a refund that is in status from to status
	// to, with failureReason, and returns it as it then is: a refund no
	// longer in from is returned unchanged.
	SandboxUpdateRefund(ctx context.Context, id string, from, to payment.RefundStatus, failureReason string) (Refund, error)
	// SandboxRefunds lists every refund, newest first; an unknown
	// startingAfter is an invalid-input error on starting_after.
	SandboxRefunds(ctx context.Context, limit int, startingAfter string) (_ []Refund, hasMore bool, _ error)
	// SandboxInsertDispute opens the dispute of chargeID that decide makes
	// of the charge's ChargeMoney, loaded under the charge's lock, unless
	// the charge has a dispute: then nothing is written and that one is
	// returned with inserted false. decide's error is returned as it is;
	// an unknown charge wraps payment.ErrNotFound.
	SandboxInsertDispute(ctx context.Context, chargeID string, decide func(ChargeMoney) (Dispute, error)) (_ Dispute, inserted bool, _ error)
	// SandboxDispute returns a dispute by id.
	SandboxDispute(ctx context.Context, id string) (Dispute, error)
	// SandboxDisputeOfCharge returns the dispute of a charge; a charge
	// without one wraps payment.ErrNotFound.
	SandboxDisputeOfCharge(ctx context.Context, chargeID string) (Dispute, error)
	// SandboxCloseDispute closes an open dispute with status to (won
	// reinstates its funds) at at, and returns it as it then is: a dispute
	// already closed is returned unchanged.
	SandboxCloseDispute(ctx context.Context, id string, to payment.DisputeStatus, at time.Time) (Dispute, error)
}

// Charge is the sandbox's record of one charge (a PaymentIntent), as the
// admin's charge log shows it.
type Charge struct {
	ID             string // pi_…
	IdempotencyKey string
	TopUpID        string
	Customer       string
	PaymentMethod  string
	Amount         int64
	Currency       string
	Status         payment.ChargeStatus
	DeclineCode    string
	// ClientSecret is set on charges that asked for 3-D Secure:
	// "<id>_secret_<random>", as Stripe's.
	ClientSecret string
	OffSession   bool
	CreatedAt    time.Time
}

// Payment returns the charge as the payment interface tells it: the client
// secret only while the charge waits for the customer.
func (c Charge) Payment() payment.Charge {
	out := payment.Charge{
		ID:          c.ID,
		TopUpID:     c.TopUpID,
		Status:      c.Status,
		Amount:      c.Amount,
		Currency:    c.Currency,
		DeclineCode: c.DeclineCode,
		Created:     c.CreatedAt,
	}
	if c.Status == payment.RequiresAction {
		out.ClientSecret = c.ClientSecret
	}
	return out
}

// SavedCard is a test payment method attached to a customer. Its Token
// (pm_card_visa…) decides what charges on it do.
type SavedCard struct {
	ID    string // pm_…, new at each attachment
	Token string
	// Customer is empty once the card is detached; a detached card cannot
	// be charged or attached again, as in Stripe.
	Customer  string
	Brand     string
	Last4     string
	ExpMonth  int
	ExpYear   int
	CreatedAt time.Time
}

// Card returns the display data Topup keeps.
func (c SavedCard) Card() payment.Card {
	return payment.Card{ID: c.ID, Brand: c.Brand, Last4: c.Last4, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear}
}

// Session is a hosted setup session: the sandbox's Checkout Session in
// setup mode. CardID is empty until a person picks a card.
type Session struct {
	ID         string // cs_…
	Customer   string
	AccountID  string
	SuccessURL string
	CancelURL  string
	CardID     string
	CreatedAt  time.Time
}

// Completed reports whether a card was saved through the session.
func (s Session) Completed() bool { return s.CardID != "" }

// Errors of the hosted setup flow, for the page to explain.
var (
	// ErrSessionExpired is returned for a setup session older than
	// SessionTTL that was never completed.
	ErrSessionExpired = errors.New("sandbox: setup session expired")
	// ErrSetupIncomplete is returned by CompleteSetup for a session where no
	// card was picked yet.
	ErrSetupIncomplete = errors.New("sandbox: setup session not completed")
)

// Defaults of Config.
const (
	// DefaultKeyTTL is how long Stripe remembers an idempotency key.
	DefaultKeyTTL = 24 * time.Hour
	// SessionTTL is how long a hosted setup session can be completed, as a
	// Checkout Session's default expiry.
	SessionTTL = 24 * time.Hour
)

// Config says how the sandbox behaves.
type Config struct {
	// Latency is how long each charge takes (TOPUP_SANDBOX_LATENCY). The
	// charge is recorded before the wait, so a caller whose context ends
	// first gets an unknown outcome for a charge that did happen, exactly
	// like a network timeout after Stripe charged.
	Latency time.Duration
	// BaseURL is where the service is reachable (http://127.0.0.1:8080);
	// the hosted setup page is BaseURL+"/sandbox/setup/{session_id}".
	BaseURL string
	// KeyTTL is how long an idempotency key is remembered; zero means
	// Stripe's 24 hours and a negative value forever. After it a key makes
	// a new charge, which is why a top-up retried more than a day later
	// must be looked up with FindCharge first.
	KeyTTL time.Duration
	// Clock tells the time of charges, cards and sessions; clock.System
	// when nil.
	Clock clock.Clock
	// IDs mints every id and client secret; a generator on Clock when nil.
	IDs *ids.Generator
	// Hook, when set, injects faults: delays, refusals, lost answers,
	// requests that land late, outcomes chosen call by call (faults.go).
	// The engine's tests and the simulator set it; the demo does not.
	Hook Hook
	// Events, when set, receives the webhook events of refunds and
	// disputes (EventSink); the service wires it to the code that applies
	// Stripe's webhooks. Charges send none: their outcome is the answer.
	Events EventSink
}

// Provider is payment.Provider on the sandbox. It is safe for concurrent
// use, also by several processes sharing one database.
type Provider struct {
	store   Store
	latency time.Duration
	baseURL string
	keyTTL  time.Duration
	clock   clock.Clock
	ids     *ids.Generator
	hook    Hook
	events  EventSink
}

var _ payment.Provider = (*Provider)(nil)

// New returns the sandbox on store, with cfg's defaults filled in.
func New(store Store, cfg Config) *Provider {
	p := &Provider{
		store:   store,
		latency: max(cfg.Latency, 0),
		baseURL: strings.TrimRight(cfg.BaseURL, "/"),
		keyTTL:  cfg.KeyTTL,
		clock:   cfg.Clock,
		ids:     cfg.IDs,
		hook:    cfg.Hook,
		events:  cfg.Events,
	}
	if p.keyTTL == 0 {
		p.keyTTL = DefaultKeyTTL
	}
	if p.clock == nil {
		p.clock = clock.System
	}
	if p.ids == nil {
		p.ids = ids.New(p.clock)
	}
	return p
}

// Name is "sandbox".
func (p *Provider) Name() string { return "sandbox" }

// EnsureCustomer returns customerID when it is set, and otherwise a new
// cus_… id. The sandbox keeps nothing about customers beyond the id written
// on their cards and charges.
func (p *Provider) EnsureCustomer(_ context.Context, customerID, _, _ string) (string, error) {
	if customerID != "" {
		return customerID, nil
	}
	return p.ids.New("cus"), nil
}

// AttachPaymentMethod attaches a test payment method to the customer under
// a new pm_… id, as Stripe does with its test tokens: attaching
// pm_card_visa twice gives two cards. Attaching a pm_… id again to its own
// customer returns it. An unknown token, a card of another customer or a
// detached card gives an error wrapping payment.ErrCardRefused.
func (p *Provider) AttachPaymentMethod(ctx context.Context, customerID, paymentMethod string) (payment.Card, error) {
	if customerID == "" {
		return payment.Card{}, fmt.Errorf("sandbox: attach %s: a customer is required", paymentMethod)
	}
	if tc, ok := lookupTestCard(paymentMethod); ok {
		c, err := p.attach(ctx, customerID, tc)
		return c.Card(), err
	}
	saved, err := p.store.SandboxCard(ctx, paymentMethod)
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return payment.Card{}, fmt.Errorf("sandbox: attach %s: %w: No such PaymentMethod: '%s'", paymentMethod, payment.ErrCardRefused, paymentMethod)
	case err != nil:
		return payment.Card{}, fmt.Errorf("sandbox: attach %s: %w", paymentMethod, err)
	case saved.Customer == customerID:
		return saved.Card(), nil
	case saved.Customer == "":
		return payment.Card{}, fmt.Errorf("sandbox: attach %s: %w: the PaymentMethod was detached from a Customer and may not be used again", paymentMethod, payment.ErrCardRefused)
	default:
		return payment.Card{}, fmt.Errorf("sandbox: attach %s: %w: the PaymentMethod is attached to another Customer", paymentMethod, payment.ErrCardRefused)
	}
}

func (p *Provider) attach(ctx context.Context, customerID string, tc testCard) (SavedCard, error) {
	now := p.clock.Now()
	c := SavedCard{
		ID:        p.ids.New("pm"),
		Token:     tc.token,
		Customer:  customerID,
		Brand:     tc.brand,
		Last4:     tc.last4,
		ExpMonth:  12,
		ExpYear:   now.Year() + 3,
		CreatedAt: now,
	}
	if err := p.store.SandboxInsertCard(ctx, c); err != nil {
		return SavedCard{}, fmt.Errorf("sandbox: attach %s: %w", tc.token, err)
	}
	return c, nil
}

// DetachPaymentMethod takes a saved card from its customer; it cannot be
// charged afterwards. Detaching it again succeeds, so that a retried removal
// finishes; an id the sandbox never made gives an error wrapping
// payment.ErrNotFound.
func (p *Provider) DetachPaymentMethod(ctx context.Context, paymentMethodID string) error {
	if err := p.store.SandboxDetachCard(ctx, paymentMethodID); err != nil {
		return fmt.Errorf("sandbox: detach %s: %w", paymentMethodID, err)
	}
	return nil
}

// SetupURL records a hosted setup session for the customer and returns its
// page, BaseURL+"/sandbox/setup/{session_id}", where a person picks a test
// card (ChooseCard).
func (p *Provider) SetupURL(ctx context.Context, customerID, accountID, successURL, cancelURL string) (string, error) {
	if customerID == "" || successURL == "" {
		return "", fmt.Errorf("sandbox: setup session for account %s: a customer and a success URL are required", accountID)
	}
	s := Session{
		// The session's id is the secret of its page's URL.
		ID:         p.ids.Secret("cs_"),
		Customer:   customerID,
		AccountID:  accountID,
		SuccessURL: successURL,
		CancelURL:  cancelURL,
		CreatedAt:  p.clock.Now(),
	}
	if err := p.store.SandboxInsertSession(ctx, s); err != nil {
		return "", fmt.Errorf("sandbox: setup session for account %s: %w", accountID, err)
	}
	return p.baseURL + "/sandbox/setup/" + url.PathEscape(s.ID), nil
}

// Session returns a hosted setup session, for the page that shows it; an
// unknown id gives an error wrapping payment.ErrNotFound.
func (p *Provider) Session(ctx context.Context, id string) (Session, error) {
	s, err := p.store.SandboxSession(ctx, id)
	if err != nil {
		return Session{}, fmt.Errorf("sandbox: setup session %s: %w", id, err)
	}
	return s, nil
}

// ChooseCard completes a hosted setup session with the test card token a
// person picked (one of CardOptions): the card is attached to the session's
// customer, and the browser is to go to the returned URL, the session's
// success URL with session_id=<id> (Stripe's {CHECKOUT_SESSION_ID}
// placeholder is filled in instead when the URL has it). A session completes
// once: submitting the page again returns the same URL and attaches
// nothing. An unknown token wraps payment.ErrCardRefused, an unknown session
// payment.ErrNotFound, and a session left open too long is ErrSessionExpired.
func (p *Provider) ChooseCard(ctx context.Context, sessionID, token string) (string, error) {
	s, err := p.Session(ctx, sessionID)
	if err != nil {
		return "", err
	}
	if s.Completed() {
		return successRedirect(s.SuccessURL, s.ID), nil
	}
	if !p.clock.Now().Before(s.CreatedAt.Add(SessionTTL)) {
		return "", fmt.Errorf("%w: %s", ErrSessionExpired, s.ID)
	}
	tc, ok := lookupTestCard(token)
	if !ok {
		return "", fmt.Errorf("sandbox: setup session %s: %w: No such test card: '%s'", s.ID, payment.ErrCardRefused, token)
	}
	card, err := p.attach(ctx, s.Customer, tc)
	if err != nil {
		return "", err
	}
	saved, err := p.store.SandboxCompleteSession(ctx, s.ID, card.ID)
	if err != nil {
		return "", fmt.Errorf("sandbox: complete setup session %s: %w", s.ID, err)
	}
	if saved != card.ID {
		// Another submission of the page finished first: keep its card
		// and leave none of ours on the customer.
		_ = p.store.SandboxDetachCard(ctx, card.ID)
	}
	return successRedirect(s.SuccessURL, s.ID), nil
}

// successRedirect appends session_id to a success URL that may already
// have a query or a fragment.
func successRedirect(successURL, sessionID string) string {
	const placeholder = "{CHECKOUT_SESSION_ID}"
	if strings.Contains(successURL, placeholder) {
		return strings.ReplaceAll(successURL, placeholder, url.QueryEscape(sessionID))
	}
	base, fragment, hasFragment := strings.Cut(successURL, "#")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	out := base + sep + "session_id=" + url.QueryEscape(sessionID)
	if hasFragment {
		out += "#" + fragment
	}
	return out
}

// CompleteSetup returns the card saved through a completed hosted setup
// session; a session where no card was picked yet gives ErrSetupIncomplete.
func (p *Provider) CompleteSetup(ctx context.Context, customerID, sessionID string) (payment.Card, error) {
	s, err := p.Session(ctx, sessionID)
	if err != nil {
		return payment.Card{}, err
	}
	if s.Customer != customerID {
		return payment.Card{}, fmt.Errorf("sandbox: setup session %s belongs to another customer", sessionID)
	}
	if !s.Completed() {
		return payment.Card{}, fmt.Errorf("%w: %s", ErrSetupIncomplete, s.ID)
	}
	c, err := p.store.SandboxCard(ctx, s.CardID)
	if err != nil {
		return payment.Card{}, fmt.Errorf("sandbox: card of setup session %s: %w", s.ID, err)
	}
	if c.Customer != customerID {
		// Detached since (removed from the account): as with Stripe, a
		// detached payment method is not the customer's any more.
		return payment.Card{}, fmt.Errorf("sandbox: card %s of setup session %s was detached: %w", c.ID, s.ID, payment.ErrNotFound)
	}
	return c.Card(), nil
}
