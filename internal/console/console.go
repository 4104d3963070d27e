// Package console holds what the web console's sign-in is made of: one-time
// sign-in links and the browser sessions they open, and how a link is
// refused. It imports no database and no HTTP: the store keeps these
// records (sqlstore), the web package serves the pages.
package console

import (
	"errors"
	"time"
)

// LoginLink is a one-time console sign-in link, as stored: only the hash of
// its token is kept.
type LoginLink struct {
	AccountID string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is zero until the link signed someone in.
	UsedAt time.Time
}

// Session is a signed-in browser. IDHash is the hex SHA-256 of the
// cookie's value; CSRF is the token every form of the session carries.
type Session struct {
	IDHash    string
	AccountID string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Refusals of a sign-in link (the store's UseLoginLink), for the page to
// explain.
var (
	// ErrLinkUsed is returned for a sign-in link that already signed someone
	// in.
	ErrLinkUsed = errors.New("this sign-in link was already used")
	// ErrLinkExpired is returned for a sign-in link past its expiry.
	ErrLinkExpired = errors.New("this sign-in link has expired")
)
