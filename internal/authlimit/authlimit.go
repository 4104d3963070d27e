// Package authlimit limits failed authentication per client address
// (PRODUCT.md "Conventions"): after Failures failures within Window from one
// address, requests from it that carry no valid key are refused until the
// oldest of those failures leaves the window. It keeps at most MaxAddresses
// addresses, so a flood of distinct addresses cannot grow its memory.
package authlimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/topup/topup/internal/clock"
)

// Defaults of the contract: 20 failures within 10 seconds.
const (
	DefaultFailures     = 20
	DefaultWindow       = 10 * time.Second
	DefaultMaxAddresses = 10_000
)

// Config tunes a Limiter; zero values take the defaults.
type Config struct {
	// Failures within Window that block an address; negative switches the
	// limit off.
	Failures int
	Window   time.Duration
	// MaxAddresses bounds the addresses remembered at once.
	MaxAddresses int
	Clock        clock.Clock
}

// Limiter counts failed authentications per address. It is safe for
// concurrent use; a nil *Limiter limits nothing.
type Limiter struct {
	cfg       Config
	mu        sync.Mutex
	addrs     map[netip.Addr]*record
	lastSweep time.Time
}

// record holds the times of an address's last Failures failures, as a ring.
type record struct {
	times []time.Time
	next  int // where the next failure goes; when full, the oldest
	full  bool
}

func (r *record) newest() time.Time {
	i := r.next - 1
	if i < 0 {
		i = len(r.times) - 1
	}
	return r.times[i]
}

// New returns a limiter; nil when cfg.Failures is negative.
func New(cfg Config) *Limiter {
	if cfg.Failures < 0 {
		return nil
	}
	if cfg.Failures == 0 {
		cfg.Failures = DefaultFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = DefaultMaxAddresses
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	return &Limiter{cfg: cfg, addrs: make(map[netip.Addr]*record)}
}

// key is what an address is counted under: IPv6 addresses by their /64,
// since one host commonly holds a whole /64.
func key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Blocked says whether addr has failed Failures times within the window,
// and if so how long until it may try again.
func (l *Limiter) Blocked(addr netip.Addr) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.addrs[key(addr)]
	if !ok || !r.full {
		return 0, false
	}
	// The oldest of the last Failures failures decides: once it leaves the
	// window, fewer than Failures remain in it.
	until := r.times[r.next].Add(l.cfg.Window)
	if !now.Before(until) {
		return 0, false
	}
	return until.Sub(now), true
}

// Fail records a failed authentication from addr.
func (l *Limiter) Fail(addr netip.Addr) {
	if l == nil {
		return
	}
	now := l.cfg.Clock.Now()
	k := key(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.addrs[k]
	if !ok {
		if len(l.addrs) >= l.cfg.MaxAddresses {
			l.makeRoom(now)
		}
		r = &record{times: make([]time.Time, l.cfg.Failures)}
		l.addrs[k] = r
	}
	r.times[r.next] = now
	r.next++
	if r.next == len(r.times) {
		r.next, r.full = 0, true
	}
}

// makeRoom forgets addresses whose last failure left the window (at most
// once a second, as it reads them all) and, if none did, an arbitrary one:
// under a flood of distinct addresses an address may be forgotten early,
// which only ever lets it try again sooner.
func (l *Limiter) makeRoom(now time.Time) {
	if now.Sub(l.lastSweep) >= time.Second {
		l.lastSweep = now
		for a, r := range l.addrs {
			if !now.Before(r.newest().Add(l.cfg.Window)) {
				delete(l.addrs, a)
			}
		}
	}
	for a := range l.addrs {
		if len(l.addrs) < l.cfg.MaxAddresses {
			break
		}
		delete(l.addrs, a)
	}
}

// Len returns how many addresses the limiter remembers.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// RetryAfter renders a wait as the Retry-After header's whole seconds,
// rounded up and at least 1.
func RetryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return fmt.Sprint(max(s, 1))
}

// ParseTrusted reads TOPUP_TRUSTED_PROXIES: comma-separated IP addresses
// and CIDR prefixes.
func ParseTrusted(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("TOPUP_TRUSTED_PROXIES: %q is not an IP address or CIDR prefix", f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("TOPUP_TRUSTED_PROXIES: %q is not an IP address or CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func trustedAddr(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost reads "1.2.3.4", "1.2.3.4:5", "::1" or "[::1]:5".
func parseHost(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// ClientAddr returns the address a request is counted under: the
// connection's, or, when the connection comes from a trusted proxy, the
// right-most address of X-Forwarded-For that is not itself a trusted proxy
// (every address left of it could have been written by the client). The
// zero Addr means the connection's address could not be read.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr, ok := parseHost(r.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !trustedAddr(addr, trusted) {
		return addr
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHost(hops[i])
		if !ok {
			// A hop we cannot read was written by someone we do not
			// trust: the last trusted hop is the client we know.
			return addr
		}
		addr = hop
		if !trustedAddr(hop, trusted) {
			return hop
		}
	}
	return addr
}
