package app

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/topup/topup/internal/authlimit"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/retention"
	"github.com/topup/topup/internal/stripe"
)

// Settings are the operator's environment, read once at start.
type Settings struct {
	// Payments is --payments: sandbox or stripe.
	Payments string
	// SandboxLatency is TOPUP_SANDBOX_LATENCY: how long each sandbox
	// charge takes.
	SandboxLatency time.Duration
	// RetryBackoff is TOPUP_RETRY_BACKOFF: the wait after a declined
	// automatic top-up.
	RetryBackoff time.Duration
	// WorkerLease is TOPUP_WORKER_LEASE: how long a worker's claim on a
	// top-up keeps other workers away unless renewed, and so how soon
	// another replica resumes a top-up whose charge a killed one left in
	// flight (zero: the engine's default, 10s). The claim is renewed every
	// third of it while the charge runs, so it need not outlast a charge;
	// at least 1s, so that a renewal has time to reach the database.
	WorkerLease time.Duration
	// MaxTarget is TOPUP_MAX_TARGET: the largest target and manual top-up.
	MaxTarget money.Amount
	// MaxAmount is TOPUP_MAX_AMOUNT: the largest amount of one usage,
	// credit or top-up (zero: the API's default, 1,000,000.00).
	MaxAmount money.Amount
	// MaxBody is TOPUP_MAX_BODY in bytes (zero: the API's default, 16 MiB).
	MaxBody int64
	// MetricsPublic is TOPUP_METRICS_PUBLIC=true: /metrics needs no key.
	MetricsPublic bool
	// PublicURL is TOPUP_PUBLIC_URL: where browsers reach this service
	// (empty: the address it listens on).
	PublicURL string
	// Stripe is the STRIPE_* variables, read with --payments stripe.
	Stripe stripe.Config
	// SMTPURL is TOPUP_SMTP_URL: where mail goes (empty: only recorded).
	SMTPURL string
	// WebhookRetryBase is TOPUP_WEBHOOK_RETRY_BASE: the first wait after a
	// failed webhook delivery, doubling (zero: the worker's default, 30s).
	WebhookRetryBase time.Duration
	// WebhooksAllowPrivate is TOPUP_WEBHOOKS_ALLOW_PRIVATE=true: webhook
	// endpoints may live on loopback and private addresses.
	WebhooksAllowPrivate bool
	// TrustedProxies is TOPUP_TRUSTED_PROXIES: connections from these
	// addresses have their client read from X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// PaidCreditExpiry is TOPUP_PAID_CREDIT_EXPIRY: how long the paid
	// credit of a top-up lasts (zero: for ever).
	PaidCreditExpiry time.Duration
	// Business is the operator as receipts name it: TOPUP_BUSINESS_NAME,
	// TOPUP_BUSINESS_ADDRESS (lines separated by \n) and
	// TOPUP_BUSINESS_TAX_ID.
	Business receipt.Business
	// ExpiryInterval is TOPUP_EXPIRY_INTERVAL: how often the expiry worker
	// looks for grants to expire or warn of (zero: the worker's default,
	// 30s; at most 1m, the contract's bound).
	ExpiryInterval time.Duration
	// CommitWorkers is TOPUP_COMMIT_WORKERS: how many group commits run at
	// once on PostgreSQL, each for its own share of the accounts (zero: the
	// default, 2; SQLite has one writer and always uses one).
	CommitWorkers int
	// IdempotencyRetention is TOPUP_IDEMPOTENCY_RETENTION: how long a usage
	// call's idempotency key is remembered (default 30 days, at least 24
	// hours); every other key is kept for ever.
	IdempotencyRetention time.Duration
}

// ReadSettings reads the operator's environment (getenv) for --payments
// payments; a value it cannot use is an error naming the variable.
func ReadSettings(payments string, getenv func(string) string) (Settings, error) {
	s := Settings{Payments: payments, RetryBackoff: time.Hour, MaxTarget: 10_000 * money.MicrosPerUnit, PublicURL: getenv("TOPUP_PUBLIC_URL"),
		IdempotencyRetention: retention.DefaultRetention}
	for _, v := range s.variables() {
		if text := getenv(v.name); text != "" {
			if err := v.read(text); err != nil {
				return s, err
			}
		}
	}
	switch payments {
	case "stripe":
		s.Stripe = stripe.Config{SecretKey: getenv("STRIPE_SECRET_KEY"), WebhookSecret: getenv("STRIPE_WEBHOOK_SECRET"),
			APIBase: getenv("STRIPE_API_BASE"), Publishable: getenv("STRIPE_PUBLISHABLE_KEY")}
		if s.Stripe.SecretKey == "" {
			return s, fmt.Errorf("--payments stripe needs STRIPE_SECRET_KEY")
		}
	case "sandbox":
	default:
		return s, fmt.Errorf("--payments must be sandbox or stripe, not %q", payments)
	}
	return s, nil
}

// variable is one environment variable and how it is read into Settings.
type variable struct {
	name string
	read func(string) error
}

