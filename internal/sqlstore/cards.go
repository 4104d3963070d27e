package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/topup"
)

// listCards reads every card of an account, at most MaxPaymentMethods
// (more only for an account that had them before the limit): for reads
// only; a write transaction reads the one or two rows it needs.
func listCards(ctx context.Context, q *sql.DB, accountID string) ([]topup.Card, error) {
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
func (s *Payments) Cards(ctx context.Context, accountID string) ([]topup.Card, error) {
	if _, err := s.account(ctx, accountID); err != nil {
		return nil, err
	}
	return listCards(ctx, s.read, accountID)
}

// AddCard saves an attached card; the first card becomes the default. A
// card already saved for the account is returned as it is. It is refused
// when the account is closed (AccountClosed), holds MaxPaymentMethods cards
// already (LimitExceeded), or when the card was removed from Topup before
// (Conflict): a removed card never comes back, whatever is replayed.
func (s *Payments) AddCard(ctx context.Context, accountID string, c payment.Card) (topup.Card, error) {
	var out topup.Card
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.addCardTx(ctx, tx, accountID, c)
		return err
	})
	return out, err
}

// AddSetupCard saves the card a hosted setup session saved, as AddCard
// does, and uses the session up: a session brings one card into Topup once,
// and a second use (the return URL replayed) is a Conflict naming
// session_id that adds nothing.
func (s *Payments) AddSetupCard(ctx context.Context, accountID, sessionID string, c payment.Card) (topup.Card, error) {
	var out topup.Card
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if err := acct.May(ledger.ActAddCard); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO used_setup_sessions (session_id, account_id, payment_method, used_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (session_id) DO NOTHING`, sessionID, accountID, c.ID, micros(s.clock.Now()))
		if err != nil {
			return fmt.Errorf("use setup session: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, &apperr.Error{Code: apperr.Conflict, Field: "session_id",
				Message: "this card setup was already completed; start a new one to add another card"})
		}
		out, err = s.addCardTx(ctx, tx, accountID, c)
		return err
	})
	return out, err
}

// SetupSessionUsed reports whether a hosted setup session already brought
// its card into Topup (AddSetupCard).
func (s *Payments) SetupSessionUsed(ctx context.Context, sessionID string) (bool, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM used_setup_sessions WHERE session_id = $1`, sessionID).Scan(&n)
	return n > 0, err
}

func (s *core) addCardTx(ctx context.Context, tx *sql.Tx, accountID string, c payment.Card) (topup.Card, error) {
	out := topup.Card{Card: c, AccountID: accountID, CreatedAt: s.clock.Now()}
	acct, err := s.lockAccount(ctx, tx, accountID)
	if err != nil {
		return out, err
	}
	if err := acct.May(ledger.ActAddCard); err != nil {
		return out, err
	}
	var owner string
	var isDefault bool
	var at int64
	err = tx.QueryRowContext(ctx, `SELECT account_id, is_default, created_at FROM payment_methods WHERE id = $1`, c.ID).Scan(&owner, &isDefault, &at)
	switch {
	case err == nil && owner == accountID:
		out.Default, out.CreatedAt = isDefault, fromMicros(at)
		return out, nil
	case err == nil:
		return out, &apperr.Error{Code: apperr.Conflict, Field: "payment_method", Message: fmt.Sprintf("payment method %s belongs to another account", c.ID)}
	case !errors.Is(err, sql.ErrNoRows):
		return out, err
	}
	var removed int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM removed_payment_methods WHERE id = $1`, c.ID).Scan(&removed); err != nil {
		return out, err
	}
	if removed > 0 {
		return out, &apperr.Error{Code: apperr.Conflict, Field: "payment_method",
			Message: fmt.Sprintf("payment method %s was removed; add the card again to use it", c.ID)}
	}
	var n, defaults int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN is_default THEN 1 END) FROM payment_methods WHERE account_id = $1`, accountID).
		Scan(&n, &defaults); err != nil {
		return out, err
	}
	if err := ledger.CheckLimit("payment methods", n, ledger.MaxPaymentMethods); err != nil {
		return out, err
	}
	out.Default = defaults == 0
	_, err = tx.ExecContext(ctx, `INSERT INTO payment_methods (id, account_id, brand, last4, exp_month, exp_year, is_default, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.ID, accountID, c.Brand, c.Last4, c.ExpMonth, c.ExpYear, out.Default, micros(out.CreatedAt))
	return out, err
}

// cardTx reads one card of an account (NotFound when it has none by id).
func cardTx(ctx context.Context, tx *sql.Tx, accountID, cardID string) (topup.Card, error) {
	c := topup.Card{AccountID: accountID}
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT id, brand, last4, exp_month, exp_year, is_default, created_at FROM payment_methods WHERE account_id = $1 AND id = $2`,
		accountID, cardID).Scan(&c.ID, &c.Brand, &c.Last4, &c.ExpMonth, &c.ExpYear, &c.Default, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFound("payment method", cardID)
	}
	c.CreatedAt = fromMicros(at)
	return c, err
}

