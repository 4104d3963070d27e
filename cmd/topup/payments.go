package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/authlimit"
	"github.com/topup/topup/internal/httpapi"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/stripe"
)

// settings are the operator's environment, read once at start.
type settings struct {
	payments       string
	sandboxLatency time.Duration
	retryBackoff   time.Duration
	// workerLease is TOPUP_WORKER_LEASE: how long a worker's claim on a
	// top-up keeps other workers away, and so how soon a restarted process
	// resumes a top-up whose charge a killed one left in flight (zero: the
	// engine's default, 2m).
	workerLease time.Duration
	maxTarget   money.Amount
	// maxAmount is TOPUP_MAX_AMOUNT: the largest amount of one usage,
	// credit or top-up (zero: the API's default, 1,000,000.00).
	maxAmount money.Amount
	// maxBody is TOPUP_MAX_BODY in bytes (zero: the API's default, 16 MiB).
	maxBody int64
	// metricsPublic is TOPUP_METRICS_PUBLIC=true: /metrics needs no key.
	metricsPublic bool
	publicURL     string
	stripe        stripe.Config
	// smtpURL is TOPUP_SMTP_URL: where mail goes (empty: only recorded).
	smtpURL string
	// webhookRetryBase is TOPUP_WEBHOOK_RETRY_BASE: the first wait after a
	// failed webhook delivery, doubling (zero: the worker's default, 30s).
	webhookRetryBase time.Duration
	// webhooksAllowPrivate is TOPUP_WEBHOOKS_ALLOW_PRIVATE=true: webhook
	// endpoints may live on loopback and private addresses.
	webhooksAllowPrivate bool
	// trustedProxies is TOPUP_TRUSTED_PROXIES: connections from these
	// addresses have their client read from X-Forwarded-For.
	trustedProxies []netip.Prefix
}

func readSettings(payments string, getenv func(string) string) (settings, error) {
	s := settings{payments: payments, retryBackoff: time.Hour, maxTarget: 10_000 * money.MicrosPerUnit, publicURL: getenv("TOPUP_PUBLIC_URL")}
	var err error
	if v := getenv("TOPUP_SANDBOX_LATENCY"); v != "" {
		if s.sandboxLatency, err = time.ParseDuration(v); err != nil || s.sandboxLatency < 0 {
			return s, fmt.Errorf("TOPUP_SANDBOX_LATENCY must be a Go duration such as 200ms, not %q", v)
		}
	}
	if v := getenv("TOPUP_RETRY_BACKOFF"); v != "" {
		if s.retryBackoff, err = time.ParseDuration(v); err != nil || s.retryBackoff < 0 {
			return s, fmt.Errorf("TOPUP_RETRY_BACKOFF must be a Go duration such as 1h, not %q", v)
		}
	}
	if v := getenv("TOPUP_WORKER_LEASE"); v != "" {
		// A pass of the worker ends with its lease, so a lease no longer
		// than a sandbox charge would cut every charge short.
		if s.workerLease, err = time.ParseDuration(v); err != nil || s.workerLease <= 0 || s.workerLease <= s.sandboxLatency {
			return s, fmt.Errorf("TOPUP_WORKER_LEASE must be a Go duration such as 2m, longer than TOPUP_SANDBOX_LATENCY, not %q", v)
		}
	}
	if v := getenv("TOPUP_MAX_TARGET"); v != "" {
		if s.maxTarget, err = money.Parse(v); err != nil || s.maxTarget <= 0 {
			return s, fmt.Errorf("TOPUP_MAX_TARGET must be an amount such as 10000.00, not %q", v)
		}
	}
	if v := getenv("TOPUP_MAX_AMOUNT"); v != "" {
		if s.maxAmount, err = money.Parse(v); err != nil || s.maxAmount <= 0 {
			return s, fmt.Errorf("TOPUP_MAX_AMOUNT must be an amount such as 1000000.00, not %q", v)
		}
	}
	if v := getenv("TOPUP_MAX_BODY"); v != "" {
		if s.maxBody, err = parseBytes(v); err != nil {
			return s, fmt.Errorf("TOPUP_MAX_BODY must be a size such as 16MiB or 16777216, not %q", v)
		}
	}
	if v := getenv("TOPUP_METRICS_PUBLIC"); v != "" {
		if s.metricsPublic, err = strconv.ParseBool(v); err != nil {
			return s, fmt.Errorf("TOPUP_METRICS_PUBLIC must be true or false, not %q", v)
		}
	}
	if v := getenv("TOPUP_SMTP_URL"); v != "" {
		if _, err := notify.ParseSMTPURL(v); err != nil {
			return s, err
		}
		s.smtpURL = v
	}
	if v := getenv("TOPUP_WEBHOOK_RETRY_BASE"); v != "" {
		if s.webhookRetryBase, err = time.ParseDuration(v); err != nil || s.webhookRetryBase <= 0 {
			return s, fmt.Errorf("TOPUP_WEBHOOK_RETRY_BASE must be a Go duration such as 30s, not %q", v)
		}
	}
	if v := getenv("TOPUP_WEBHOOKS_ALLOW_PRIVATE"); v != "" {
		if s.webhooksAllowPrivate, err = strconv.ParseBool(v); err != nil {
			return s, fmt.Errorf("TOPUP_WEBHOOKS_ALLOW_PRIVATE must be true or false, not %q", v)
		}
	}
	if v := getenv("TOPUP_TRUSTED_PROXIES"); v != "" {
		if s.trustedProxies, err = authlimit.ParseTrusted(v); err != nil {
			return s, err
		}
	}
	if payments == "stripe" {
		s.stripe = stripe.Config{SecretKey: getenv("STRIPE_SECRET_KEY"), WebhookSecret: getenv("STRIPE_WEBHOOK_SECRET"),
			APIBase: getenv("STRIPE_API_BASE"), Publishable: getenv("STRIPE_PUBLISHABLE_KEY")}
		if s.stripe.SecretKey == "" {
			return s, fmt.Errorf("--payments stripe needs STRIPE_SECRET_KEY")
		}
	} else if payments != "sandbox" {
		return s, fmt.Errorf("--payments must be sandbox or stripe, not %q", payments)
	}
	return s, nil
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

// sandboxPages adapts the sandbox provider to the API's hosted pages and
// charge log.
type sandboxPages struct{ p *sandbox.Provider }

func (s sandboxPages) CardChoices() []httpapi.CardChoice {
	var out []httpapi.CardChoice
	for _, c := range sandbox.CardOptions() {
		out = append(out, httpapi.CardChoice{Token: c.Token, Label: c.Label})
	}
	return out
}

func (s sandboxPages) ChooseCard(ctx context.Context, sessionID, token string) (string, error) {
	return s.p.ChooseCard(ctx, sessionID, token)
}

func (s sandboxPages) Authenticate(ctx context.Context, chargeID string, ok bool) (payment.Charge, error) {
	return s.p.Authenticate(ctx, chargeID, ok)
}

func (s sandboxPages) ChargeLog(ctx context.Context, limit int, startingAfter string) ([]httpapi.SandboxCharge, bool, error) {
	charges, more, err := s.p.Charges(ctx, limit, startingAfter)
	out := make([]httpapi.SandboxCharge, 0, len(charges))
	for _, c := range charges {
		out = append(out, httpapi.SandboxCharge{ID: c.ID, IdempotencyKey: c.IdempotencyKey, TopUpID: c.TopUpID, Amount: c.Amount,
			Currency: c.Currency, Status: string(c.Status), CreatedAt: c.CreatedAt})
	}
	return out, more, err
}
