package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

const accountCols = `id, email, currency, balance, status, created_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanAccount(r rowScanner) (ledger.Account, error) {
	var a ledger.Account
	var cur, status string
	var created int64
	if err := r.Scan(&a.ID, &a.Email, &cur, &a.Balance, &status, &created); err != nil {
		return a, err
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return a, fmt.Errorf("account %s: %w", a.ID, err)
	}
	a.Currency, a.Status, a.CreatedAt = c, ledger.Status(status), fromMicros(created)
	return a, nil
}

// CreateAccount inserts a new account and its first API key. The
// accounts.api_key_hash column is no longer read (migration 0007): it gets
// a unique value that is no credential.
func (s *Ledger) CreateAccount(ctx context.Context, a ledger.Account, key ledger.APIKey) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return insertAccount(ctx, tx, a, key) })
}

// insertAccount inserts a new account and its default key.
func insertAccount(ctx context.Context, tx *sql.Tx, a ledger.Account, key ledger.APIKey) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, email, currency, balance, last_seq, status, api_key_hash, created_at, updated_at)
VALUES ($1, $2, $3, 0, 0, $4, $5, $6, $6)`, a.ID, a.Email, a.Currency.Code, string(a.Status), "api_keys:"+a.ID, micros(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert account: %w", err)
	}
	key.AccountID = a.ID
	return insertAPIKey(ctx, tx, key)
}

// CreateAccounts stores new accounts, each with its default key
// (keys[i] for accounts[i]), in one transaction: for tools that make many
// at once (topup bench's million accounts), where a transaction each would
// cost a sync each.
func (s *Ledger) CreateAccounts(ctx context.Context, accounts []ledger.Account, keys []ledger.APIKey) error {
	if len(keys) != len(accounts) {
		return fmt.Errorf("create accounts: %d keys for %d accounts", len(keys), len(accounts))
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for i, a := range accounts {
			if err := insertAccount(ctx, tx, a, keys[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Account returns the account with id.
func (s *Ledger) Account(ctx context.Context, id string) (ledger.Account, error) {
	return s.account(ctx, id)
}

// account reads one account for any store that must name it first, with
// what its holds reserve now.
func (s *core) account(ctx context.Context, id string) (ledger.Account, error) {
	a, until, err := scanAccountHeld(s.read.QueryRowContext(ctx, `SELECT `+accountHeldCols+` FROM accounts WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, notFound("account", id)
	}
	if err != nil {
		return a, err
	}
	a.Held, err = s.heldAt(ctx, a.ID, a.Held, until, s.clock.Now())
	return a, err
}

// accountHeldCols are accountCols with the held credit of the row, read by
// scanAccountHeld.
const accountHeldCols = accountCols + `, held, held_until`

// scanAccountHeld reads an account with the held credit its row keeps,
// and held_until: heldAt tells what is held now.
func scanAccountHeld(r rowScanner) (ledger.Account, int64, error) {
	var held money.Amount
	var until int64
	a, err := scanAccount(trailingScanner{r, []any{&held, &until}})
	a.Held = held
	return a, until, err
}

// AccountByKeyHash returns the account holding the API key that hashes to
// keyHash (KeyByHash without the key).
func (s *Ledger) AccountByKeyHash(ctx context.Context, keyHash string) (ledger.Account, error) {
	a, _, err := s.KeyByHash(ctx, keyHash)
	return a, err
}

// Accounts lists accounts, newest first.
func (s *Ledger) Accounts(ctx context.Context, p ledger.Page) ([]ledger.Account, bool, error) {
	until := map[string]int64{}
	accts, more, err := pageRows(ctx, s.core, keyset{sel: `SELECT ` + accountHeldCols + ` FROM accounts`, id: "id", what: "account"}, p,
		func(r rowScanner) (ledger.Account, error) {
			a, u, err := scanAccountHeld(r)
			until[a.ID] = u
			return a, err
		})
	if err != nil {
		return nil, false, err
	}
	now := s.clock.Now()
	for i := range accts {
		if accts[i].Held, err = s.heldAt(ctx, accts[i].ID, accts[i].Held, until[accts[i].ID], now); err != nil {
			return nil, false, err
		}
	}
	return accts, more, nil
}

// UpdateAccount changes the e-mail and/or status of an account.
func (s *Ledger) UpdateAccount(ctx context.Context, id string, u ledger.AccountUpdate) (ledger.Account, error) {
	var out ledger.Account
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		a, until, err := scanAccountHeld(tx.QueryRowContext(ctx, `SELECT `+accountHeldCols+` FROM accounts WHERE id = $1`+s.dialect.RowLock, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("account", id)
		}
		if err != nil {
			return err
		}
		if a.Held, err = s.heldAt(ctx, a.ID, a.Held, until, s.clock.Now()); err != nil {
			return err
		}
		if u.Email != nil {
			a.Email = *u.Email
		}
		closing := u.Status != nil && *u.Status == ledger.Closed && a.Status != ledger.Closed
		if u.Status != nil {
			a.Status = *u.Status
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET email = $1, status = $2, updated_at = $3 WHERE id = $4`,
			a.Email, string(a.Status), micros(s.clock.Now()), id); err != nil {
			return fmt.Errorf("update account: %w", err)
		}
		out = a
		if closing {
			return s.closeTx(ctx, tx, id)
		}
		return nil
	})
	return out, err
}

// Meta reads a setting of the installation.
func (s *Ledger) Meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

// SetMetaIfAbsent stores value under key unless the key exists, and returns
// what is stored afterwards; two first starts racing agree on one value.
func (s *Ledger) SetMetaIfAbsent(ctx context.Context, key, value string) (string, error) {
	var out string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&out)
	})
	return out, err
}

// closeTx does what closing an account does, in the transaction that
// closes it: Automatic Top-Up is switched off (account_closed, audited, and
// the customer told as for every other reason), and its top-ups that were
// never attempted are canceled, so that nothing charges the account from
// now on. A top-up already attempted is left to the engine, which drives it
// to its outcome and credits it if it was paid.
func (s *core) closeTx(ctx context.Context, tx *sql.Tx, accountID string) error {
	return s.switchOffTx(ctx, tx, accountID, topup.AccountClosed, true)
}

// switchOffTx switches an account's Automatic Top-Up off for reason
// (audited, and the customer told as for every other reason) and cancels
// its top-ups never attempted, with reason as their failure code: the
// automatic ones, and with manual true the manual ones too. It does
// nothing more when Automatic Top-Up was already off (the reason it was
// switched off then is kept).
func (s *core) switchOffTx(ctx context.Context, tx *sql.Tx, accountID, reason string, manual bool) error {
	now := s.clock.Now()
	st, ok, err := s.settingsTx(ctx, tx, accountID)
	if err != nil {
		return err
	}
	if next, changed := st.SwitchOff(reason, now); ok && changed {
		if err := s.changeSettings(ctx, tx, accountID, "system:"+reason, st, next, false); err != nil {
			return err
		}
		if err := s.writeEvents(ctx, tx, []ledger.Event{topup.DisabledEvent(accountID, reason)}, now); err != nil {
			return err
		}
	}
	q := `UPDATE top_ups SET status = 'canceled', failure_code = $1, completed_at = $2, lease_until = 0
WHERE account_id = $3 AND status = 'pending' AND attempts = 0`
	if !manual {
		q += ` AND trigger <> 'manual'`
	}
	if _, err := tx.ExecContext(ctx, q, reason, micros(now), accountID); err != nil {
		return fmt.Errorf("cancel top-ups of %s: %w", accountID, err)
	}
	return nil
}
