package web_test

import (
	"context"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/topup/topup/internal/clock"
)

// grant credits an account through the API with the grant's terms in
// extra (`"category":"paid","expires_at":"…"`), and returns the grant's id.
func (e *env) grant(a account, amount, key, extra string) string {
	e.t.Helper()
	g, _ := e.grantEntry(a, amount, key, extra)
	return g
}

// grantEntry is grant that also returns the credit's entry (the grant's
// source_id).
func (e *env) grantEntry(a account, amount, key, extra string) (grantID, entryID string) {
	e.t.Helper()
	body := fmt.Sprintf(`{"amount":%q,"idempotency_key":%q,"description":"credit %s"`, amount, key, key)
	if extra != "" {
		body += "," + extra
	}
	var r struct {
		GrantID string `json:"grant_id"`
		EntryID string `json:"entry_id"`
	}
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/credits", adminKey, body+"}", 201, &r)
	if r.GrantID == "" {
		e.t.Fatalf("the credit %s made no grant", key)
	}
	return r.GrantID, r.EntryID
}

// short is the console's short form of an id: "grt_…" and its last six
// characters.
func short(id string) string { return id[:strings.Index(id, "_")+1] + "…" + id[len(id)-6:] }

var tagRE = regexp.MustCompile(`<[^>]*>`)

// textOf is an element's text as a person reads it: the markup from
// `id="id"` to the end of its element named tag, tags removed, spaces
// collapsed.
func textOf(t *testing.T, body, tag, id string) string {
	t.Helper()
	start := strings.Index(body, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("the page has no element %s", id)
	}
	end := strings.Index(body[start:], "</"+tag+">")
	if end < 0 {
		t.Fatalf("element %s has no end", id)
	}
	return readable(body[start+strings.Index(body[start:], ">")+1 : start+end])
}

// TestOverviewShowsCredit: the overview shows what remains of paid and
// promotional credit, the grants expiring within 30 days (amount, category
// and date; not one expiring later), and in the transactions what funded
// each usage (grant and category, or overdraft) and the grant each credit
// made (category and expiry).
func TestOverviewShowsCredit(t *testing.T) {
	t.Parallel()
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, envOptions{clock: clk})
	a := e.account("ada@example.com", "")
	soon := e.grant(a, "5.00", "soon", `"expires_at":"2026-11-23T09:00:00Z"`)
	paid := e.grant(a, "12.34", "paid", `"category":"paid"`)
	later := e.grant(a, "2.50", "later", `"expires_at":"2027-01-04T12:00:00Z"`)
	e.usage(a, "1.20", "u1", "chat completion")

	br, _ := e.signedIn(a)
	p := br.get("/console/accounts/" + a.ID)
	if p.status != 200 {
		t.Fatalf("the overview answered %d:\n%s", p.status, p.body)
	}
	if got := textOf(t, p.body, "p", "balance"); got != "$18.64" {
		t.Errorf("the balance reads %q; want $18.64", got)
	}
	if got := textOf(t, p.body, "dl", "credit"); got != "Paid $12.34 Promotional $6.30" {
		t.Errorf("the credit split reads %q; want Paid $12.34 Promotional $6.30", got)
	}
	if strings.Contains(p.body, `id="credit-overdraft"`) {
		t.Errorf("the overview shows an overdraft on an account in credit")
	}
	if got, want := textOf(t, p.body, "div", "expiring"), "Expiring in the next 30 days $3.80 promotional credit expires 23 Nov 2026, 09:00 UTC"; got != want {
		t.Errorf("the expiring list reads %q; want %q (not the grant expiring in 45 days)", got, want)
	}
	for _, tc := range []struct{ desc, want string }{
		{"chat completion", "Usage promotional " + short(soon) + " $1.20 −$1.20 $18.64"},
		{"credit soon", "promotional grant " + short(soon) + ", expires 23 Nov 2026, 09:00 UTC +$5.00"},
		{"credit paid", "paid grant " + short(paid) + ", never expires +$12.34"},
		{"credit later", "promotional grant " + short(later) + ", expires 4 Jan 2027, 12:00 UTC +$2.50"},
	} {
		if got := rowWith(t, p.body, tc.desc); !strings.Contains(got, tc.want) {
			t.Errorf("the row of %q reads %q; want %q in it", tc.desc, got, tc.want)
		}
	}
	if !strings.Contains(p.body, `title="`+soon+`"`) {
		t.Errorf("the short grant id does not carry the whole id in its title")
	}
}

