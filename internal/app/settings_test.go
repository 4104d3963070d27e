package app

import (
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/money"
)

// TestEdgeSettings: TOPUP_MAX_BODY, TOPUP_MAX_AMOUNT and
// TOPUP_METRICS_PUBLIC are read as the README says, and nonsense stops the
// start with the variable named.
func TestEdgeSettings(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	s, err := ReadSettings("sandbox", env(map[string]string{"TOPUP_MAX_BODY": "32MiB", "TOPUP_MAX_AMOUNT": "500.00", "TOPUP_METRICS_PUBLIC": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxBody != 32<<20 || s.MaxAmount != 500*money.MicrosPerUnit || !s.MetricsPublic {
		t.Errorf("settings = body %d, amount %d, metrics public %v; want 32 MiB, 500.00, true", s.MaxBody, s.MaxAmount, s.MetricsPublic)
	}
	if s, err := ReadSettings("sandbox", env(map[string]string{"TOPUP_MAX_BODY": "1048576"})); err != nil || s.MaxBody != 1<<20 {
		t.Errorf("TOPUP_MAX_BODY=1048576: %d, %v", s.MaxBody, err)
	}
	for k, v := range map[string]string{"TOPUP_MAX_BODY": "big", "TOPUP_MAX_AMOUNT": "-1", "TOPUP_METRICS_PUBLIC": "sometimes"} {
		if _, err := ReadSettings("sandbox", env(map[string]string{k: v})); err == nil {
			t.Errorf("%s=%s was accepted", k, v)
		}
	}
}

// TestSettingsRefuseNonsense: every variable with a value that makes no
// setting stops the start with the variable named, and a worker lease
// under a second (too short for its renewals) is refused.
func TestSettingsRefuseNonsense(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"TOPUP_SANDBOX_LATENCY": "-1s"},
		{"TOPUP_RETRY_BACKOFF": "soon"},
		{"TOPUP_WORKER_LEASE": "0s"},
		{"TOPUP_WORKER_LEASE": "500ms"},
		{"TOPUP_MAX_TARGET": "0"},
		{"TOPUP_MAX_AMOUNT": "lots"},
		{"TOPUP_MAX_BODY": "0"},
		{"TOPUP_METRICS_PUBLIC": "maybe"},
		{"TOPUP_SMTP_URL": "http://mail.example.com"},
		{"TOPUP_WEBHOOK_RETRY_BASE": "0s"},
		{"TOPUP_WEBHOOKS_ALLOW_PRIVATE": "sometimes"},
		{"TOPUP_TRUSTED_PROXIES": "proxy.internal"},
		{"TOPUP_PAID_CREDIT_EXPIRY": "a year"},
		{"TOPUP_PAID_CREDIT_EXPIRY": "-1h"},
		{"TOPUP_BUSINESS_NAME": "Acme\x00Ltd"},
		{"TOPUP_BUSINESS_ADDRESS": strings.Repeat("x", 1001)},
		{"TOPUP_BUSINESS_TAX_ID": "\xff"},
		{"TOPUP_EXPIRY_INTERVAL": "2m"},
		{"TOPUP_EXPIRY_INTERVAL": "10ms"},
		{"TOPUP_EXPIRY_INTERVAL": "often"},
		{"TOPUP_IDEMPOTENCY_RETENTION": "23h59m"},
		{"TOPUP_IDEMPOTENCY_RETENTION": "0s"},
		{"TOPUP_IDEMPOTENCY_RETENTION": "-720h"},
		{"TOPUP_IDEMPOTENCY_RETENTION": "30d"},
	} {
		_, err := ReadSettings("sandbox", func(k string) string { return env[k] })
		named := false
		for k := range env {
			named = named || (err != nil && strings.Contains(err.Error(), k))
		}
		if !named {
			t.Errorf("%v: %v, want an error naming the variable", env, err)
		}
	}
	s, err := ReadSettings("sandbox", func(k string) string {
		return map[string]string{"TOPUP_WORKER_LEASE": "1s", "TOPUP_SANDBOX_LATENCY": "3s", "TOPUP_WEBHOOK_RETRY_BASE": "50ms", "TOPUP_PAID_CREDIT_EXPIRY": "8760h",
			"TOPUP_EXPIRY_INTERVAL": "1m", "TOPUP_IDEMPOTENCY_RETENTION": "24h"}[k]
	})
	if err != nil || s.WorkerLease != time.Second || s.SandboxLatency != 3*time.Second || s.WebhookRetryBase != 50*time.Millisecond ||
		s.PaidCreditExpiry != 8760*time.Hour || s.ExpiryInterval != time.Minute || s.IdempotencyRetention != 24*time.Hour {
		t.Errorf("lease 1s under a 3s sandbox (renewed while charging): %+v, %v", s, err)
	}
	if d, err := ReadSettings("sandbox", func(string) string { return "" }); err != nil || d.IdempotencyRetention != 30*24*time.Hour {
		t.Errorf("usage keys kept %s by default (%v), want 30 days", d.IdempotencyRetention, err)
	}
	biz, err := ReadSettings("sandbox", func(k string) string {
		return map[string]string{"TOPUP_BUSINESS_NAME": " Acme Compute GmbH ", "TOPUP_BUSINESS_ADDRESS": `Hauptstraße 1\n10115 Berlin`, "TOPUP_BUSINESS_TAX_ID": "DE123456789"}[k]
	})
	if b := biz.Business; err != nil || b.Name != "Acme Compute GmbH" || b.Address != `Hauptstraße 1\n10115 Berlin` || b.TaxID != "DE123456789" {
		t.Errorf("the business settings: %+v, %v", b, err)
	}
	if _, err := ReadSettings("paypal", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--payments") {
		t.Errorf("--payments paypal: %v, want refused", err)
	}
	if _, err := ReadSettings("stripe", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "STRIPE_SECRET_KEY") {
		t.Errorf("--payments stripe without a key: %v, want refused", err)
	}
}
