package ledger

import (
	"context"
	"strings"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
)

// Limits on an account's API keys (PRODUCT.md "API keys", "Conventions").
const (
	// KeyPrefixLen is how many leading characters of a key are kept readable,
	// so that a person can tell their keys apart.
	KeyPrefixLen = 12
	// DefaultKeyName names the key made with the account.
	DefaultKeyName = "default"
	// keyIDPrefix starts every key id (key_…).
	keyIDPrefix = "key"
)

// APIKey is one of an account's keys as Topup keeps it: the hash of the
// key, never the key itself, and its first KeyPrefixLen characters.
type APIKey struct {
	ID        string
	AccountID string
	Name      string
	// Prefix is the key's first KeyPrefixLen characters; keys made before
	// keys were listed keep only "tpk_", since no one kept more of them.
	Prefix string
	// Hash is HashKey of the key.
	Hash      string
	CreatedAt time.Time
	// LastUsedAt is when a request last authenticated with it (to the
	// minute: it is written at most once a minute); zero when never.
	LastUsedAt time.Time
}

// KeyPrefix returns the readable start of key that the list shows.
func KeyPrefix(key string) string {
	if len(key) > KeyPrefixLen {
		return key[:KeyPrefixLen]
	}
	return key
}

// DefaultKey returns the record of the key made with account a, whose hash
// and prefix are given: it is named "default", created with the account, and
// its id carries the account's so that it sorts before every later key.
// Migration 0007 names the keys of existing accounts the same way.
func DefaultKey(a Account, hash, prefix string) APIKey {
	suffix, _ := strings.CutPrefix(a.ID, ids.Account+"_")
	return APIKey{ID: keyIDPrefix + "_" + suffix, AccountID: a.ID, Name: DefaultKeyName, Prefix: prefix, Hash: hash, CreatedAt: a.CreatedAt}
}

// NewAPIKey returns a fresh key for the account named name, and the key
// itself, which exists readable only in this return value. name must have
// passed the edge's text rules (input.Text, input.MaxName).
func NewAPIKey(gen *ids.Generator, c clock.Clock, accountID, name string) (APIKey, string) {
	key := NewKey(AccountKeyPrefix)
	return APIKey{ID: gen.New(keyIDPrefix), AccountID: accountID, Name: name, Prefix: KeyPrefix(key), Hash: HashKey(key),
		CreatedAt: c.Now().Truncate(time.Microsecond)}, key
}

// CanAddKey says whether account a, holding active keys now, may get one
// more: the closed-account rule (Account.May) and the per-account limit
// (CheckLimit, MaxAPIKeys). Stores call it inside the transaction that
// inserts the key.
func CanAddKey(a Account, active int) error {
	if err := a.May(ActCreateKey); err != nil {
		return err
	}
	return CheckLimit("API keys", active, MaxAPIKeys)
}

// KeyStore keeps accounts' API keys. Revoking deletes the key, and
// KeyByHash reads the database on every call, so that a revoked key stops
// working at once on every replica.
type KeyStore interface {
	// KeyByHash returns the account and the key whose hash is hash; NotFound
	// when no account holds such a key (never made, or revoked).
	KeyByHash(ctx context.Context, hash string) (Account, APIKey, error)
	// CreateAPIKey adds k to its account, checking CanAddKey in the same
	// transaction: NotFound for an unknown account, AccountClosed,
	// LimitExceeded.
	CreateAPIKey(ctx context.Context, k APIKey) error
	// APIKeys lists an account's keys, newest first; Invalid for an unknown
	// cursor.
	APIKeys(ctx context.Context, accountID string, p Page) ([]APIKey, bool, error)
	// RevokeAPIKey deletes the account's key keyID; NotFound when the
	// account holds no such key.
	RevokeAPIKey(ctx context.Context, accountID, keyID string) error
	// TouchAPIKey records that the key was used at t (never moving it back).
	TouchAPIKey(ctx context.Context, keyID string, t time.Time) error
}
