// Package ids mints the public identifiers of Topup objects: a short type
// prefix and a ULID, so ids sort by creation time and say what they name
// (acct_…, ent_…, tu_…), as Stripe's do.
package ids

import (
	"crypto/rand"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/topup/topup/internal/clock"
)

// Prefixes of the objects Topup names.
const (
	Account = "acct"
	Entry   = "ent"
	TopUp   = "tu"
	Request = "req"
)

// Generator mints ids. It is safe for concurrent use and monotonic within
// one process: ids minted later sort after earlier ones.
type Generator struct {
	clock   clock.Clock
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
	// secrets is the seeded stream of a simulation's secrets; nil reads
	// crypto/rand.
	secrets io.Reader
}

// New returns a generator reading crypto/rand.
func New(c clock.Clock) *Generator {
	return &Generator{clock: c, entropy: ulid.Monotonic(rand.Reader, 0)}
}

// NewSeeded returns a deterministic generator, for the simulator: the same
// seed and clock give the same ids.
func NewSeeded(c clock.Clock, seed uint64) *Generator {
	var r io.Reader = mrand.NewChaCha8(seedBytes(seed))
	secrets := mrand.NewChaCha8(seedBytes(^seed))
	return &Generator{clock: c, entropy: ulid.Monotonic(r, 0), secrets: secrets}
}

func seedBytes(seed uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	return b
}

// New returns a fresh id with prefix, such as "ent_01j9…".
func (g *Generator) New(prefix string) string {
	g.mu.Lock()
	id, err := ulid.New(ulid.Timestamp(g.clock.Now()), g.entropy)
	g.mu.Unlock()
	if err != nil {
		// Only a monotonic overflow within one millisecond (2^80 ids) or a
		// failing entropy source gets here; neither can be handled.
		panic("ids: " + err.Error())
	}
	s := id.String()
	b := make([]byte, 0, len(prefix)+1+len(s))
	b = append(b, prefix...)
	b = append(b, '_')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

// Time returns when id was minted, read back from its ULID (to the
// millisecond), so that a lookup at a provider can start from the moment an
// object was created. ok is false for a string that is not an id minted
// here.
func Time(id string) (t time.Time, ok bool) {
	_, raw, found := strings.Cut(id, "_")
	if !found {
		return time.Time{}, false
	}
	u, err := ulid.ParseStrict(strings.ToUpper(raw))
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(u.Time()).UTC(), true
}
