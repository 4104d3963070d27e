package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
)

const apiKeyCols = `id, account_id, name, prefix, key_hash, created_at, last_used_at`

func scanAPIKey(r rowScanner) (ledger.APIKey, error) {
	var k ledger.APIKey
	var created, used int64
	if err := r.Scan(&k.ID, &k.AccountID, &k.Name, &k.Prefix, &k.Hash, &created, &used); err != nil {
		return k, err
	}
	k.CreatedAt = fromMicros(created)
	if used != 0 {
		k.LastUsedAt = fromMicros(used)
	}
	return k, nil
}

func insertAPIKey(ctx context.Context, tx *sql.Tx, k ledger.APIKey) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.AccountID, k.Name, k.Prefix, k.Hash, micros(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

// KeyByHash returns the account and the key whose hash is hash. It reads
// the database every time: a revoked key is refused at once everywhere.
func (s *Ledger) KeyByHash(ctx context.Context, hash string) (ledger.Account, ledger.APIKey, error) {
	var k ledger.APIKey
	var created, used int64
	row := s.read.QueryRowContext(ctx, `SELECT k.id, k.name, k.prefix, k.key_hash, k.created_at, k.last_used_at, `+
		`a.id, a.email, a.currency, a.balance, a.status, a.created_at FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = $1`, hash)
	a, err := scanAccount(leadingScanner{row, []any{&k.ID, &k.Name, &k.Prefix, &k.Hash, &created, &used}})
	if errors.Is(err, sql.ErrNoRows) {
		return a, k, apperr.NotFoundf("no account has this key")
	}
	if err != nil {
		return a, k, fmt.Errorf("read api key: %w", err)
	}
	k.AccountID, k.CreatedAt = a.ID, fromMicros(created)
	if used != 0 {
		k.LastUsedAt = fromMicros(used)
	}
	return a, k, nil
}

// leadingScanner scans a row whose first columns go to lead and the rest to
// the destinations Scan is given, so one join can feed scanAccount.
type leadingScanner struct {
	r    rowScanner
	lead []any
}

func (l leadingScanner) Scan(dest ...any) error { return l.r.Scan(append(l.lead, dest...)...) }

// CreateAPIKey adds k to its account. The account row is locked and its
// keys counted in the same transaction, so concurrent requests cannot take
// an account past ledger.MaxAPIKeys.
func (s *Ledger) CreateAPIKey(ctx context.Context, k ledger.APIKey) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		a, err := scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = $1`+s.dialect.RowLock, k.AccountID))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("account", k.AccountID)
		}
		if err != nil {
			return err
		}
		var n int
		// At most MaxAPIKeys rows: revoked keys are deleted.
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE account_id = $1`, k.AccountID).Scan(&n); err != nil {
			return fmt.Errorf("count api keys: %w", err)
		}
		if err := ledger.CanAddKey(a, n); err != nil {
			return err
		}
		return insertAPIKey(ctx, tx, k)
	})
}

// APIKeys lists an account's keys, newest first.
func (s *Ledger) APIKeys(ctx context.Context, accountID string, p ledger.Page) ([]ledger.APIKey, bool, error) {
	return pageRows(ctx, s.core, keyset{sel: `SELECT ` + apiKeyCols + ` FROM api_keys`, id: "id", where: "account_id = $1",
		args: []any{accountID}, what: "api key"}, p, scanAPIKey)
}

// RevokeAPIKey deletes the account's key keyID.
func (s *Ledger) RevokeAPIKey(ctx context.Context, accountID, keyID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE id = $1 AND account_id = $2`, keyID, accountID)
		if err != nil {
			return fmt.Errorf("revoke api key: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound("api key", keyID)
		}
		return nil
	})
}

// TouchAPIKey records that the key was used at t; a later time already
// recorded (by another replica) is kept.
func (s *Ledger) TouchAPIKey(ctx context.Context, keyID string, t time.Time) error {
	_, err := s.exec(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1`, micros(t), keyID)
	if err != nil {
		return fmt.Errorf("touch api key %s: %w", keyID, err)
	}
	return nil
}
