package app

import (
	"testing"

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
