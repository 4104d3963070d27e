package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
)

func cardsTx(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, accountID string) ([]topup.Card, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, brand, last4, exp_month, exp_year, is_default, created_at FROM payment_methods
WHERE account_id = $1 ORDER BY created_at DESC, id DESC`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list payment methods: %w", err)
	}
	defer rows.Close()
	var out []topup.Card
	for rows.Next() {
		c := topup.Card{AccountID: accountID}
		var at int64
		if err := rows.Scan(&c.ID, &c.Brand, &c.Last4, &c.ExpMonth, &c.ExpYear, &c.Default, &at); err != nil {
			return nil, err
		}
		c.CreatedAt = fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Cards lists an account's payment methods, newest first.
func (s *Store) Cards(ctx context.Context, accountID string) ([]topup.Card, error) {
	if _, err := s.Account(ctx, accountID); err != nil {
		return nil, err
	}
	return cardsTx(ctx, s.read, accountID)
}

// AddCard saves an attached card; the first card becomes the default.
func (s *Store) AddCard(ctx context.Context, accountID string, c payment.Card) (topup.Card, error) {
	out := topup.Card{Card: c, AccountID: accountID, CreatedAt: s.clock.Now()}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.lockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM payment_methods WHERE account_id = $1 AND is_default`, accountID).Scan(&n); err != nil {
			return err
		}
		out.Default = n == 0
		_, err := tx.ExecContext(ctx, `INSERT INTO payment_methods (id, account_id, brand, last4, exp_month, exp_year, is_default, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`, c.ID, accountID, c.Brand, c.Last4, c.ExpMonth, c.ExpYear, out.Default, micros(out.CreatedAt))
		return err
	})
	return out, err
}

// SetDefaultCard makes a card the account's default.
func (s *Store) SetDefaultCard(ctx context.Context, accountID, cardID string) (topup.Card, error) {
	var out topup.Card
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.lockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		cards, err := cardsTx(ctx, tx, accountID)
		if err != nil {
			return err
		}
		found := false
		for _, c := range cards {
			if c.ID == cardID {
				out, found = c, true
			}
		}
		if !found {
			return notFound("payment method", cardID)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE payment_methods SET is_default = FALSE WHERE account_id = $1 AND is_default`, accountID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE payment_methods SET is_default = TRUE WHERE id = $1`, cardID)
		out.Default = true
		return err
	})
	return out, err
}

// RemoveCard deletes a card. When it was the default, the newest remaining
// card becomes the default. Automatic Top-Up switches off (and the customer
// is told) when its named card, or the last card, is removed.
func (s *Store) RemoveCard(ctx context.Context, accountID, cardID string) (autoDisabled bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		autoDisabled = false
		if _, err := s.lockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		var wasDefault bool
		err := tx.QueryRowContext(ctx, `SELECT is_default FROM payment_methods WHERE account_id = $1 AND id = $2`, accountID, cardID).Scan(&wasDefault)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("payment method", cardID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM payment_methods WHERE id = $1`, cardID); err != nil {
			return err
		}
		rest, err := cardsTx(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if wasDefault && len(rest) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE payment_methods SET is_default = TRUE WHERE id = $1`, rest[0].ID); err != nil {
				return err
			}
		}
		st, ok, err := s.settingsTx(ctx, tx, accountID)
		if err != nil || !ok {
			return err
		}
		// Settings never keep naming a card that is gone, enabled or not:
		// a later save that leaves payment_method out would otherwise be
		// refused for a card the customer no longer has.
		old := st
		named := st.PaymentMethod == cardID
		if named {
			st.PaymentMethod, st.UpdatedAt = "", s.clock.Now()
		}
		if !st.Enabled {
			if named {
				return s.changeSettings(ctx, tx, accountID, "system:payment_method_removed", old, st, false)
			}
			return nil
		}
		if named || len(rest) == 0 {
			now := s.clock.Now()
			st.Enabled, st.DisabledReason, st.UpdatedAt = false, topup.PaymentMethodRemoved, now
			if err := s.changeSettings(ctx, tx, accountID, "system:payment_method_removed", old, st, false); err != nil {
				return err
			}
			autoDisabled = true
			return s.notify(ctx, tx, accountID, "auto_top_up.disabled", map[string]any{"reason": topup.PaymentMethodRemoved}, now)
		}
		return nil
	})
	return autoDisabled, err
}

// CustomerID returns the provider customer of an account ("" before the
// first card).
func (s *Store) CustomerID(ctx context.Context, accountID string) (string, error) {
	var c string
	err := s.read.QueryRowContext(ctx, `SELECT provider_customer FROM accounts WHERE id = $1`, accountID).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("account", accountID)
	}
	return c, err
}

// SetCustomerID records the provider customer of an account, keeping the
// first one if two requests raced.
func (s *Store) SetCustomerID(ctx context.Context, accountID, customer string) (string, error) {
	var out string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET provider_customer = $1 WHERE id = $2 AND provider_customer = ''`, customer, accountID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT provider_customer FROM accounts WHERE id = $1`, accountID).Scan(&out)
	})
	return out, err
}

// CardOwner returns the account a saved card belongs to.
func (s *Store) CardOwner(ctx context.Context, cardID string) (string, error) {
	var id string
	err := s.read.QueryRowContext(ctx, `SELECT account_id FROM payment_methods WHERE id = $1`, cardID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("payment method", cardID)
	}
	return id, err
}