// readable is markup as text: tags removed, entities decoded, spaces
// collapsed.
func readable(markup string) string {
	s := strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(markup, " "))), " ")
	return strings.ReplaceAll(s, " ,", ",")
}

// rowWith is the text of the transactions row whose description is desc.
func rowWith(t *testing.T, body, desc string) string {
	t.Helper()
	i := strings.Index(body, `class="desc c-desc">`+desc+`<`)
	if i < 0 {
		t.Fatalf("no transaction %q", desc)
	}
	start := strings.LastIndex(body[:i], "<tr ")
	end := strings.Index(body[i:], "</tr>")
	return readable(body[start : i+end])
}

// TestOverviewShowsOverdraft: usage beyond every grant is funded by the
// grant and then by overdraft, shown as such; the overview shows the
// overdraft and that nothing expires.
func TestOverviewShowsOverdraft(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("bob@example.com", "")
	g := e.grant(a, "1.00", "small", "")
	e.usage(a, "1.50", "u1", "big job")
	br, _ := e.signedIn(a)
	p := br.get("/console/accounts/" + a.ID)
	for id, want := range map[string]string{"credit-paid": "$0.00", "credit-promotional": "$0.00", "credit-overdraft": "−$0.50"} {
		if got := textOf(t, p.body, "dd", id); got != want {
			t.Errorf("#%s reads %q; want %q", id, got, want)
		}
	}
	if got := textOf(t, p.body, "div", "expiring"); !strings.Contains(got, "No credit expires in the next 30 days.") {
		t.Errorf("the expiring list reads %q; want nothing expiring", got)
	}
	if got, want := rowWith(t, p.body, "big job"), "Usage promotional "+short(g)+" $1.00 overdraft $0.50 −$1.50 −$0.50"; !strings.Contains(got, want) {
		t.Errorf("the usage row reads %q; want %q in it", got, want)
	}
}

// TestOverviewCapsExpiring: at most five expiring grants are listed,
// soonest first, with a way to the rest.
func TestOverviewCapsExpiring(t *testing.T) {
	t.Parallel()
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, envOptions{clock: clk})
	a := e.account("cy@example.com", "")
	for i := 7; i >= 1; i-- {
		e.grant(a, fmt.Sprintf("%d.00", i), fmt.Sprintf("g%d", i), fmt.Sprintf(`"expires_at":"2026-11-%dT09:00:00Z"`, 20+i))
	}
	br, _ := e.signedIn(a)
	got := textOf(t, br.get("/console/accounts/"+a.ID).body, "div", "expiring")
	want := "Expiring in the next 30 days $1.00 promotional credit expires 21 Nov 2026, 09:00 UTC $2.00 promotional credit expires 22 Nov 2026, 09:00 UTC " +
		"$3.00 promotional credit expires 23 Nov 2026, 09:00 UTC $4.00 promotional credit expires 24 Nov 2026, 09:00 UTC " +
		"$5.00 promotional credit expires 25 Nov 2026, 09:00 UTC More credit expires soon: see the active grants"
	if got != want {
		t.Errorf("the expiring list reads\n%q; want\n%q", got, want)
	}
}

