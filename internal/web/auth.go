package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/console"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
)

// LoginLinkTTL is how long a sign-in link can be used.
const LoginLinkTTL = 15 * time.Minute

// Cookie names. The session cookie is HttpOnly and SameSite=Lax (sent when
// the customer comes back from the hosted card page, never with another
// site's form); loginCookie is the sign-in form's double-submit token.
const (
	sessionCookie = "topup_session"
	loginCookie   = "topup_login"
)

// LinkStore keeps sign-in links (*sqlstore.Console).
type LinkStore interface {
	CreateLoginLink(ctx context.Context, accountID, tokenHash string, expiresAt time.Time) error
}

// Links mints one-time sign-in links: the API's POST …/login_links and
// `topup demo` use it. Only the hash of a link's token is stored.
type Links struct {
	store LinkStore
	clock clock.Clock
	url   string
}

// NewLinks returns a minter of links to the console at consoleURL
// (PublicURL + "/console").
func NewLinks(store LinkStore, c clock.Clock, consoleURL string) *Links {
	if c == nil {
		c = clock.System
	}
	return &Links{store: store, clock: c, url: consoleURL}
}

// NewLoginLink returns a link that signs one browser into the account's
// console within LoginLinkTTL. An unknown account is NotFound.
func (l *Links) NewLoginLink(ctx context.Context, accountID string) (string, time.Time, error) {
	token := ids.Secret("tpl_")
	expires := l.clock.Now().Add(LoginLinkTTL)
	if err := l.store.CreateLoginLink(ctx, accountID, ledger.HashKey(token), expires); err != nil {
		return "", time.Time{}, err
	}
	return l.url + "/login?token=" + token, expires, nil
}

// session returns the request's live session, if it has one.
func (c *Console) session(r *http.Request) (console.Session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return console.Session{}, false
	}
	sess, err := c.store.ConsoleSession(r.Context(), ledger.HashKey(ck.Value))
	if err != nil {
		if !isNotFound(err) {
			c.log.ErrorContext(r.Context(), "console: read session", "err", err)
		}
		return console.Session{}, false
	}
	return sess, true
}

// validCSRF checks the form's csrf field against the session's token.
func validCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (c *Console) cookie(r *http.Request, name, value, path string, maxAge int, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, SameSite: sameSite,
		Secure: c.secure || r.TLS != nil}
}

// home sends a signed-in browser to its account and tells anyone else how
// to sign in.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if sess, ok := c.session(r); ok {
		redirect(w, r, Prefix+"/accounts/"+sess.AccountID)
		return
	}
	c.render(w, r, "signedout", view{Title: "Sign in"})
}

// linkState reads the sign-in link a token names and says whether it can
// still be used, and if not why, in words.
func (c *Console) linkState(r *http.Request, token string) (console.LoginLink, int, string) {
	if token == "" || len(token) > 100 {
		return console.LoginLink{}, http.StatusNotFound, "This sign-in link is not valid."
	}
	l, err := c.store.LoginLink(r.Context(), ledger.HashKey(token))
	switch {
	case isNotFound(err):
		return l, http.StatusNotFound, "This sign-in link is not valid."
	case err != nil:
		c.log.ErrorContext(r.Context(), "console: read sign-in link", "err", err)
		return l, http.StatusInternalServerError, "Topup could not read this sign-in link. Try again in a moment."
	case !l.UsedAt.IsZero():
		return l, http.StatusGone, "This sign-in link was already used. Each link signs in once: ask for a new one."
	case !c.clock.Now().Before(l.ExpiresAt):
		return l, http.StatusGone, "This sign-in link has expired. Links last 15 minutes: ask for a new one."
	}
	return l, http.StatusOK, ""
}

type loginView struct {
	Token, Form string
	Expires     time.Time
	Problem     string
}

// formKeyMeta is where the installation keeps the key of its sign-in
// forms (meta), so that every replica makes and checks the same forms.
const formKeyMeta = "console_login_form_key"

// formKey is the key that binds a sign-in form to its link, read (or made)
// once per process.
type formKey struct {
	mu  sync.Mutex
	key []byte
}

// loginFormKey returns the installation's sign-in form key, making it on
// the first use of the first replica; replicas racing agree on one.
func (c *Console) loginFormKey(ctx context.Context) ([]byte, error) {
	k := &c.formKey
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	v, ok, err := c.ledger.Meta(ctx, formKeyMeta)
	if err == nil && !ok {
		v, err = c.ledger.SetMetaIfAbsent(ctx, formKeyMeta, ids.Secret(""))
	}
	if err != nil {
		return nil, fmt.Errorf("sign-in form key: %w", err)
	}
	k.key = []byte(v)
	return k.key, nil
}

