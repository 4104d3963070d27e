package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/console"
	"github.com/topup/topup/internal/ledger"
)

// The console's storage: one-time sign-in links, the sessions they open,
// and the daily totals its charts and preview read.

// testLoginLinkSingleUse: a link signs one browser in; used again it is
// refused and opens nothing; an unknown link or account is not found.
func testLoginLinkSingleUse(t *testing.T, f *fixture) {
	a := f.account("link@example.com")
	now := Epoch.Truncate(time.Microsecond)
	if err := f.s.CreateLoginLink(ctx(t), a.ID, "link1", now.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	l, err := f.s.LoginLink(ctx(t), "link1")
	if err != nil || l.AccountID != a.ID || !l.ExpiresAt.Equal(now.Add(15*time.Minute)) || !l.UsedAt.IsZero() {
		t.Fatalf("a new link reads %+v, %v; want unused, for %s", l, err, a.ID)
	}
	sess, err := f.s.UseLoginLink(ctx(t), "link1", console.Session{IDHash: "sess1", CSRF: "c", ExpiresAt: now.Add(time.Hour)})
	if err != nil || sess.AccountID != a.ID {
		t.Fatalf("using the link: %+v, %v; want a session of %s", sess, err, a.ID)
	}
	if _, err := f.s.UseLoginLink(ctx(t), "link1", console.Session{IDHash: "sess2", CSRF: "c", ExpiresAt: now.Add(time.Hour)}); !errors.Is(err, console.ErrLinkUsed) {
		t.Errorf("using the link twice: %v; want ErrLinkUsed", err)
	}
	if _, err := f.s.ConsoleSession(ctx(t), "sess2"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("the refused second use opened a session: %v", err)
	}
	if l, err := f.s.LoginLink(ctx(t), "link1"); err != nil || l.UsedAt.IsZero() {
		t.Errorf("the used link reads %+v, %v; want a used_at", l, err)
	}
	if _, err := f.s.UseLoginLink(ctx(t), "nolink", console.Session{IDHash: "sess3", ExpiresAt: now.Add(time.Hour)}); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("an unknown link: %v; want not_found", err)
	}
	if err := f.s.CreateLoginLink(ctx(t), "acct_nobody", "link2", now.Add(time.Minute)); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a link for an unknown account: %v; want not_found", err)
	}
}

