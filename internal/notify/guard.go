package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/topup/topup/internal/apperr"
)

// ErrPrivateAddress is returned for a webhook endpoint on a loopback,
// private, link-local or otherwise non-public address, unless the
// operator allows them (TOPUP_WEBHOOKS_ALLOW_PRIVATE).
var ErrPrivateAddress = errors.New("notify: the address is not public")

// nonPublic are ranges beside those netip classifies that must never be a
// webhook's target: shared address space, benchmarking, documentation,
// reserved, and IPv6 translations that can embed a private IPv4 address.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "240.0.0.0/4",
		// IPv4-compatible (::a.b.c.d, deprecated; ::127.0.0.1 reaches
		// loopback on some stacks) and IPv4-translated (::ffff:0:a.b.c.d)
		// addresses, NAT64, 6to4 and Teredo embed an IPv4 address: none
		// is a webhook's target, whatever address it embeds.
		"::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32", "2001:db8::/32", "2002::/16", "fec0::/10"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Public reports whether ip is a public unicast address: not loopback,
// private (RFC 1918, fc00::/7), link-local (169.254/16, where cloud
// metadata lives, and fe80::/10), multicast, unspecified, or one of the
// special ranges above. IPv4-mapped IPv6 addresses are judged as IPv4.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// MaxURLLength is the longest webhook endpoint URL accepted.
const MaxURLLength = 2048

// CheckURL validates a webhook endpoint URL when it is registered and
// returns it in canonical form: http or https, a host, no user name or
// password, no fragment, and (unless allowPrivate) a host that resolves
// only to public addresses. Refusals name the field "url". Delivery checks
// the address again as it connects (see the worker's dialer), so a name
// that later resolves elsewhere is refused then.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, r *net.Resolver) (string, error) {
	if len(raw) > MaxURLLength {
		return "", apperr.Invalidf("url", "must be at most %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", apperr.Invalidf("url", "is not a URL: %v", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", apperr.Invalidf("url", "must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return "", apperr.Invalidf("url", "must name a host")
	case u.User != nil:
		return "", apperr.Invalidf("url", "must not carry a user name or password")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", apperr.Invalidf("url", "must not have a #fragment")
	}
	if allowPrivate {
		return u.String(), nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if !Public(ip) {
			return "", apperr.Invalidf("url", "%s is not a public address; webhook endpoints must be reachable on the internet", ip)
		}
		return u.String(), nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return "", apperr.Invalidf("url", "the host %s cannot be resolved", host)
	}
	for _, a := range addrs {
		if !Public(a) {
			return "", apperr.Invalidf("url", "%s resolves to %s, which is not a public address", host, a.Unmap())
		}
	}
	return u.String(), nil
}

// dialControl refuses, at connect time, any address that is not public:
// it sees the address actually dialed after DNS resolution, so a name that
// resolved to a public address at registration and to a private one now
// (DNS rebinding) is refused too.
func dialControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrPrivateAddress, address)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !Public(ip) {
			return fmt.Errorf("%w: %s", ErrPrivateAddress, host)
		}
		return nil
	}
}
