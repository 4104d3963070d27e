package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/web"
)

// TestSignInLink walks a sign-in link's life: the API mints it for 15
// minutes; opening it (as a mail scanner does) uses nothing; the Sign in
// button uses it up and opens a session; the same link then refuses, and so
// does one past its 15 minutes.
func TestSignInLink(t *testing.T) {
	t.Parallel()
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, envOptions{clock: clk})
	a := e.account("ada@example.com", "10.00")

	link, expires := e.loginLink(a)
	if want := clk.Now().Add(15 * time.Minute); !expires.Equal(want) {
		t.Errorf("expires_at = %s; want 15 minutes from now, %s", expires, want)
	}
	if !strings.HasPrefix(link, e.url+"/console/login?token=tpl_") {
		t.Errorf("url = %q; want the console's sign-in page with a token", link)
	}

	// A scanner opens the link twice: the link still works for the person.
	scanner := e.browser()
	for range 2 {
		if p := scanner.get(link); p.status != 200 || !strings.Contains(p.body, "Sign in") {
			t.Fatalf("GET of the link answered %d; want 200 with a Sign in button", p.status)
		}
	}
	person := e.browser()
	opened := person.get(link)
	p := person.post("/console/login", url.Values{"token": {opened.hidden(t, "token")}, "form": {opened.hidden(t, "form")}})
	if p.status != 303 || p.header.Get("Location") != "/console/accounts/"+a.ID {
		t.Fatalf("Sign in answered %d to %q; want 303 to the account's overview", p.status, p.header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "topup_session" && c.Value != "" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/console" || session.Secure {
		t.Fatalf("session cookie = %+v; want HttpOnly, SameSite=Lax, Path=/console, not Secure over plain http", session)
	}
	// The link's token and the session's id are secrets (ids.Secret).
	for _, s := range []struct{ prefix, value string }{{"tpl_", tokenOf(t, link)}, {"", session.Value}} {
		if raw, ok := ids.DecodeSecret(s.prefix, s.value); !ok || len(raw) < 16 {
			t.Errorf("%q holds %d random bytes; want at least 16", s.value, len(raw))
		}
	}
	if home := person.get("/console/accounts/" + a.ID); home.status != 200 || !strings.Contains(home.body, "ada@example.com") {
		t.Fatalf("the overview after sign-in answered %d", home.status)
	}

	// Used: the same link refuses, on GET and on Sign in, and opens nothing.
	again := e.browser()
	if p := again.get(link); p.status != http.StatusGone || !strings.Contains(p.body, "already used") {
		t.Errorf("GET of a used link answered %d; want 410 saying it was used:\n%s", p.status, p.body)
	}
	// The person's own form, replayed, cannot use the link again either.
	form := url.Values{"token": {tokenOf(t, link)}, "form": {opened.hidden(t, "form")}}
	again.http.Jar.SetCookies(mustURL(t, e.url+"/console/login"), []*http.Cookie{{Name: "topup_login", Value: opened.hidden(t, "form"), Path: "/console/login"}})
	if p := again.post("/console/login", form); p.status != http.StatusGone || strings.Contains(p.header.Get("Set-Cookie"), "topup_session=") {
		t.Errorf("Sign in with a used link answered %d (Set-Cookie %q); want 410 and no session", p.status, p.header.Get("Set-Cookie"))
	}

	// Expired: a fresh link, 15 minutes later, refuses too.
	late, _ := e.loginLink(a)
	pending := e.browser()
	open := pending.get(late)
	clk.Advance(15*time.Minute + time.Second)
	if p := pending.post("/console/login", url.Values{"token": {open.hidden(t, "token")}, "form": {open.hidden(t, "form")}}); p.status != http.StatusGone || !strings.Contains(p.body, "expired") {
		t.Errorf("Sign in after 15 minutes answered %d; want 410 saying the link expired:\n%s", p.status, p.body)
	}
	if p := e.browser().get(late); p.status != http.StatusGone {
		t.Errorf("GET of an expired link answered %d; want 410", p.status)
	}
	if p := e.browser().get("/console/login?token=tpl_nonsense"); p.status != http.StatusNotFound {
		t.Errorf("GET of an unknown link answered %d; want 404", p.status)
	}
}

