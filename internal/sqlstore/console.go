package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/console"
)

// CreateLoginLink stores a sign-in link for an account (NotFound for an
// unknown account) and forgets links that expired more than a day ago.
func (s *Console) CreateLoginLink(ctx context.Context, accountID, tokenHash string, expiresAt time.Time) error {
	now := s.clock.Now()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE id = $1`, accountID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("account", accountID)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_login_links WHERE expires_at < $1`, micros(now.Add(-24*time.Hour))); err != nil {
			return fmt.Errorf("forget old sign-in links: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO console_login_links (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			tokenHash, accountID, micros(now), micros(expiresAt)); err != nil {
			return fmt.Errorf("store sign-in link: %w", err)
		}
		return nil
	})
}

// LoginLink returns a sign-in link by the hash of its token (NotFound when
// there is none), whatever its state: reading it uses nothing.
func (s *Console) LoginLink(ctx context.Context, tokenHash string) (console.LoginLink, error) {
	return loginLinkTx(ctx, s.read, tokenHash)
}

func loginLinkTx(ctx context.Context, q queryer, tokenHash string) (console.LoginLink, error) {
	var l console.LoginLink
	var created, expires, used int64
	err := q.QueryRowContext(ctx, `SELECT account_id, created_at, expires_at, used_at FROM console_login_links WHERE token_hash = $1`, tokenHash).
		Scan(&l.AccountID, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return l, notFound("sign-in link", "")
	}
	if err != nil {
		return l, fmt.Errorf("read sign-in link: %w", err)
	}
	l.CreatedAt, l.ExpiresAt = fromMicros(created), fromMicros(expires)
	if used != 0 {
		l.UsedAt = fromMicros(used)
	}
	return l, nil
}

// UseLoginLink uses a sign-in link up and opens the session sess for its
// account, in one transaction: of two browsers racing with the same link,
// one is signed in. A link used before gives console.ErrLinkUsed, one past its
// expiry console.ErrLinkExpired, an unknown one NotFound; none of them opens
// anything. sess.AccountID is filled in from the link.
func (s *Console) UseLoginLink(ctx context.Context, tokenHash string, sess console.Session) (console.Session, error) {
	now := s.clock.Now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		l, err := loginLinkTx(ctx, tx, tokenHash)
		if err != nil {
			return err
		}
		switch {
		case !l.UsedAt.IsZero():
			return console.ErrLinkUsed
		case !now.Before(l.ExpiresAt):
			return console.ErrLinkExpired
		}
		// The condition on used_at makes the update the arbiter even where
		// the read above took no lock.
		res, err := tx.ExecContext(ctx, `UPDATE console_login_links SET used_at = $1 WHERE token_hash = $2 AND used_at = 0`, micros(now), tokenHash)
		if err != nil {
			return fmt.Errorf("use sign-in link: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(console.ErrLinkUsed, err)
		}
		sess.AccountID, sess.CreatedAt = l.AccountID, now
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at < $1`, micros(now)); err != nil {
			return fmt.Errorf("forget expired sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (id_hash, account_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			sess.IDHash, sess.AccountID, sess.CSRF, micros(sess.CreatedAt), micros(sess.ExpiresAt)); err != nil {
			return fmt.Errorf("open session: %w", err)
		}
		return nil
	})
	return sess, err
}

// ConsoleSession returns the session whose id hashes to idHash; an unknown
// or expired session is NotFound.
func (s *Console) ConsoleSession(ctx context.Context, idHash string) (console.Session, error) {
	out := console.Session{IDHash: idHash}
	var created, expires int64
	err := s.read.QueryRowContext(ctx, `SELECT account_id, csrf_token, created_at, expires_at FROM console_sessions WHERE id_hash = $1 AND expires_at > $2`,
		idHash, micros(s.clock.Now())).Scan(&out.AccountID, &out.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return out, notFound("session", "")
	}
	if err != nil {
		return out, fmt.Errorf("read session: %w", err)
	}
	out.CreatedAt, out.ExpiresAt = fromMicros(created), fromMicros(expires)
	return out, nil
}

// EndConsoleSession signs a session out; ending one that is gone is not an
// error.
func (s *Console) EndConsoleSession(ctx context.Context, idHash string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash); err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		return nil
	})
}
