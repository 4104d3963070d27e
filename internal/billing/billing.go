// Package billing is the service layer: the business operations that the
// JSON API (internal/httpapi), the console (internal/web) and the
// simulator (internal/sim) share. A manual top-up, a settings save, a card
// removal, a card setup, a 3-D Secure answer, a threshold, a budget or a
// webhook endpoint is decided here once, whichever door it came through;
// the HTTP packages only read requests and write answers.
//
// Every method returns *apperr.Error for a refusal the caller may show (its
// comment names the codes) and a plain error for a failure of the store or
// the provider, which the edge logs and shows as "internal error".
package billing

import (
	"context"
	"log/slog"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
)

// Store is the storage of payment methods, settings and top-ups that the
// operations write through (*sqlstore.Payments). Its methods refuse with
// *apperr.Error: NotFound for an unknown account, card or top-up,
// AccountClosed for a write a closed account may not make, Invalid naming
// the field for input the rules refuse, Conflict and LimitExceeded for
// cards, IdempotencyConflict for a key reused with another request.
type Store interface {
	CustomerID(ctx context.Context, accountID string) (string, error)
	SetCustomerID(ctx context.Context, accountID, customer string) (string, error)
	AddCard(ctx context.Context, accountID string, c payment.Card) (topup.Card, error)
	AddSetupCard(ctx context.Context, accountID, sessionID string, c payment.Card) (topup.Card, error)
	SetupSessionUsed(ctx context.Context, sessionID string) (bool, error)
	RemoveCard(ctx context.Context, accountID, cardID string) (bool, error)
	SaveSettings(ctx context.Context, accountID, actor string, in topup.Input, maxTarget money.Amount) (topup.Settings, *topup.TopUp, error)
	CreateManual(ctx context.Context, accountID string, amount money.Amount, card, key, hash string, lease time.Duration) (topup.TopUp, bool, error)
	TopUpByID(ctx context.Context, id string) (topup.TopUp, error)
	Settle(ctx context.Context, id string, o topup.Outcome, backoff time.Duration) (topup.Settled, error)
}

// Alerts is the storage of low balance alerts, budgets and webhook
// endpoints (*sqlstore.Outbox). Methods return NotFound for an unknown (or
// another account's) resource, Invalid naming the field for input the
// rules refuse, Conflict for a second budget of one subject,
// LimitExceeded past an account's limits and AccountClosed for a closed
// account's additions.
type Alerts interface {
	SetLowBalanceAlerts(ctx context.Context, accountID string, thresholds []money.Amount) ([]alert.Threshold, error)
	CreateBudget(ctx context.Context, accountID string, in alert.BudgetInput) (alert.Budget, error)
	UpdateBudget(ctx context.Context, accountID, id string, in alert.BudgetInput) (alert.Budget, error)
	DeleteBudget(ctx context.Context, accountID, id string) error
	CreateEndpoint(ctx context.Context, accountID, url string) (notify.Endpoint, error)
	DeleteEndpoint(ctx context.Context, accountID, id string) error
}

// Authenticator answers the sandbox's simulated 3-D Secure challenge
// (*sandbox.Provider); Stripe has none, its page runs Stripe.js.
type Authenticator interface {
	Authenticate(ctx context.Context, chargeID string, ok bool) (payment.Charge, error)
}

// Config holds the operator's settings the operations apply.
type Config struct {
	// MaxTarget is TOPUP_MAX_TARGET: the largest target and manual top-up
	// (default 10,000.00).
	MaxTarget money.Amount
	// WebhooksAllowPrivate is TOPUP_WEBHOOKS_ALLOW_PRIVATE: webhook
	// endpoints may be registered on loopback and private addresses.
	WebhooksAllowPrivate bool
	// PublicURL is where browsers reach Topup; a top-up's action_url opens
	// PublicURL + "/pay/…" when no console is served.
	PublicURL string
	// ConsoleURL is where the console is served (PublicURL + "/console"),
	// when it is: action_url then opens the console's 3-D Secure page.
	ConsoleURL string
	// StripePublishableKey lets the 3-D Secure page load Stripe.js.
	StripePublishableKey string
}

// Deps are the service's collaborators.
type Deps struct {
	Store Store
	// Alerts keeps thresholds, budgets and endpoints; nil answers NotFound
	// to their operations ("not served here").
	Alerts   Alerts
	Provider payment.Provider
	// Sandbox answers the simulated 3-D Secure challenge; nil with Stripe.
	Sandbox Authenticator
	// Engine charges manual top-ups at once and is woken by a save that
	// made a top-up due; nil (the simulator, which drives its own engine)
	// leaves both to the caller. The 3-D Secure operations need it.
	Engine *topup.Engine
	Clock  clock.Clock
	Logger *slog.Logger
}

// Service holds the operations. It is safe for concurrent use.
type Service struct {
	cfg      Config
	store    Store
	alerts   Alerts
	provider payment.Provider
	sandbox  Authenticator
	engine   *topup.Engine
	clock    clock.Clock
	log      *slog.Logger
}

// DefaultMaxTarget is TOPUP_MAX_TARGET's default, 10,000.00.
const DefaultMaxTarget = 10_000 * money.MicrosPerUnit

// New returns the service.
func New(cfg Config, d Deps) *Service {
	if cfg.MaxTarget <= 0 {
		cfg.MaxTarget = DefaultMaxTarget
	}
	if d.Clock == nil {
		d.Clock = clock.System
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: d.Store, alerts: d.Alerts, provider: d.Provider, sandbox: d.Sandbox, engine: d.Engine,
		clock: d.Clock, log: d.Logger}
}

// MaxTarget is TOPUP_MAX_TARGET, for validating settings before a save
// (the console's preview).
func (s *Service) MaxTarget() money.Amount { return s.cfg.MaxTarget }

// Payments says how the action page authenticates: the sandbox's simulated
// challenge, or Stripe.js with this publishable key.
func (s *Service) Payments() (sandbox bool, publishableKey string) {
	return s.sandbox != nil, s.cfg.StripePublishableKey
}

// ActionURL returns the page where the customer completes t's 3-D Secure
// challenge (the console's when one is served), or "" when t waits for
// nothing. The token in it is the only credential the page asks for.
func (s *Service) ActionURL(t topup.TopUp) string {
	base := s.cfg.PublicURL + "/pay"
	if s.cfg.ConsoleURL != "" {
		base = s.cfg.ConsoleURL + "/pay"
	}
	return topup.ActionURL(base, t)
}

// alertStore returns the storage of alerts, budgets and endpoints, or
// NotFound when this service keeps none.
func (s *Service) alertStore() (Alerts, error) {
	if s.alerts == nil {
		return nil, apperr.NotFoundf("alerts and budgets are not served here")
	}
	return s.alerts, nil
}