// TestSignInFormNeedsItsCookie: a Sign in posted from anywhere but the page
// the link opened (login CSRF) lacks the form's cookie and is refused,
// leaving the link usable.
func TestSignInFormNeedsItsCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "")
	link, _ := e.loginLink(a)
	attacker := e.browser()
	if p := attacker.post("/console/login", url.Values{"token": {tokenOf(t, link)}, "form": {"guess"}}); p.status != http.StatusForbidden {
		t.Errorf("Sign in without the form's cookie answered %d; want 403", p.status)
	}
	if p := e.browser().signIn(link); p.status != 303 {
		t.Errorf("the link after a refused attempt answered %d; want 303 (still usable)", p.status)
	}
}

// TestSignInFormBoundToLink: the sign-in form's cookie and field are bound
// to the link whose page made them. A matching pair made up by an attacker
// (who can plant a cookie), or taken from the page of another link (the
// attacker's own), is refused and leaves the link usable; the pair the
// link's page made works, on every replica.
func TestSignInFormBoundToLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	victim, attacker := e.account("ada@example.com", ""), e.account("mallory@example.com", "")
	link, _ := e.loginLink(victim)
	other, _ := e.loginLink(attacker)
	otherPage := e.browser().get(other)
	for _, tc := range []struct{ name, form string }{
		{"a made-up pair", "made-up"},
		{"another link's pair", otherPage.hidden(t, "form")},
	} {
		b := e.browser()
		b.http.Jar.SetCookies(mustURL(t, e.url+"/console/login"), []*http.Cookie{{Name: "topup_login", Value: tc.form, Path: "/console/login"}})
		if p := b.post("/console/login", url.Values{"token": {tokenOf(t, link)}, "form": {tc.form}}); p.status != http.StatusForbidden ||
			strings.Contains(p.header.Get("Set-Cookie"), "topup_session=") {
			t.Errorf("Sign in with %s answered %d (Set-Cookie %q); want 403 and no session", tc.name, p.status, p.header.Get("Set-Cookie"))
		}
	}

	// The link's own page, opened on this replica and posted to another
	// (a second console on the same database), signs in.
	opened := e.browser().get(link)
	replica := web.New(web.Config{PublicURL: e.url}, web.Deps{Store: e.store.Console, Ledger: e.store.Ledger, Payments: e.store.Payments, Alerts: e.store.Outbox, Clock: e.clock})
	form := url.Values{"token": {opened.hidden(t, "token")}, "form": {opened.hidden(t, "form")}}
	req := httptest.NewRequest("POST", "/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "topup_login", Value: opened.hidden(t, "form")})
	rec := httptest.NewRecorder()
	replica.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/accounts/"+victim.ID {
		t.Errorf("Sign in with the link's own form on another replica answered %d to %q; want 303 to the account", rec.Code, rec.Header().Get("Location"))
	}
}

// TestLoginLinksAreForTheOperator: only the admin key mints links; an
// account key gets 403 on its own account and 404 on another's.
func TestLoginLinksAreForTheOperator(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a, b := e.account("a@example.com", ""), e.account("b@example.com", "")
	if got := e.api("POST", "/v1/accounts/"+a.ID+"/login_links", a.Key, "", nil); got != 403 {
		t.Errorf("an account key on its own login_links answered %d; want 403", got)
	}
	if got := e.api("POST", "/v1/accounts/"+b.ID+"/login_links", a.Key, "", nil); got != 404 {
		t.Errorf("an account key on another account's login_links answered %d; want 404", got)
	}
	if got := e.api("POST", "/v1/accounts/acct_nope/login_links", adminKey, "", nil); got != 404 {
		t.Errorf("login_links of an unknown account answered %d; want 404", got)
	}
}