// testLoginLinkExpired: a link past its expiry opens no session.
func testLoginLinkExpired(t *testing.T, f *fixture) {
	a := f.account("late@example.com")
	if err := f.s.CreateLoginLink(ctx(t), a.ID, "old", Epoch.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.UseLoginLink(ctx(t), "old", console.Session{IDHash: "s", CSRF: "c", ExpiresAt: Epoch.Add(time.Hour)}); !errors.Is(err, console.ErrLinkExpired) {
		t.Errorf("an expired link: %v; want ErrLinkExpired", err)
	}
	if _, err := f.s.ConsoleSession(ctx(t), "s"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("the expired link opened a session: %v", err)
	}
}

// testConsoleSessions: a session is found until it expires or ends; ending
// one twice is no error.
func testConsoleSessions(t *testing.T, f *fixture) {
	a := f.account("sess@example.com")
	for i, exp := range []time.Time{Epoch.Add(time.Hour), Epoch.Add(-time.Second)} {
		link := "l" + string(rune('0'+i))
		if err := f.s.CreateLoginLink(ctx(t), a.ID, link, Epoch.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.UseLoginLink(ctx(t), link, console.Session{IDHash: "s" + link, CSRF: "csrf" + link, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := f.s.ConsoleSession(ctx(t), "sl0")
	if err != nil || s.AccountID != a.ID || s.CSRF != "csrfl0" {
		t.Fatalf("a live session reads %+v, %v", s, err)
	}
	if _, err := f.s.ConsoleSession(ctx(t), "sl1"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("an expired session: %v; want not_found", err)
	}
	for range 2 {
		if err := f.s.EndConsoleSession(ctx(t), "sl0"); err != nil {
			t.Errorf("end a session: %v", err)
		}
	}
	if _, err := f.s.ConsoleSession(ctx(t), "sl0"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("an ended session: %v; want not_found", err)
	}
}

// testDailyTotals: every balance change lands in its day's totals, in the
// same transaction: usage, credits, the closing and the lowest balance.
func testDailyTotals(t *testing.T, f *fixture) {
	a := f.account("daily@example.com")
	f.postOK(credit(a.ID, amt(t, "50.00"), "c1"))
	f.postOK(usage(a.ID, amt(t, "20.00"), "u1"))
	f.postOK(credit(a.ID, amt(t, "5.00"), "c2"))
	days, err := f.s.DailyTotals(ctx(t), a.ID, Epoch.AddDate(0, 0, -30))
	if err != nil {
		t.Fatal(err)
	}
	want := ledger.Day{
		Day:   time.Date(Epoch.Year(), Epoch.Month(), Epoch.Day(), 0, 0, 0, 0, time.UTC),
		Usage: amt(t, "20.00"), Credits: amt(t, "55.00"), Closing: amt(t, "35.00"), Low: amt(t, "30.00"),
	}
	if len(days) != 1 || days[0] != want {
		t.Fatalf("daily totals %+v; want %+v", days, want)
	}
	if days, err := f.s.DailyTotals(ctx(t), a.ID, Epoch.AddDate(0, 0, 1)); err != nil || len(days) != 0 {
		t.Errorf("totals from tomorrow: %+v, %v; want none", days, err)
	}
}

// testConsoleGrantReads: the overview's "expires soon" lists the active
// grants expiring before a bound, soonest first, at most the limit, and
// none used up, never expiring, later or of another account; the
// transactions page reads the grants its credits made by id, only the
// account's own.
func testConsoleGrantReads(t *testing.T, f *fixture) {
	a, b := f.account("grants-a@example.com"), f.account("grants-b@example.com")
	at := func(days int) time.Time { return Epoch.Truncate(time.Microsecond).AddDate(0, 0, days) }
	grant := func(acct, key, amount string, c ledger.Category, prio, days int) string {
		p := credit(acct, amt(t, amount), key)
		p.Terms = ledger.GrantTerms{Category: c, Priority: prio}
		if days > 0 {
			p.Terms.ExpiresAt = at(days)
		}
		return f.postOK(p).GrantID
	}
	spent := grant(a.ID, "spent", "1.00", ledger.Promotional, 0, 1)
	f.postOK(usage(a.ID, amt(t, "1.00"), "u1"))
	later := grant(a.ID, "later", "5.00", ledger.Paid, 50, 10)
	soon := grant(a.ID, "soon", "2.00", ledger.Promotional, 10, 3)
	never := grant(a.ID, "never", "1.00", ledger.Paid, 50, 0)
	grant(a.ID, "far", "4.00", ledger.Paid, 50, 40)
	other := grant(b.ID, "other", "9.00", ledger.Promotional, 10, 2)

	names := map[string]string{spent: "spent", later: "later", soon: "soon", never: "never", other: "other"}
	list := func(gs []ledger.Grant) []string {
		var out []string
		for _, g := range gs {
			out = append(out, names[g.ID]+":"+g.Remaining.Format(usd))
		}
		return out
	}
	gs, err := f.s.GrantsExpiringBefore(ctx(t), a.ID, at(30), 10)
	if got := list(gs); err != nil || strings.Join(got, " ") != "soon:2.00 later:5.00" {
		t.Errorf("grants of A expiring within 30 days = %v, %v; want soon:2.00 later:5.00 (not the used one, the one never expiring, the one in 40 days or B's)", got, err)
	}
	if gs[0].Category != ledger.Promotional || !gs[0].ExpiresAt.Equal(at(3)) || gs[0].Amount != amt(t, "2.00") {
		t.Errorf("the soonest reads %+v; want promotional 2.00 expiring in 3 days", gs[0])
	}
	if gs, err := f.s.GrantsExpiringBefore(ctx(t), a.ID, at(30), 1); err != nil || len(gs) != 1 || gs[0].ID != soon {
		t.Errorf("with limit 1: %v, %v; want the soonest alone", list(gs), err)
	}

	byID, err := f.s.GrantsByID(ctx(t), a.ID, []string{soon, never, other, "grt_none"})
	if err != nil || len(byID) != 2 || byID[soon].Category != ledger.Promotional || !byID[never].ExpiresAt.IsZero() || byID[never].Category != ledger.Paid {
		t.Errorf("A's grants by id = %+v, %v; want soon and never, not B's or an unknown one", byID, err)
	}
	if byID, err := f.s.GrantsByID(ctx(t), a.ID, nil); err != nil || len(byID) != 0 {
		t.Errorf("no ids: %v, %v; want none", byID, err)
	}
}
