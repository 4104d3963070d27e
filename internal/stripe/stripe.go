// Package stripe is the production payment.Provider: Stripe, through
// stripe-go. It keeps no state of its own; Stripe holds the customers, cards
// and PaymentIntents, and Topup keeps only their ids and display data.
//
// Retries belong to the caller. The stripe-go backend is built with
// MaxNetworkRetries 0, so a timeout or a 5xx comes straight back as an error
// wrapping payment.ErrUnknownOutcome, and the top-up engine decides when to
// send the same idempotency key again.
package stripe

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	stripego "github.com/stripe/stripe-go/v85"

	"github.com/topup/topup/internal/payment"
)

// metaAccountID and metaTopUpID are the metadata keys Topup writes on Stripe
// objects, so that an object can be traced back to its account or top-up
// without any state on our side.
const (
	metaAccountID = "account_id"
	metaTopUpID   = "top_up_id"
)

// defaultTimeout bounds one HTTP request to Stripe when Config.HTTPClient is
// not given. Callers with a tighter budget (a manual top-up answers within
// 10 s) pass a context with a deadline.
const defaultTimeout = 30 * time.Second

// Config says how to reach Stripe. Only SecretKey is required.
type Config struct {
	// SecretKey is the API key (STRIPE_SECRET_KEY), sk_test_… or sk_live_….
	SecretKey string
	// WebhookSecret verifies the Stripe-Signature header of webhook events
	// (STRIPE_WEBHOOK_SECRET, whsec_…). Without it every webhook is refused
	// with payment.ErrBadSignature: an empty HMAC key would let anyone sign.
	WebhookSecret string
	// APIBase replaces https://api.stripe.com (STRIPE_API_BASE), for
	// stripe-mock: "http://127.0.0.1:12111", without /v1.
	APIBase string
	// HTTPClient carries the requests; the default has a 30 s timeout.
	HTTPClient *http.Client
	// Publishable is the publishable key (STRIPE_PUBLISHABLE_KEY) that
	// Stripe.js needs on the page where a customer completes 3-D Secure.
	Publishable string
	// Logger receives stripe-go's own request logs; nil discards them
	// (every failure is also returned as an error).
	Logger *slog.Logger
}

// Provider is payment.Provider on Stripe. It is safe for concurrent use.
type Provider struct {
	client        *stripego.Client
	webhookSecret string
	publishable   string
	logger        *slog.Logger

	// versionsSeen holds the API versions of webhook events already
	// logged as not the pinned one, to log each once.
	versionsSeen *sync.Map

	// pageSize is how many PaymentIntents one page of FindCharge's listing
	// asks for; tests shrink it.
	pageSize int64
}

var _ payment.Provider = (*Provider)(nil)

// New returns a Provider for cfg. It makes no request: a wrong key shows on
// the first call.
func New(cfg Config) (*Provider, error) {
	if cfg.SecretKey == "" {
		return nil, errors.New("stripe: a secret key is required (STRIPE_SECRET_KEY)")
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: defaultTimeout}
	}
	bc := &stripego.BackendConfig{
		HTTPClient: httpClient,
		// Zero: stripe-go would otherwise retry 5xx, 409 and network
		// errors on its own, hiding an unknown outcome from the engine that
		// owns retries and their backoff.
		MaxNetworkRetries: stripego.Int64(0),
		LeveledLogger:     leveledLogger(cfg.Logger),
	}
	if cfg.APIBase != "" {
		base, err := apiBase(cfg.APIBase)
		if err != nil {
			return nil, err
		}
		bc.URL = stripego.String(base)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discardLogger()
	}
	return &Provider{
		logger:        logger,
		client:        stripego.NewClient(cfg.SecretKey, stripego.WithBackends(stripego.NewBackendsWithConfig(bc))),
		webhookSecret: cfg.WebhookSecret,
		publishable:   cfg.Publishable,
		pageSize:      100,
		versionsSeen:  &sync.Map{},
	}, nil
}

// apiBase checks STRIPE_API_BASE and drops a trailing /v1, which stripe-go
// adds itself to every path.
func apiBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("stripe: API base %q is not an http(s) URL", raw)
	}
	base := strings.TrimRight(raw, "/")
	return strings.TrimSuffix(base, "/v1"), nil
}

// Name is "stripe".
func (p *Provider) Name() string { return "stripe" }

// PublishableKey is the key Stripe.js uses in the customer's browser; empty
// when none was configured.
func (p *Provider) PublishableKey() string { return p.publishable }