// loginForm is the token of the sign-in form of the link whose token hashes
// to tokenHash: an HMAC of it under the installation's key, so that only
// this server makes it, and a form (or cookie) made for one link is
// refused with any other.
func loginForm(key []byte, tokenHash string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("topup console sign-in form\x00" + tokenHash))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// loginPage is what a sign-in link opens: a page with a Sign in button.
// Opening it uses nothing, so a mail scanner that follows the link leaves
// it working for the person.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	l, status, problem := c.linkState(r, token)
	if status != http.StatusOK {
		c.renderStatus(w, r, status, "login", view{Title: "Sign in", Page: loginView{Problem: problem}})
		return
	}
	key, err := c.loginFormKey(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// The form's own token, bound to this link, also set as a SameSite
	// cookie: a sign-in form posted from anywhere but this page (login
	// CSRF) lacks the pair, and a pair made for another link, or made up,
	// does not match this one.
	form := loginForm(key, ledger.HashKey(token))
	http.SetCookie(w, c.cookie(r, loginCookie, form, Prefix+"/login", int(LoginLinkTTL/time.Second), http.SameSiteStrictMode))
	c.render(w, r, "login", view{Title: "Sign in", Page: loginView{Token: token, Form: form, Expires: l.ExpiresAt}})
}

// validLoginForm says whether the sign-in post carries the form and the
// cookie that the page of its link set.
func (c *Console) validLoginForm(r *http.Request, token string) (bool, error) {
	ck, err := r.Cookie(loginCookie)
	if err != nil || ck.Value == "" || token == "" || len(token) > 100 {
		return false, nil
	}
	key, err := c.loginFormKey(r.Context())
	if err != nil {
		return false, err
	}
	want := []byte(loginForm(key, ledger.HashKey(token)))
	return subtle.ConstantTimeCompare([]byte(ck.Value), want) == 1 &&
		subtle.ConstantTimeCompare([]byte(r.PostFormValue("form")), want) == 1, nil
}

// login uses the link up and opens a session: a fresh random id, stored
// hashed, in an HttpOnly cookie; any session the browser had is ended.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	ok, err := c.validLoginForm(r, token)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !ok {
		c.renderStatus(w, r, http.StatusForbidden, "login", view{Title: "Sign in", Page: loginView{
			Problem: "This sign-in form has expired. Open the sign-in link again and press Sign in."}})
		return
	}
	id := ids.Secret("")
	sess := console.Session{IDHash: ledger.HashKey(id), CSRF: ids.Secret(""), ExpiresAt: c.clock.Now().Add(c.cfg.SessionTTL)}
	sess, err = c.store.UseLoginLink(r.Context(), ledger.HashKey(token), sess)
	if err != nil {
		status, problem := http.StatusGone, ""
		switch {
		case errors.Is(err, console.ErrLinkUsed):
			problem = "This sign-in link was already used. Each link signs in once: ask for a new one."
		case errors.Is(err, console.ErrLinkExpired):
			problem = "This sign-in link has expired. Links last 15 minutes: ask for a new one."
		case isNotFound(err):
			status, problem = http.StatusNotFound, "This sign-in link is not valid."
		default:
			c.fail(w, r, err)
			return
		}
		c.renderStatus(w, r, status, "login", view{Title: "Sign in", Page: loginView{Problem: problem}})
		return
	}
	if old, ok := c.session(r); ok {
		_ = c.store.EndConsoleSession(r.Context(), old.IDHash)
	}
	http.SetCookie(w, c.cookie(r, loginCookie, "", Prefix+"/login", -1, http.SameSiteStrictMode))
	http.SetCookie(w, c.cookie(r, sessionCookie, id, Prefix, int(c.cfg.SessionTTL/time.Second), http.SameSiteLaxMode))
	redirect(w, r, Prefix+"/accounts/"+sess.AccountID)
}

// logout ends the session (the form carries its CSRF token).
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if sess, ok := c.session(r); ok {
		if !validCSRF(r, sess.CSRF) {
			c.errorPage(w, r, http.StatusForbidden, "This form has expired", "The form was missing its security token. Go back, reload the page and try again.")
			return
		}
		if err := c.store.EndConsoleSession(r.Context(), sess.IDHash); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, c.cookie(r, sessionCookie, "", Prefix, -1, http.SameSiteLaxMode))
	c.render(w, r, "signedout", view{Title: "Signed out", Page: "signedout"})
}