// TestCreditPage lists the grants as GET …/grants does: category, source,
// amount, remaining, priority, expiry and status, newest first, filtered
// by status; an unknown status is refused; another account's page is 404.
func TestCreditPage(t *testing.T) {
	t.Parallel()
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, envOptions{clock: clk})
	a, b := e.account("ada@example.com", ""), e.account("b-secret@example.com", "7.00")
	spent, spentEntry := e.grantEntry(a, "1.00", "spent", `"priority":0`)
	paid, paidEntry := e.grantEntry(a, "12.34", "paid", `"category":"paid","priority":30,"expires_at":"2027-02-01T00:00:00Z"`)
	e.usage(a, "1.25", "u1", "")
	br, _ := e.signedIn(a)
	base := "/console/accounts/" + a.ID + "/credit"

	p := br.get(base)
	if p.status != 200 || !strings.Contains(p.body, `aria-current="page">Credit</a>`) {
		t.Fatalf("the Credit page answered %d, or does not mark Credit in the navigation:\n%s", p.status, p.body)
	}
	for id, want := range map[string]string{
		paid:  short(paid) + " paid Credit " + short(paidEntry) + " $12.34 $12.09 30 1 Feb 2027, 00:00 UTC Active 20 Nov 2026, 09:00 UTC",
		spent: short(spent) + " promotional Credit " + short(spentEntry) + " $1.00 $0.00 0 Never Used 20 Nov 2026, 09:00 UTC",
	} {
		if got := textOf(t, p.body, "tr", id); got != want {
			t.Errorf("the grant row %s reads\n%q; want\n%q", id, got, want)
		}
	}
	if i, j := strings.Index(p.body, `<tr id="`+paid), strings.Index(p.body, `<tr id="`+spent); i < 0 || j < i {
		t.Errorf("the grants are not newest first")
	}
	if got := textOf(t, p.body, "dl", "credit"); got != "Paid $12.09 Promotional $0.00" {
		t.Errorf("the Credit page's split reads %q", got)
	}

	used := br.get(base + "?status=used")
	if !strings.Contains(used.body, `<tr id="`+spent) || strings.Contains(used.body, `<tr id="`+paid) ||
		!strings.Contains(used.body, `href="`+base+`?status=used" aria-current="page">Used</a>`) {
		t.Errorf("?status=used does not list only the used grant, marked as the current filter:\n%s", used.body)
	}
	if p := br.get(base + "?status=voided"); !strings.Contains(p.body, "No voided grants.") {
		t.Errorf("?status=voided does not say there are none")
	}
	if p := br.get(base + "?status=spent"); p.status != 400 || !strings.Contains(p.body, "Must be active, used, expired or voided.") {
		t.Errorf("?status=spent answered %d; want 400 naming the statuses:\n%s", p.status, p.body)
	}
	if p := br.get("/console/accounts/" + b.ID + "/credit"); p.status != 404 || strings.Contains(p.body, "b-secret") || strings.Contains(p.body, "7.00") {
		t.Errorf("another account's Credit page answered %d; want 404 telling nothing", p.status)
	}
	h := p.header
	if h.Get("Cache-Control") != "no-store" || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self';") ||
		strings.Contains(p.body, "<script>") || strings.Contains(p.body, ` style="`) {
		t.Errorf("the Credit page's headers %v or body break the console's CSP conventions", h)
	}
}

// TestCreditPagePaging: 25 grants make two pages, kept within the status
// filter.
func TestCreditPagePaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "")
	var ids []string
	for i := range 25 {
		ids = append(ids, e.grant(a, "1.00", fmt.Sprintf("g%d", i), ""))
	}
	br, _ := e.signedIn(a)
	base := "/console/accounts/" + a.ID + "/credit?status=active"
	first := br.get(base)
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if n := strings.Count(first.body, `<tr id="grt_`); n != 20 || next == nil {
		t.Fatalf("the first page lists %d grants (next %v); want 20 and a next page", n, next)
	}
	second := br.get(unescape(next[1]))
	if n := strings.Count(second.body, `<tr id="grt_`); n != 5 || !strings.Contains(second.body, `<tr id="`+ids[0]+`"`) ||
		strings.Contains(second.body, `rel="next"`) || !strings.Contains(unescape(next[1]), "status=active&starting_after=") {
		t.Errorf("the second page (%s) lists %d grants; want the 5 oldest, the filter kept, no next page", next[1], n)
	}
}

