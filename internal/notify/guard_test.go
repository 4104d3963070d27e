package notify

import (
	"context"
	"errors"
	"testing"

	"github.com/topup/topup/internal/apperr"
)

// TestGuardRefusesEmbeddedIPv4 checks the IPv6 forms that carry an IPv4
// address inside (IPv4-compatible, IPv4-mapped, IPv4-translated, NAT64,
// 6to4, Teredo): each is refused at registration with 400 on url, and again
// when the worker connects.
func TestGuardRefusesEmbeddedIPv4(t *testing.T) {
	t.Parallel()
	for _, host := range []string{
		"::127.0.0.1",                          // IPv4-compatible loopback
		"::7f00:1",                             // the same, written in hex
		"::10.0.0.1",                           // IPv4-compatible private
		"::169.254.169.254",                    // IPv4-compatible cloud metadata
		"::ffff:127.0.0.1",                     // IPv4-mapped loopback
		"::ffff:7f00:1",                        // the same, in hex
		"::ffff:0:127.0.0.1",                   // IPv4-translated
		"64:ff9b::7f00:1",                      // NAT64 of 127.0.0.1
		"64:ff9b::a00:1",                       // NAT64 of 10.0.0.1
		"64:ff9b:1::a00:1",                     // local-use NAT64
		"2002:7f00:1::1",                       // 6to4 of 127.0.0.1
		"2002:c0a8:1::1",                       // 6to4 of 192.168.0.1
		"2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo
	} {
		url := "http://[" + host + "]/hook"
		_, err := CheckURL(context.Background(), url, false, nil)
		if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != "url" {
			t.Errorf("CheckURL(%q) = %v; want invalid on url", url, err)
		}
		if err := dialControl(false)("tcp6", "["+host+"]:80", nil); !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("dial [%s]:80 = %v; want ErrPrivateAddress", host, err)
		}
	}
	// A public IPv6 address is still taken.
	if _, err := CheckURL(context.Background(), "http://[2606:4700::6810:84e5]/hook", false, nil); err != nil {
		t.Errorf("public IPv6: %v", err)
	}
}
