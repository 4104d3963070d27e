package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/mail"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/money"
)

// Key prefixes make a leaked key recognisable for what it is.
const (
	AccountKeyPrefix = "tpk_"
	AdminKeyPrefix   = "tpa_"
)

// NewKey returns a fresh random API key: 256 bits, URL-safe, after prefix.
func NewKey(prefix string) string {
	var b [32]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashKey returns the stored form of an API key: hex SHA-256. Keys carry 256
// random bits, so a plain hash is enough; no key is stored readable.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// ValidEmail refuses what is not a plain e-mail address, naming "email".
func ValidEmail(v string) error {
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Address != v || len(v) > 254 {
		return apperr.Invalidf("email", "must be an e-mail address such as ada@example.com")
	}
	return nil
}

// NewAccount validates and creates an account and returns it with its API
// key, which exists readable only in this return value.
func NewAccount(ctx context.Context, store Store, gen *ids.Generator, c clock.Clock, email, currency string) (Account, string, error) {
	if err := ValidEmail(email); err != nil {
		return Account{}, "", err
	}
	cur, err := money.LookupCurrency(currency)
	if err != nil {
		return Account{}, "", apperr.Invalidf("currency", "unknown currency %q", currency)
	}
	a := Account{ID: gen.New(ids.Account), Email: email, Currency: cur, Status: Active, CreatedAt: c.Now()}
	key := NewKey(AccountKeyPrefix)
	if err := store.CreateAccount(ctx, a, DefaultKey(a, HashKey(key), KeyPrefix(key))); err != nil {
		return Account{}, "", err
	}
	return a, key, nil
}