// TestCreditInChromium: in real Chromium, the overview a customer signs
// into shows paid and promotional credit, the grant that expires within
// 30 days (what remains of it and when), and what funded a usage; the
// Credit page, reached from the navigation, lists the grants. It writes
// screenshots of both pages (see TestConsoleInChromium).
func TestCreditInChromium(t *testing.T) {
	needChromium(t)
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, envOptions{clock: clk})
	a := e.account("ada@example.com", "")
	e.grant(a, "12.34", "paid", `"category":"paid"`)
	soon := e.grant(a, "5.00", "welcome", `"expires_at":"2026-11-23T09:00:00Z"`)
	e.grant(a, "2.50", "referral", "")
	e.usage(a, "0.75", "u1", "chat completion")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := startChromium(t, ctx, screenshotDir(t))
	link, _ := e.loginLink(a)
	b.do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("sign-in")), chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("balance")))
	for sel, want := range map[string]string{
		"#balance":                     "$19.09",
		"#credit-paid":                 "$12.34",
		"#credit-promotional":          "$6.75",
		"#expiring li":                 "$4.25 promotional credit expires 23 Nov 2026, 09:00 UTC",
		"#transactions tbody .c-grant": "promotional " + short(soon) + " $0.75",
	} {
		if got := strings.Join(strings.Fields(b.text(sel)), " "); got != want {
			t.Errorf("%s reads %q; want %q", sel, got, want)
		}
	}
	if n := b.eval(`document.querySelectorAll('#expiring li').length`); n != float64(1) {
		t.Errorf("the overview lists %v expiring grants; want 1 (the others never expire)", n)
	}
	b.shoot("23-overview-credit")

	b.do(chromedp.Click(chromedp.CSS(`.nav a[href$="/credit"]`)), chromedp.WaitVisible(chromedp.ID("grants")))
	if n := b.eval(`document.querySelectorAll('#grants tbody tr').length`); n != float64(3) {
		t.Errorf("the Credit page lists %v grants; want 3", n)
	}
	if got := strings.Join(strings.Fields(b.text("#"+soon)), " "); !strings.Contains(got, "promotional Credit") ||
		!strings.Contains(got, "$5.00 $4.25 10 23 Nov 2026, 09:00 UTC Active") {
		t.Errorf("the expiring grant's row reads %q", got)
	}
	b.shoot("24-credit-grants")
}

// TestOverviewShowsHolds: with credit on hold the overview shows what is
// held, what is available, and each active hold; a released one leaves the
// list, and without holds neither shows.
func TestOverviewShowsHolds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("hal@example.com", "")
	e.grant(a, "20.00", "g1", "")
	var h1, h2 struct {
		ID string `json:"id"`
	}
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/holds", adminKey, `{"amount":"5.00","idempotency_key":"h1","subject":"gpu-7","description":"render job"}`, 201, &h1)
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/holds", adminKey, `{"amount":"2.50","idempotency_key":"h2"}`, 201, &h2)
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/holds/"+h2.ID+"/release", adminKey, ``, 200, nil)
	br, _ := e.signedIn(a)
	p := br.get("/console/accounts/" + a.ID)
	for id, want := range map[string]string{"held-amount": "$5.00", "available": "$15.00"} {
		if got := textOf(t, p.body, "dd", id); got != want {
			t.Errorf("#%s reads %q; want %q", id, got, want)
		}
	}
	if got := textOf(t, p.body, "tr", "hold-"+h1.ID); !strings.Contains(got, short(h1.ID)+" gpu-7 render job $5.00") {
		t.Errorf("the hold's row reads %q", got)
	}
	if strings.Contains(p.body, "hold-"+h2.ID) {
		t.Errorf("the released hold %s is still listed", h2.ID)
	}
	b := e.account("nohold@example.com", "")
	e.grant(b, "1.00", "g2", "")
	br2, _ := e.signedIn(b)
	if p := br2.get("/console/accounts/" + b.ID); strings.Contains(p.body, `id="held"`) || strings.Contains(p.body, `id="holds"`) {
		t.Errorf("an account without holds shows held credit or a holds section")
	}
}