// TestForeignAccountIs404: a session of account A asking for B's pages or
// posting B's forms gets 404, as if B did not exist, and B is unchanged.
func TestForeignAccountIs404(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a, b := e.account("a@example.com", "5.00"), e.account("b-secret@example.com", "7.00")
	e.mustAPI("POST", "/v1/accounts/"+b.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, nil)
	br, csrf := e.signedIn(a)
	base := "/console/accounts/" + b.ID
	for _, path := range []string{base, base + "/payment_methods", base + "/top_ups", base + "/auto_top_up/preview?threshold=5&target=20",
		base + "/payment_methods/return?session_id=cs_x"} {
		if p := br.get(path); p.status != 404 || strings.Contains(p.body, "b-secret") || strings.Contains(p.body, "7.00") {
			t.Errorf("GET %s by another account's session answered %d; want 404 telling nothing of B", path, p.status)
		}
	}
	for _, path := range []string{base + "/top_ups", base + "/auto_top_up", base + "/payment_methods/setup"} {
		form := url.Values{"csrf": {csrf}, "amount": {"10"}, "idempotency_key": {"k"}, "enabled": {"true"}, "threshold": {"5"}, "target": {"20"}}
		if p := br.post(path, form); p.status != 404 {
			t.Errorf("POST %s by another account's session answered %d; want 404", path, p.status)
		}
	}
	var st struct{ Enabled bool }
	e.mustAPI("GET", "/v1/accounts/"+b.ID+"/auto_top_up", adminKey, "", 200, &st)
	var tus struct{ Data []any }
	e.mustAPI("GET", "/v1/accounts/"+b.ID+"/top_ups", adminKey, "", 200, &tus)
	if st.Enabled || len(tus.Data) != 0 {
		t.Errorf("B after A's posts: auto top-up enabled %v, %d top-ups; want untouched", st.Enabled, len(tus.Data))
	}
}

// TestFormsNeedTheCSRFToken: every form of the console carries the
// session's token; without it, or with another, the form is refused (403)
// and nothing changes. A form another site sent is refused too.
func TestFormsNeedTheCSRFToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "5.00")
	var card struct{ ID string }
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, &card)
	br, csrf := e.signedIn(a)
	base := "/console/accounts/" + a.ID
	forms := map[string]url.Values{
		base + "/top_ups":     {"amount": {"10"}, "idempotency_key": {"k1"}},
		base + "/auto_top_up": {"enabled": {"true"}, "threshold": {"5"}, "target": {"20"}},
		base + "/payment_methods/" + card.ID + "/remove":  {},
		base + "/payment_methods/" + card.ID + "/default": {},
		base + "/payment_methods/setup":                   {},
		"/console/logout":                                 {},
	}
	for path, form := range forms {
		for _, token := range []string{"", "not-the-token", csrf + "x"} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if token != "" {
				f.Set("csrf", token)
			}
			if p := br.post(path, f); p.status != http.StatusForbidden {
				t.Errorf("POST %s with csrf %q answered %d; want 403", path, token, p.status)
			}
		}
	}
	// With the token but sent by another site (Sec-Fetch-Site).
	req, _ := http.NewRequest("POST", e.url+base+"/auto_top_up", strings.NewReader(url.Values{"csrf": {csrf}, "enabled": {"true"}, "threshold": {"5"}, "target": {"20"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := br.http.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site form answered %v %v; want 403", resp.StatusCode, err)
	}

	var st struct{ Enabled bool }
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/auto_top_up", adminKey, "", 200, &st)
	var tus, cards struct{ Data []any }
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/top_ups", adminKey, "", 200, &tus)
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, "", 200, &cards)
	if st.Enabled || len(tus.Data) != 0 || len(cards.Data) != 1 {
		t.Errorf("after refused forms: enabled %v, %d top-ups, %d cards; want nothing changed", st.Enabled, len(tus.Data), len(cards.Data))
	}
	if p := br.get(base); p.status != 200 {
		t.Errorf("the session after refused forms answered %d; want still signed in", p.status)
	}
	// With the token the same form works.
	if p := br.post(base+"/auto_top_up", url.Values{"csrf": {csrf}, "enabled": {"true"}, "threshold": {"2"}, "target": {"20"}}); p.status != 303 {
		t.Errorf("the settings form with its token answered %d; want 303", p.status)
	}
}

// TestDescriptionsAreText: a description with HTML in it is shown as text
// on every page, never run.
func TestDescriptionsAreText(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "5.00")
	evil := `<script>alert("pwned")</script><img src=x onerror=alert(1)> & "quotes"`
	e.usage(a, "0.25", "u1", evil)
	br, _ := e.signedIn(a)
	p := br.get("/console/accounts/" + a.ID)
	if strings.Contains(p.body, `<script>alert`) || strings.Contains(p.body, `<img src=x`) {
		t.Fatalf("the overview carries the description's HTML as markup:\n%s", p.body)
	}
	if !strings.Contains(p.body, `&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &#34;quotes&#34;`) {
		t.Errorf("the overview does not show the description as text:\n%s", p.body)
	}
}

