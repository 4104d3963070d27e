package ids

import (
	"crypto/rand"
	"encoding/base32"
	"io"
)

// SecretBytes is how many random bytes a secret carries: 256 bits, well
// above the 128 a secret in a URL or a cookie must hold.
const SecretBytes = 32

// secretEncoding spells secrets in lower-case letters and digits only, so a
// secret is safe in a path, a query, a cookie and after a separator such as
// "_secret_" alike.
var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Secret returns prefix followed by SecretBytes fresh bytes from
// crypto/rand: for every token a URL or a cookie carries (sign-in links,
// console sessions and their CSRF tokens, 3-D Secure action tokens, hosted
// setup sessions, webhook signing secrets). Unlike an id, a secret shares
// nothing with the secrets minted before it: ids from one millisecond share
// their top random bits, which is fine for a name and fatal for a secret.
func Secret(prefix string) string {
	return secretFrom(rand.Reader, prefix)
}

// Secret returns a secret as the package's Secret does, except that a
// seeded generator (NewSeeded) reads its own seeded stream, so that a
// simulation replays with the same secrets.
func (g *Generator) Secret(prefix string) string {
	if g.secrets == nil {
		return Secret(prefix)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return secretFrom(g.secrets, prefix)
}

// DecodeSecret returns the random bytes of a secret minted with prefix, and
// false for anything else. Tests use it to check what secrets carry.
func DecodeSecret(prefix, secret string) ([]byte, bool) {
	if len(secret) < len(prefix) || secret[:len(prefix)] != prefix {
		return nil, false
	}
	b, err := secretEncoding.DecodeString(secret[len(prefix):])
	return b, err == nil
}

func secretFrom(r io.Reader, prefix string) string {
	var b [SecretBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		// crypto/rand does not fail on the systems Go supports; minting a
		// guessable secret instead is not an option.
		panic("ids: no randomness for a secret: " + err.Error())
	}
	return prefix + secretEncoding.EncodeToString(b[:])
}

// RandomBytes returns n fresh bytes from crypto/rand, or from the seeded
// stream of a seeded generator (NewSeeded), for keys that are not spelled
// as Secret spells them (a webhook signing key, whsec_ + standard base64).
func (g *Generator) RandomBytes(n int) []byte {
	b := make([]byte, n)
	r := io.Reader(rand.Reader)
	if g.secrets != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		r = g.secrets
	}
	if _, err := io.ReadFull(r, b); err != nil {
		panic("ids: no randomness for a key: " + err.Error())
	}
	return b
}
