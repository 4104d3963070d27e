package authlimit

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
)

var start = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestTwentyFailuresWithinTenSecondsBlock(t *testing.T) {
	t.Parallel()
	c := clock.NewManual(start)
	l := New(Config{Clock: c})
	addr := netip.MustParseAddr("203.0.113.7")
	for i := range 20 {
		if _, blocked := l.Blocked(addr); blocked {
			t.Fatalf("blocked after %d failures; want 20 allowed", i)
		}
		l.Fail(addr)
		c.Advance(100 * time.Millisecond)
	}
	// The first failure was at start, the 20th at start+1.9s; now is start+2s.
	wait, blocked := l.Blocked(addr)
	if !blocked || wait != 8*time.Second {
		t.Fatalf("after 20 failures in 2s: blocked=%v wait=%v; want blocked for 8s", blocked, wait)
	}
	if got := RetryAfter(wait); got != "8" {
		t.Errorf("Retry-After = %q, want 8", got)
	}
	if _, blocked := l.Blocked(netip.MustParseAddr("203.0.113.8")); blocked {
		t.Error("another address is blocked too")
	}
	// Once the first failure leaves the window, only 19 remain in it.
	c.Advance(wait - time.Millisecond)
	if _, blocked := l.Blocked(addr); !blocked {
		t.Error("unblocked 1ms before the first failure left the window")
	}
	c.Advance(time.Millisecond)
	if _, blocked := l.Blocked(addr); blocked {
		t.Error("still blocked after the first failure left the window")
	}
	// One more failure makes 20 within the window again.
	l.Fail(addr)
	if wait, blocked := l.Blocked(addr); !blocked || wait != 100*time.Millisecond {
		t.Errorf("a 21st failure: blocked=%v wait=%v; want blocked 100ms (until the 2nd failure leaves)", blocked, wait)
	}
	if got := RetryAfter(100 * time.Millisecond); got != "1" {
		t.Errorf("Retry-After for 100ms = %q, want 1", got)
	}
}

func TestSlowFailuresNeverBlock(t *testing.T) {
	t.Parallel()
	c := clock.NewManual(start)
	l := New(Config{Clock: c})
	addr := netip.MustParseAddr("198.51.100.1")
	for i := range 100 {
		l.Fail(addr)
		c.Advance(600 * time.Millisecond) // 17 per 10 s
		if _, blocked := l.Blocked(addr); blocked {
			t.Fatalf("blocked after %d failures at 17 per 10s", i+1)
		}
	}
}

func TestIPv6CountedPerSlash64(t *testing.T) {
	t.Parallel()
	l := New(Config{Clock: clock.NewManual(start)})
	for i := range 20 {
		l.Fail(netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1)))
	}
	if _, blocked := l.Blocked(netip.MustParseAddr("2001:db8:1:2:ffff::1")); !blocked {
		t.Error("20 failures from one /64 did not block it")
	}
	if _, blocked := l.Blocked(netip.MustParseAddr("2001:db8:1:3::1")); blocked {
		t.Error("the neighbouring /64 is blocked too")
	}
}

// TestMemoryBound: a flood of distinct addresses keeps at most MaxAddresses,
// and an address failing right now is still limited.
func TestMemoryBound(t *testing.T) {
	t.Parallel()
	c := clock.NewManual(start)
	l := New(Config{Clock: c, MaxAddresses: 1000})
	for i := range 100_000 {
		l.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		if i%1000 == 0 {
			c.Advance(time.Millisecond)
		}
	}
	if n := l.Len(); n > 1000 {
		t.Fatalf("remembers %d addresses after a flood; want at most 1000", n)
	}
	attacker := netip.MustParseAddr("192.0.2.1")
	for range 20 {
		l.Fail(attacker)
	}
	if _, blocked := l.Blocked(attacker); !blocked {
		t.Error("an address with 20 failures just now is not blocked while the map is full")
	}
	// Addresses whose failures left the window make room first.
	c.Advance(time.Minute)
	l.Fail(netip.MustParseAddr("192.0.2.2"))
	if n := l.Len(); n != 1 {
		t.Errorf("after the window passed, remembers %d addresses; want only the new one", n)
	}
}

func TestOff(t *testing.T) {
	t.Parallel()
	l := New(Config{Failures: -1})
	addr := netip.MustParseAddr("192.0.2.1")
	for range 100 {
		l.Fail(addr)
	}
	if _, blocked := l.Blocked(addr); blocked {
		t.Error("a limiter with Failures < 0 blocked")
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrusted("10.0.0.0/8, 192.0.2.10,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"untrusted connection's X-Forwarded-For is ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted proxy", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a forged left-most hop is skipped", "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are skipped", "192.0.2.10:4000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several headers are one list", "10.1.2.3:4000", []string{"1.1.1.1", "198.51.100.1, 10.0.0.1"}, "198.51.100.1"},
		{"all hops trusted: the left-most", "10.1.2.3:4000", []string{"10.0.0.9, 10.0.0.8"}, "10.0.0.9"},
		{"no header: the proxy", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"garbage stops at the last trusted hop", "10.1.2.3:4000", []string{"198.51.100.1, nonsense, 10.0.0.7"}, "10.0.0.7"},
		{"IPv6 proxy", "[2001:db8::1]:4000", []string{"2001:db9::5"}, "2001:db9::5"},
		{"hop with a port", "10.1.2.3:4000", []string{"198.51.100.1:5555"}, "198.51.100.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientAddr(r, trusted); got != netip.MustParseAddr(tt.want) {
				t.Errorf("ClientAddr = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTrusted(t *testing.T) {
	t.Parallel()
	if _, err := ParseTrusted("10.0.0.0/8,not-an-ip"); err == nil {
		t.Error("ParseTrusted accepted not-an-ip")
	}
	if p, err := ParseTrusted(""); err != nil || len(p) != 0 {
		t.Errorf("ParseTrusted(\"\") = %v, %v; want nothing", p, err)
	}
}