// variables are the environment variables ReadSettings reads, each into
// its field of s, in the order they are checked.
func (s *Settings) variables() []variable {
	return []variable{
		{"TOPUP_SANDBOX_LATENCY", duration(&s.SandboxLatency, "TOPUP_SANDBOX_LATENCY must be a Go duration such as 200ms, not %q", false)},
		{"TOPUP_RETRY_BACKOFF", duration(&s.RetryBackoff, "TOPUP_RETRY_BACKOFF must be a Go duration such as 1h, not %q", false)},
		{"TOPUP_WORKER_LEASE", func(v string) error {
			// Renewed every third of the lease while a charge runs: shorter
			// than a second, a renewal delayed by a busy database would let
			// another replica take a top-up whose charge is running.
			const msg = "TOPUP_WORKER_LEASE must be a Go duration of at least 1s such as 10s, not %q"
			err := duration(&s.WorkerLease, msg, true)(v)
			if err == nil && s.WorkerLease < time.Second {
				err = fmt.Errorf(msg, v)
			}
			return err
		}},
		{"TOPUP_MAX_TARGET", amount(&s.MaxTarget, "TOPUP_MAX_TARGET must be an amount such as 10000.00, not %q")},
		{"TOPUP_MAX_AMOUNT", amount(&s.MaxAmount, "TOPUP_MAX_AMOUNT must be an amount such as 1000000.00, not %q")},
		{"TOPUP_MAX_BODY", func(v string) (err error) {
			if s.MaxBody, err = parseBytes(v); err != nil {
				return fmt.Errorf("TOPUP_MAX_BODY must be a size such as 16MiB or 16777216, not %q", v)
			}
			return nil
		}},
		{"TOPUP_METRICS_PUBLIC", boolean(&s.MetricsPublic, "TOPUP_METRICS_PUBLIC must be true or false, not %q")},
		{"TOPUP_SMTP_URL", func(v string) error {
			if _, err := notify.ParseSMTPURL(v); err != nil {
				return err
			}
			s.SMTPURL = v
			return nil
		}},
		{"TOPUP_WEBHOOK_RETRY_BASE", duration(&s.WebhookRetryBase, "TOPUP_WEBHOOK_RETRY_BASE must be a Go duration such as 30s, not %q", true)},
		{"TOPUP_WEBHOOKS_ALLOW_PRIVATE", boolean(&s.WebhooksAllowPrivate, "TOPUP_WEBHOOKS_ALLOW_PRIVATE must be true or false, not %q")},
		{"TOPUP_TRUSTED_PROXIES", func(v string) (err error) {
			s.TrustedProxies, err = authlimit.ParseTrusted(v)
			return err
		}},
		{"TOPUP_PAID_CREDIT_EXPIRY", duration(&s.PaidCreditExpiry, "TOPUP_PAID_CREDIT_EXPIRY must be a Go duration such as 8760h, not %q", false)},
		{"TOPUP_BUSINESS_NAME", text(&s.Business.Name, "TOPUP_BUSINESS_NAME", 200)},
		{"TOPUP_BUSINESS_ADDRESS", text(&s.Business.Address, "TOPUP_BUSINESS_ADDRESS", 1000)},
		{"TOPUP_BUSINESS_TAX_ID", text(&s.Business.TaxID, "TOPUP_BUSINESS_TAX_ID", 100)},
		{"TOPUP_COMMIT_WORKERS", func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 64 {
				return fmt.Errorf("TOPUP_COMMIT_WORKERS must be a whole number from 1 to 64, not %q", v)
			}
			s.CommitWorkers = n
			return nil
		}},
		{"TOPUP_EXPIRY_INTERVAL", func(v string) error {
			// Expiry is noticed within one minute of expires_at.
			err := duration(&s.ExpiryInterval, "TOPUP_EXPIRY_INTERVAL must be a Go duration from 1s to 1m, such as 30s, not %q", true)(v)
			if err == nil && (s.ExpiryInterval < time.Second || s.ExpiryInterval > time.Minute) {
				err = fmt.Errorf("TOPUP_EXPIRY_INTERVAL must be a Go duration from 1s to 1m, such as 30s, not %q", v)
			}
			return err
		}},
		{"TOPUP_IDEMPOTENCY_RETENTION", func(v string) error {
			// A client retrying a usage call within a day must still be
			// answered by a replay, never debited twice.
			const msg = "TOPUP_IDEMPOTENCY_RETENTION must be a Go duration of at least 24h, such as 720h (30 days), not %q"
			err := duration(&s.IdempotencyRetention, msg, true)(v)
			if err == nil && s.IdempotencyRetention < retention.MinRetention {
				err = fmt.Errorf(msg, v)
			}
			return err
		}},
	}
}

// text reads a text printed on documents (receipts) into dst: valid UTF-8
// of at most limit characters, without control characters other than
// newlines.
func text(dst *string, name string, limit int) func(string) error {
	return func(v string) error {
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > limit ||
			strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) {
			return fmt.Errorf("%s must be text of at most %d characters without control characters, not %q", name, limit, v)
		}
		*dst = strings.TrimSpace(v)
		return nil
	}
}

// duration reads a Go duration into dst: not negative, and above zero
// when positive is set; otherwise the error is format with the value.
func duration(dst *time.Duration, format string, positive bool) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (positive && d == 0) {
			return fmt.Errorf(format, v)
		}
		*dst = d
		return nil
	}
}

// amount reads an amount above zero into dst.
func amount(dst *money.Amount, format string) func(string) error {
	return func(v string) error {
		a, err := money.Parse(v)
		if err != nil || a <= 0 {
			return fmt.Errorf(format, v)
		}
		*dst = a
		return nil
	}
}

// boolean reads true or false (as strconv.ParseBool spells them) into dst.
func boolean(dst *bool, format string) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf(format, v)
		}
		*dst = b
		return nil
	}
}

// parseBytes reads a positive size in bytes, with an optional KiB, MiB or
// GiB suffix.
func parseBytes(v string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			v, mult = n, m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("not a size: %q", v)
	}
	return n * mult, nil
}