// EnsureCustomer returns customerID when it is set, and otherwise creates a
// Stripe Customer carrying the account id in its metadata. The creation is
// idempotent per account and e-mail for Stripe's 24 hours, so a retry after
// a lost answer does not leave a second customer behind.
func (p *Provider) EnsureCustomer(ctx context.Context, customerID, accountID, email string) (string, error) {
	if customerID != "" {
		return customerID, nil
	}
	params := &stripego.CustomerCreateParams{}
	if email != "" {
		params.Email = stripego.String(email)
	}
	params.AddMetadata(metaAccountID, accountID)
	params.SetIdempotencyKey(fmt.Sprintf("topup-customer-%s-%x", accountID, sha256.Sum256([]byte(email))))
	c, err := p.client.V1Customers.Create(ctx, params)
	if err != nil {
		return "", classify("create customer for account "+accountID, err)
	}
	return c.ID, nil
}

// AttachPaymentMethod saves paymentMethod (pm_card_visa, or a pm_… made by
// Stripe.js) on the customer for off-session use, as Stripe asks: through a
// SetupIntent with usage off_session, created and confirmed at once with the
// card and the customer, which attaches the card when it succeeds. (A bare
// attach skips the bank's setup checks, so later off-session charges are
// declined more often.) Stripe mints a new id when it saves a test token,
// so the returned Card.ID is the one to keep.
//
// A card Stripe refuses, or an id it does not accept, gives an error
// wrapping payment.ErrCardRefused with Stripe's message. So does a card
// whose bank wants its holder to authenticate (the SetupIntent needs an
// action): an API call cannot do that, so the SetupIntent is canceled and
// the error tells the caller to use the hosted page
// (POST …/payment_methods/setup), where the customer can.
func (p *Provider) AttachPaymentMethod(ctx context.Context, customerID, paymentMethod string) (payment.Card, error) {
	si, err := p.client.V1SetupIntents.Create(ctx, saveCardParams(customerID, paymentMethod))
	if err != nil {
		var se *stripego.Error
		if errors.As(err, &se) && refusesPaymentMethod(se) {
			return payment.Card{}, fmt.Errorf("stripe: save %s: %w: %s", paymentMethod, payment.ErrCardRefused, se.Msg)
		}
		return payment.Card{}, classify("save "+paymentMethod, err)
	}
	switch si.Status {
	case stripego.SetupIntentStatusSucceeded:
	case stripego.SetupIntentStatusRequiresAction:
		p.cancelSetup(ctx, si.ID)
		return payment.Card{}, fmt.Errorf("stripe: save %s: %w: the card's bank asks its holder to authenticate (3-D Secure), "+
			"which an API call cannot do; add the card on the hosted page instead (POST /v1/accounts/{id}/payment_methods/setup)",
			paymentMethod, payment.ErrCardRefused)
	case stripego.SetupIntentStatusRequiresPaymentMethod, stripego.SetupIntentStatusCanceled:
		msg := "the card could not be set up"
		if si.LastSetupError != nil && si.LastSetupError.Msg != "" {
			msg = si.LastSetupError.Msg
		}
		return payment.Card{}, fmt.Errorf("stripe: save %s: %w: %s", paymentMethod, payment.ErrCardRefused, msg)
	default:
		// processing or requires_confirmation: nothing a card normally
		// does, and nothing saved yet that Topup could list.
		p.cancelSetup(ctx, si.ID)
		return payment.Card{}, fmt.Errorf("stripe: save %s: SetupIntent %s is %s, not succeeded", paymentMethod, si.ID, si.Status)
	}
	card, err := p.setupCard(ctx, si)
	if err != nil {
		return payment.Card{}, err
	}
	return card, nil
}

// saveCardParams asks for a SetupIntent that saves paymentMethod on the
// customer for off-session use, confirmed at once, with the saved card
// expanded in the answer.
func saveCardParams(customerID, paymentMethod string) *stripego.SetupIntentCreateParams {
	params := &stripego.SetupIntentCreateParams{
		Customer:      stripego.String(customerID),
		PaymentMethod: stripego.String(paymentMethod),
		// Only cards: Automatic Top-Up charges nothing else, and a card
		// needs no return_url (3-D Secure comes back as requires_action).
		PaymentMethodTypes: stripego.StringSlice([]string{"card"}),
		Usage:              stripego.String(string(stripego.SetupIntentUsageOffSession)),
		Confirm:            stripego.Bool(true),
	}
	params.AddExpand("payment_method")
	return params
}