// TestSecurityHeaders: every console answer forbids framing, inline
// scripts and referrers, and pages are never cached.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "5.00")
	br, _ := e.signedIn(a)
	base := "/console/accounts/" + a.ID
	for _, path := range []string{"/console/", base, "/console/login?token=x", "/console/nowhere", base + "/low_balance_alerts", base + "/budgets",
		base + "/notifications"} {
		p := br.get(path)
		h := p.header
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self';") || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s headers = %v; want DENY framing, no-referrer, nosniff, a CSP without inline scripts, no-store", path, h)
		}
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=\"") {
			t.Errorf("GET %s has an inline script or style, which the CSP would block", path)
		}
	}
}

// TestSignOut ends the session: the cookie no longer opens anything.
func TestSignOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "5.00")
	br, csrf := e.signedIn(a)
	if p := br.post("/console/logout", url.Values{"csrf": {csrf}}); p.status != 200 || !strings.Contains(p.body, "signed out") {
		t.Fatalf("Sign out answered %d", p.status)
	}
	if p := br.get("/console/accounts/" + a.ID); p.status != http.StatusUnauthorized {
		t.Errorf("the overview after signing out answered %d; want 401 (sign in)", p.status)
	}
}

// TestSecureCookieBehindTLS: with an https public URL the session cookie
// is Secure.
func TestSecureCookieBehindTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "")
	link, _ := e.loginLink(a)
	tls := web.New(web.Config{PublicURL: "https://billing.example.com"}, web.Deps{Store: e.store.Console, Ledger: e.store.Ledger, Payments: e.store.Payments, Alerts: e.store.Outbox, Clock: e.clock})
	open := httptest.NewRecorder()
	tls.ServeHTTP(open, httptest.NewRequest("GET", strings.TrimPrefix(link, e.url), nil))
	form := url.Values{"token": {tokenOf(t, link)}}
	var loginCookie *http.Cookie
	for _, c := range open.Result().Cookies() {
		if c.Name == "topup_login" {
			loginCookie = c
			form.Set("form", c.Value)
		}
	}
	if loginCookie == nil || !loginCookie.Secure {
		t.Fatalf("the sign-in form's cookie = %+v; want Secure", loginCookie)
	}
	req := httptest.NewRequest("POST", "/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(loginCookie)
	rec := httptest.NewRecorder()
	tls.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "topup_session" && (!c.Secure || !c.HttpOnly) {
			t.Errorf("session cookie behind TLS = %+v; want Secure and HttpOnly", c)
		}
	}
	if rec.Code != 303 {
		t.Errorf("Sign in answered %d; want 303", rec.Code)
	}
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	return mustURL(t, link).Query().Get("token")
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