// SetDefaultCard makes a card the account's default.
func (s *Payments) SetDefaultCard(ctx context.Context, accountID, cardID string) (topup.Card, error) {
	var out topup.Card
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		acct, err := s.lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if out, err = cardTx(ctx, tx, accountID, cardID); err != nil {
			return err
		}
		if err := acct.May(ledger.ActSetDefault); err != nil {
			return err
		}
		if out.Default {
			return nil
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

// RemoveCard deletes a card, and remembers that it was removed, so that no
// replay (a setup return URL, a provider event) brings it back. When it was
// the default, the newest remaining card becomes the default. Automatic
// Top-Up switches off (and the customer is told) when its named card, or
// the last card, is removed. A closed account may still remove cards.
func (s *Payments) RemoveCard(ctx context.Context, accountID, cardID string) (autoDisabled bool, err error) {
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO removed_payment_methods (id, account_id, removed_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
			cardID, accountID, micros(s.clock.Now())); err != nil {
			return fmt.Errorf("remember removed payment method: %w", err)
		}
		newest, err := promoteNewest(ctx, tx, accountID, wasDefault)
		if err != nil {
			return err
		}
		st, ok, err := s.settingsTx(ctx, tx, accountID)
		if err != nil || !ok {
			return err
		}
		now := s.clock.Now()
		next, changed, disabled := st.AfterCardRemoved(cardID, newest != "", now)
		if !changed {
			return nil
		}
		if err := s.changeSettings(ctx, tx, accountID, "system:payment_method_removed", st, next, false); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		autoDisabled = true
		return s.writeEvents(ctx, tx, []ledger.Event{topup.DisabledEvent(accountID, topup.PaymentMethodRemoved)}, now)
	})
	return autoDisabled, err
}

// promoteNewest returns the account's newest remaining card ("" when none
// is left), reading one row however many cards there are, and makes it the
// default when the removed card was.
func promoteNewest(ctx context.Context, tx *sql.Tx, accountID string, wasDefault bool) (string, error) {
	var newest string
	err := tx.QueryRowContext(ctx, `SELECT id FROM payment_methods WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1`, accountID).Scan(&newest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if wasDefault && newest != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE payment_methods SET is_default = TRUE WHERE id = $1`, newest); err != nil {
			return "", err
		}
	}
	return newest, nil
}

// CustomerID returns the provider customer of an account ("" before the
// first card).
func (s *Payments) CustomerID(ctx context.Context, accountID string) (string, error) {
	var c string
	err := s.read.QueryRowContext(ctx, `SELECT provider_customer FROM accounts WHERE id = $1`, accountID).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("account", accountID)
	}
	return c, err
}

// SetCustomerID records the provider customer of an account, keeping the
// first one if two requests raced.
func (s *Payments) SetCustomerID(ctx context.Context, accountID, customer string) (string, error) {
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
func (s *Payments) CardOwner(ctx context.Context, cardID string) (string, error) {
	var id string
	err := s.read.QueryRowContext(ctx, `SELECT account_id FROM payment_methods WHERE id = $1`, cardID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("payment method", cardID)
	}
	return id, err
}