// cancelSetup cancels a SetupIntent Topup will not finish, so that it does
// not wait for a customer who was never asked. It is best effort: an
// unconfirmed SetupIntent saves nothing, and Stripe lets it lapse.
func (p *Provider) cancelSetup(ctx context.Context, setupIntentID string) {
	if _, err := p.client.V1SetupIntents.Cancel(ctx, setupIntentID, nil); err != nil {
		p.logger.WarnContext(ctx, "stripe: cancel an unfinished SetupIntent",
			slog.String("setup_intent", setupIntentID), slog.Any("error", err))
	}
}

// refusesPaymentMethod tells a refusal of the payment method itself (a card
// error, an unknown or already used pm_… id) from a fault of ours, such as an
// unknown customer.
func refusesPaymentMethod(se *stripego.Error) bool {
	switch se.Type {
	case stripego.ErrorTypeCard:
		return true
	case stripego.ErrorTypeInvalidRequest:
		return se.HTTPStatusCode < 500 && se.HTTPStatusCode != http.StatusUnauthorized &&
			se.HTTPStatusCode != http.StatusForbidden && se.HTTPStatusCode != http.StatusTooManyRequests &&
			se.Param != "customer"
	}
	return false
}

// DetachPaymentMethod detaches a card from its customer. Detaching a card
// that is no longer attached succeeds, so that a retried removal finishes.
func (p *Provider) DetachPaymentMethod(ctx context.Context, paymentMethodID string) error {
	_, err := p.client.V1PaymentMethods.Detach(ctx, paymentMethodID, nil)
	if err == nil {
		return nil
	}
	var se *stripego.Error
	if errors.As(err, &se) && se.Type == stripego.ErrorTypeInvalidRequest && se.HTTPStatusCode == http.StatusBadRequest {
		// Stripe answers 400 for a payment method that is not attached;
		// look before calling it a failure.
		pm, gerr := p.client.V1PaymentMethods.Retrieve(ctx, paymentMethodID, nil)
		if gerr == nil && pm.Customer == nil {
			return nil
		}
	}
	return classify("detach "+paymentMethodID, err)
}

// SetupURL creates a Checkout Session in setup mode for the customer and
// returns its hosted page. Stripe replaces {CHECKOUT_SESSION_ID} in the
// success URL with the session id, which CompleteSetup takes. A setup-mode
// session creates its SetupIntent with usage off_session (Stripe's default;
// the API has no setup_intent_data.usage), which is what Automatic Top-Up
// needs to charge the card later without the customer.
func (p *Provider) SetupURL(ctx context.Context, customerID, accountID, successURL, cancelURL string) (string, error) {
	sep := "?"
	if strings.Contains(successURL, "?") {
		sep = "&"
	}
	params := &stripego.CheckoutSessionCreateParams{
		Mode:       stripego.String(string(stripego.CheckoutSessionModeSetup)),
		Customer:   stripego.String(customerID),
		SuccessURL: stripego.String(successURL + sep + "session_id={CHECKOUT_SESSION_ID}"),
		CancelURL:  stripego.String(cancelURL),
		// Naming the type spares the currency that setup mode otherwise
		// requires, and keeps wallets and bank debits Topup cannot list
		// off the page.
		PaymentMethodTypes: stripego.StringSlice([]string{"card"}),
		SetupIntentData: &stripego.CheckoutSessionCreateSetupIntentDataParams{
			Metadata: map[string]string{metaAccountID: accountID},
		},
	}
	params.AddMetadata(metaAccountID, accountID)
	s, err := p.client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return "", classify("create setup session for account "+accountID, err)
	}
	if s.URL == "" {
		return "", fmt.Errorf("stripe: setup session %s has no URL", s.ID)
	}
	return s.URL, nil
}

// CompleteSetup returns the card saved by a completed setup-mode Checkout
// Session. An open or expired session, or one in another mode, is an error.
func (p *Provider) CompleteSetup(ctx context.Context, customerID, sessionID string) (payment.Card, error) {
	s, err := p.setupSession(ctx, sessionID)
	if err != nil {
		return payment.Card{}, err
	}
	if s.Mode != stripego.CheckoutSessionModeSetup {
		return payment.Card{}, fmt.Errorf("stripe: session %s is in %s mode, not setup", sessionID, s.Mode)
	}
	if s.Status != stripego.CheckoutSessionStatusComplete {
		return payment.Card{}, fmt.Errorf("stripe: setup session %s is %s, not complete", sessionID, s.Status)
	}
	if s.Customer == nil || s.Customer.ID != customerID {
		return payment.Card{}, fmt.Errorf("stripe: setup session %s belongs to another customer", sessionID)
	}
	return p.setupCard(ctx, s.SetupIntent)
}

