package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/topup/topup/internal/app"
)

// TestTrustedProxiesSetting: TOPUP_TRUSTED_PROXIES reaches the API as
// prefixes, and a value that is no address stops serve, naming it.
func TestTrustedProxiesSetting(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TOPUP_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"}
	s, err := app.ReadSettings("sandbox", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	if len(s.TrustedProxies) != 2 || s.TrustedProxies[0] != want[0] || s.TrustedProxies[1] != want[1] {
		t.Errorf("trusted proxies = %v, want %v", s.TrustedProxies, want)
	}
	_, err = runCmd(t, testEnv{"TOPUP_TRUSTED_PROXIES": "proxy.internal"}, "serve", "--addr", "127.0.0.1:0", "--db", tempDB(t))
	if err == nil || !strings.Contains(err.Error(), "TOPUP_TRUSTED_PROXIES") {
		t.Errorf("serve with TOPUP_TRUSTED_PROXIES=proxy.internal: %v, want an error naming it", err)
	}
}