// setupSession retrieves a Checkout Session with its SetupIntent and that
// intent's payment method expanded, in one request.
func (p *Provider) setupSession(ctx context.Context, sessionID string) (*stripego.CheckoutSession, error) {
	params := &stripego.CheckoutSessionRetrieveParams{}
	params.AddExpand("setup_intent.payment_method")
	s, err := p.client.V1CheckoutSessions.Retrieve(ctx, sessionID, params)
	if err != nil {
		return nil, classify("retrieve setup session "+sessionID, err)
	}
	return s, nil
}

// setupCard returns the card a SetupIntent saved, fetching what a webhook
// or an unexpanded response left as a bare id.
func (p *Provider) setupCard(ctx context.Context, si *stripego.SetupIntent) (payment.Card, error) {
	if si == nil || si.ID == "" {
		return payment.Card{}, errors.New("stripe: setup has no SetupIntent")
	}
	if si.PaymentMethod == nil && si.Status == "" {
		params := &stripego.SetupIntentRetrieveParams{}
		params.AddExpand("payment_method")
		got, err := p.client.V1SetupIntents.Retrieve(ctx, si.ID, params)
		if err != nil {
			return payment.Card{}, classify("retrieve SetupIntent "+si.ID, err)
		}
		si = got
	}
	if si.PaymentMethod == nil || si.PaymentMethod.ID == "" {
		return payment.Card{}, fmt.Errorf("stripe: SetupIntent %s (%s) has no payment method", si.ID, si.Status)
	}
	pm := si.PaymentMethod
	if pm.Card == nil && pm.Type == "" {
		got, err := p.client.V1PaymentMethods.Retrieve(ctx, pm.ID, nil)
		if err != nil {
			return payment.Card{}, classify("retrieve payment method "+pm.ID, err)
		}
		pm = got
	}
	card, ok := cardFromPaymentMethod(pm)
	if !ok {
		return payment.Card{}, fmt.Errorf("stripe: payment method %s is a %s, not a card", pm.ID, pm.Type)
	}
	return card, nil
}

// cardFromPaymentMethod keeps the display data of a card payment method.
func cardFromPaymentMethod(pm *stripego.PaymentMethod) (payment.Card, bool) {
	if pm == nil || pm.Card == nil {
		return payment.Card{}, false
	}
	return payment.Card{
		ID:       pm.ID,
		Brand:    string(pm.Card.Brand),
		Last4:    pm.Card.Last4,
		ExpMonth: int(pm.Card.ExpMonth),
		ExpYear:  int(pm.Card.ExpYear),
	}, true
}

// classify wraps a stripe-go error as the payment package's errors say:
// no answer, a 5xx, an api_error, a 409 (the same key still in flight) or a
// 429 may hide a completed request, so they wrap payment.ErrUnknownOutcome;
// a 404 wraps payment.ErrNotFound; anything else (a 400 is a bug of ours, a
// 401 a bad key) is a plain error that retrying will not fix.
func classify(op string, err error) error {
	var se *stripego.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("stripe: %s: %w: %w", op, payment.ErrUnknownOutcome, err)
	}
	switch {
	case se.HTTPStatusCode >= 500, se.Type == stripego.ErrorTypeAPI,
		se.HTTPStatusCode == http.StatusConflict, se.HTTPStatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("stripe: %s: %w: %s", op, payment.ErrUnknownOutcome, describe(se))
	case se.HTTPStatusCode == http.StatusNotFound:
		return fmt.Errorf("stripe: %s: %w: %s", op, payment.ErrNotFound, describe(se))
	}
	return fmt.Errorf("stripe: %s: %s", op, describe(se))
}

// describe is a one-line account of a Stripe error for logs; stripe-go's own
// Error() is the whole JSON object, client secret included.
func describe(se *stripego.Error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", se.HTTPStatusCode, se.Type)
	if se.Code != "" {
		fmt.Fprintf(&b, " %s", se.Code)
	}
	if se.DeclineCode != "" {
		fmt.Fprintf(&b, " (%s)", se.DeclineCode)
	}
	if se.Param != "" {
		fmt.Fprintf(&b, " param %s", se.Param)
	}
	if se.Msg != "" {
		fmt.Fprintf(&b, ": %s", se.Msg)
	}
	if se.RequestID != "" {
		fmt.Fprintf(&b, " [%s]", se.RequestID)
	}
	return b.String()
}
