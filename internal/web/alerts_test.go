package web_test

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/topup/topup/internal/notify"
)

// The Low Balance Alert, Budgets and Notifications pages: each renders for
// its owner, refuses another account (404) and a form without its CSRF
// token (403), and goes through the API's own saves, so a refusal is the
// API's, shown beside its field, with nothing saved.

// thresholds reads an account's low balance alert thresholds via the API.
func (e *env) thresholds(a account) []string {
	e.t.Helper()
	var out struct{ Thresholds []string }
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/low_balance_alerts", adminKey, "", 200, &out)
	return out.Thresholds
}

type budgetJSON struct {
	ID        string  `json:"id"`
	Subject   *string `json:"subject"`
	Kind      string  `json:"kind"`
	Limit     *string `json:"limit"`
	Spent     string  `json:"spent"`
	Exhausted bool    `json:"exhausted"`
}

// budgets reads an account's budgets via the API.
func (e *env) budgets(a account) []budgetJSON {
	e.t.Helper()
	var out struct{ Data []budgetJSON }
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/budgets", adminKey, "", 200, &out)
	return out.Data
}

// endpoints reads an account's webhook endpoint ids via the API.
func (e *env) endpoints(a account) []string {
	e.t.Helper()
	var out struct{ Data []struct{ ID string } }
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/webhook_endpoints", adminKey, "", 200, &out)
	var ids []string
	for _, d := range out.Data {
		ids = append(ids, d.ID)
	}
	return ids
}

// fieldError returns the text beside the field id (its id-error
// paragraph), and whether the field is marked invalid.
func fieldError(t *testing.T, body, id string) (string, bool) {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `-error">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page has no error paragraph for %s", id)
	}
	invalid := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*aria-invalid="true"`).MatchString(body)
	return unescape(m[1]), invalid
}

func unescape(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}

// TestAlertPagesRender: the three pages answer their owner with what is
// saved, each marked in the navigation.
func TestAlertPagesRender(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "30.00")
	e.mustAPI("PUT", "/v1/accounts/"+a.ID+"/low_balance_alerts", a.Key, `{"thresholds":["5.00","20.00"]}`, 200, nil)
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/budgets", a.Key, `{"subject":"key_1","kind":"monthly","limit":"10.00"}`, 201, nil)
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/budgets", a.Key, `{"kind":"unlimited"}`, 201, nil)
	br, _ := e.signedIn(a)
	base := "/console/accounts/" + a.ID
	for _, tt := range []struct {
		path, nav string
		want      []string
	}{
		{"/low_balance_alerts", "Alerts", []string{`id="threshold-1"`, `value="20.00"`, `value="5.00"`, "Add a threshold",
			"one alert per amount per day", "armed again", "Your balance is <strong id=\"alerts-balance\">$30.00</strong>"}},
		{"/budgets", "Budgets", []string{"key_1", "Monthly", "$0.00</strong> spent of $10.00", "On track: $10.00 left.", "All usage", "Unlimited",
			"No limit: this budget only tracks what the whole account spends.", `aria-valuetext="0% of $10.00 spent"`}},
		{"/notifications", "Notifications", []string{"What you were told", "Nothing yet", "ada@example.com", "No webhook endpoint", `id="url"`}},
	} {
		p := br.get(base + tt.path)
		if p.status != 200 {
			t.Fatalf("GET %s answered %d:\n%s", tt.path, p.status, p.body)
		}
		if !strings.Contains(p.body, `aria-current="page">`+tt.nav+`</a>`) {
			t.Errorf("GET %s: the navigation does not mark %s as the current page", tt.path, tt.nav)
		}
		for _, w := range tt.want {
			if !strings.Contains(p.body, w) {
				t.Errorf("GET %s does not show %q", tt.path, w)
			}
		}
	}
}

// TestAlertPagesOfAnotherAccount: a session of A gets 404 on B's pages and
// forms, learns nothing of B, and changes nothing.
func TestAlertPagesOfAnotherAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a, b := e.account("a@example.com", "5.00"), e.account("b-secret@example.com", "7.00")
	e.mustAPI("PUT", "/v1/accounts/"+b.ID+"/low_balance_alerts", adminKey, `{"thresholds":["20.00"]}`, 200, nil)
	var bud, ep struct{ ID string }
	e.mustAPI("POST", "/v1/accounts/"+b.ID+"/budgets", adminKey, `{"subject":"b-key","kind":"monthly","limit":"10.00"}`, 201, &bud)
	e.mustAPI("POST", "/v1/accounts/"+b.ID+"/webhook_endpoints", adminKey, `{"url":"https://93.184.215.14/b"}`, 201, &ep)
	br, csrf := e.signedIn(a)
	base := "/console/accounts/" + b.ID
	for _, path := range []string{base + "/low_balance_alerts", base + "/budgets", base + "/notifications"} {
		if p := br.get(path); p.status != 404 || strings.Contains(p.body, "b-secret") || strings.Contains(p.body, "b-key") {
			t.Errorf("GET %s by another account's session answered %d; want 404 telling nothing of B", path, p.status)
		}
	}
	form := url.Values{"csrf": {csrf}, "threshold": {"30"}, "amount": {"20.00"}, "subject": {"x"}, "kind": {"monthly"}, "limit": {"1"},
		"url": {"https://93.184.215.14/a"}}
	for _, path := range []string{base + "/low_balance_alerts", base + "/low_balance_alerts/remove", base + "/budgets", base + "/budgets/" + bud.ID,
		base + "/budgets/" + bud.ID + "/delete", base + "/webhook_endpoints", base + "/webhook_endpoints/" + ep.ID + "/delete"} {
		if p := br.post(path, form); p.status != 404 {
			t.Errorf("POST %s by another account's session answered %d; want 404", path, p.status)
		}
	}
	// A's own forms cannot reach B's budget or endpoint by id either.
	own := "/console/accounts/" + a.ID
	for _, path := range []string{own + "/budgets/" + bud.ID, own + "/budgets/" + bud.ID + "/delete", own + "/webhook_endpoints/" + ep.ID + "/delete"} {
		if p := br.post(path, form); p.status != 404 {
			t.Errorf("POST %s (B's id under A) answered %d; want 404", path, p.status)
		}
	}
	if got := e.thresholds(b); !slices.Equal(got, []string{"20.00"}) {
		t.Errorf("B's thresholds after A's posts = %v; want [20.00]", got)
	}
	if got := e.budgets(b); len(got) != 1 || *got[0].Limit != "10.00" {
		t.Errorf("B's budgets after A's posts = %+v; want the one, limit 10.00", got)
	}
	if got := e.endpoints(b); len(got) != 1 {
		t.Errorf("B's endpoints after A's posts = %v; want the one", got)
	}
}

// TestAlertFormsNeedTheCSRFToken: every new form without the session's
// token is refused (403) and nothing changes.
func TestAlertFormsNeedTheCSRFToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "5.00")
	e.mustAPI("PUT", "/v1/accounts/"+a.ID+"/low_balance_alerts", adminKey, `{"thresholds":["20.00"]}`, 200, nil)
	var bud, ep struct{ ID string }
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/budgets", adminKey, `{"subject":"key_1","kind":"monthly","limit":"10.00"}`, 201, &bud)
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/webhook_endpoints", adminKey, `{"url":"https://93.184.215.14/a"}`, 201, &ep)
	br, csrf := e.signedIn(a)
	base := "/console/accounts/" + a.ID
	forms := map[string]url.Values{
		base + "/low_balance_alerts":                     {"threshold": {"30.00"}},
		base + "/low_balance_alerts/remove":              {"amount": {"20.00"}},
		base + "/budgets":                                {"subject": {"key_2"}, "kind": {"monthly"}, "limit": {"5"}},
		base + "/budgets/" + bud.ID:                      {"limit": {"99"}},
		base + "/budgets/" + bud.ID + "/delete":          {},
		base + "/webhook_endpoints":                      {"url": {"https://93.184.215.14/b"}},
		base + "/webhook_endpoints/" + ep.ID + "/delete": {},
	}
	for path, form := range forms {
		for _, token := range []string{"", csrf + "x"} {
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
	if got := e.thresholds(a); !slices.Equal(got, []string{"20.00"}) {
		t.Errorf("thresholds after refused forms = %v; want [20.00]", got)
	}
	if got := e.budgets(a); len(got) != 1 || *got[0].Limit != "10.00" {
		t.Errorf("budgets after refused forms = %+v; want the one, limit 10.00", got)
	}
	if got := e.endpoints(a); !slices.Equal(got, []string{ep.ID}) {
		t.Errorf("endpoints after refused forms = %v; want [%s]", got, ep.ID)
	}
	// With the token the same form works.
	if p := br.post(base+"/low_balance_alerts", url.Values{"csrf": {csrf}, "threshold": {"30.00"}}); p.status != 303 {
		t.Errorf("the alerts form with its token answered %d; want 303", p.status)
	}
}

// TestLowBalanceAlertForm saves thresholds as typed (a currency sign and
// blank rows are fine), removes one, switches them off, and shows each
// refusal beside the field at fault with nothing saved.
func TestLowBalanceAlertForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "30.00")
	br, csrf := e.signedIn(a)
	path := "/console/accounts/" + a.ID + "/low_balance_alerts"
	save := func(values ...string) page {
		t.Helper()
		return br.post(path, url.Values{"csrf": {csrf}, "threshold": values})
	}

	p := save("$20", "", "5.00")
	if p.status != 303 || p.header.Get("Location") != path+"?done=alerts_saved" {
		t.Fatalf("Save alerts answered %d to %q; want 303 back to the page", p.status, p.header.Get("Location"))
	}
	if got := e.thresholds(a); !slices.Equal(got, []string{"20.00", "5.00"}) {
		t.Fatalf("thresholds saved = %v; want [20.00 5.00]", got)
	}
	if p := br.get(path + "?done=alerts_saved"); !strings.Contains(p.body, "You are told when your balance goes below $20.00 or $5.00.") ||
		!strings.Contains(p.body, "Armed: you are told when your balance goes below $20.00.") {
		t.Errorf("the page after saving does not say what the alerts do:\n%s", p.body)
	}

	tests := []struct {
		name   string
		values []string
		field  string // the field the refusal is beside
		want   string
	}{
		{"too close", []string{"20.00", "17.50"}, "threshold-2", "Must be at least $5.00 away from $20.00."},
		{"below the range", []string{"0.50"}, "threshold-1", "Must be from $1.00 to $1,000.00."},
		{"above the range", []string{"20.00", "1000.01"}, "threshold-2", "Must be from $1.00 to $1,000.00."},
		{"fractional cents", []string{"10.005"}, "threshold-1", "Must be in whole cents (at most 2 decimals)."},
		{"twice the same", []string{"20", "20.00"}, "threshold-2", "Is already in the list."},
		{"not an amount", []string{"20.00", "lots"}, "threshold-2", "Must be an amount such as $10.00."},
		{"more than five", []string{"10", "20", "30", "40", "50", "60"}, "thresholds", "You can have at most 5 thresholds: empty a field or remove one."},
	}
	for _, tt := range tests {
		p := save(tt.values...)
		if p.status != http.StatusBadRequest {
			t.Errorf("%s: Save answered %d; want 400", tt.name, p.status)
			continue
		}
		got, invalid := fieldError(t, p.body, tt.field)
		if got != tt.want || (tt.field != "thresholds" && !invalid) {
			t.Errorf("%s: beside %s: %q (aria-invalid %v); want %q, marked invalid", tt.name, tt.field, got, invalid, tt.want)
		}
		if !strings.Contains(p.body, "Nothing was saved") {
			t.Errorf("%s: the page does not say that nothing was saved", tt.name)
		}
		for _, v := range tt.values {
			if !strings.Contains(p.body, `value="`+v+`"`) {
				t.Errorf("%s: the form lost the value typed, %q", tt.name, v)
			}
		}
		if got := e.thresholds(a); !slices.Equal(got, []string{"20.00", "5.00"}) {
			t.Errorf("%s: thresholds after the refusal = %v; want [20.00 5.00] unchanged", tt.name, got)
		}
	}

	if p := br.post(path+"/remove", url.Values{"csrf": {csrf}, "amount": {"20.00"}}); p.status != 303 {
		t.Fatalf("Remove answered %d; want 303", p.status)
	}
	if got := e.thresholds(a); !slices.Equal(got, []string{"5.00"}) {
		t.Errorf("thresholds after removing 20.00 = %v; want [5.00]", got)
	}
	if p := save("", ""); p.status != 303 || !strings.HasSuffix(p.header.Get("Location"), "done=alerts_off") {
		t.Errorf("saving no threshold answered %d to %q; want 303, alerts off", p.status, p.header.Get("Location"))
	}
	if got := e.thresholds(a); len(got) != 0 {
		t.Errorf("thresholds after saving none = %v; want none", got)
	}
}

// TestBudgetsForm creates, changes and deletes budgets through the page;
// a second budget of one subject is refused (409) beside Subject, bad input
// beside its field, nothing saved; an exhausted budget says to pause.
func TestBudgetsForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "100.00")
	br, csrf := e.signedIn(a)
	path := "/console/accounts/" + a.ID + "/budgets"
	create := func(subject, kind, limit string) page {
		t.Helper()
		return br.post(path, url.Values{"csrf": {csrf}, "subject": {subject}, "kind": {kind}, "limit": {limit}})
	}
	for _, b := range [][3]string{{"", "monthly", "50"}, {"key_1", "one_time", "$10.00"}, {"team-b", "unlimited", ""}} {
		if p := create(b[0], b[1], b[2]); p.status != 303 || !strings.HasPrefix(p.header.Get("Location"), path+"?done=created#budget-bud_") {
			t.Fatalf("creating %v answered %d to %q; want 303 to the new budget", b, p.status, p.header.Get("Location"))
		}
	}
	if n := len(e.budgets(a)); n != 3 {
		t.Fatalf("the account has %d budgets; want 3", n)
	}

	refusals := []struct {
		name, subject, kind, limit string
		status                     int
		field, want                string
	}{
		{"the same subject", "key_1", "monthly", "20", 409, "subject", "There is already a budget for “key_1”: change its limit, or delete it first."},
		{"a second account-wide", "", "one_time", "20", 409, "subject", "The account already has an account-wide budget: change its limit, or delete it first."},
		{"no limit", "key_2", "monthly", "", 400, "limit", "Is required for a monthly budget."},
		{"fractional cents", "key_2", "monthly", "10.001", 400, "limit", "Must be in whole cents (at most 2 decimals)."},
		{"a limit on unlimited", "key_2", "unlimited", "5", 400, "limit", "An unlimited budget has no limit; leave it out."},
		{"an unknown kind", "key_2", "weekly", "5", 400, "kind", "Must be unlimited, one_time or monthly."},
	}
	for _, tt := range refusals {
		p := create(tt.subject, tt.kind, tt.limit)
		if p.status != tt.status {
			t.Errorf("%s: Create answered %d; want %d", tt.name, p.status, tt.status)
			continue
		}
		got, invalid := fieldError(t, p.body, tt.field)
		if got != tt.want || (tt.field != "kind" && !invalid) {
			t.Errorf("%s: beside %s: %q (aria-invalid %v); want %q, marked invalid", tt.name, tt.field, got, invalid, tt.want)
		}
		if !strings.Contains(p.body, "No budget was created") {
			t.Errorf("%s: the page does not say that nothing was created", tt.name)
		}
	}
	if n := len(e.budgets(a)); n != 3 {
		t.Errorf("after the refusals the account has %d budgets; want 3", n)
	}

	var key1, teamB string
	for _, b := range e.budgets(a) {
		switch {
		case b.Subject != nil && *b.Subject == "key_1":
			key1 = b.ID
		case b.Subject != nil && *b.Subject == "team-b":
			teamB = b.ID
		}
	}
	if p := br.post(path+"/"+key1, url.Values{"csrf": {csrf}, "limit": {"0"}}); p.status != 400 {
		t.Errorf("a limit of 0 answered %d; want 400", p.status)
	} else if got, invalid := fieldError(t, p.body, "limit-"+key1); got != "Must be greater than zero." || !invalid {
		t.Errorf("beside key_1's limit: %q (aria-invalid %v); want the refusal", got, invalid)
	}
	if p := br.post(path+"/"+key1, url.Values{"csrf": {csrf}, "limit": {"8"}}); p.status != 303 {
		t.Errorf("changing the limit answered %d; want 303", p.status)
	}
	if p := br.post(path+"/"+teamB+"/delete", url.Values{"csrf": {csrf}}); p.status != 303 {
		t.Errorf("Delete answered %d; want 303", p.status)
	}
	got := e.budgets(a)
	if len(got) != 2 || slices.ContainsFunc(got, func(b budgetJSON) bool { return b.ID == teamB }) {
		t.Errorf("budgets after deleting team-b = %+v; want two", got)
	}

	e.usageOf(a, "8.00", "u1", "key_1")
	p := br.get(path)
	card := regexp.MustCompile(`(?s)<article[^>]*id="budget-` + key1 + `".*?</article>`).FindString(p.body)
	for _, want := range []string{"$8.00</strong> spent of $8.00", "Exhausted: usage for this subject should be paused.", `aria-valuenow="100"`, "One-time"} {
		if !strings.Contains(card, want) {
			t.Errorf("key_1's card does not show %q:\n%s", want, card)
		}
	}
	if !strings.Contains(p.body, "$8.00</strong> spent of $50.00") || !strings.Contains(p.body, "On track: $42.00 left.") {
		t.Errorf("the account-wide budget does not count key_1's usage:\n%s", p.body)
	}
}

// TestBudgetSubjectIsText: a subject with HTML in it is shown as text.
func TestBudgetSubjectIsText(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "10.00")
	br, csrf := e.signedIn(a)
	evil := `<script>alert("pwned")</script><img src=x onerror=alert(1)>`
	path := "/console/accounts/" + a.ID + "/budgets"
	if p := br.post(path, url.Values{"csrf": {csrf}, "subject": {evil}, "kind": {"monthly"}, "limit": {"5"}}); p.status != 303 {
		t.Fatalf("creating the budget answered %d", p.status)
	}
	e.usageOf(a, "3.00", "u1", evil)
	for _, page := range []string{path, "/console/accounts/" + a.ID + "/notifications"} {
		p := br.get(page)
		if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<img src=x") {
			t.Fatalf("%s carries the subject's HTML as markup:\n%s", page, p.body)
		}
		if !strings.Contains(p.body, `&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;`) {
			t.Errorf("%s does not show the subject as text:\n%s", page, p.body)
		}
	}
	// A refusal that repeats the subject (409) escapes it too.
	p := br.post(path, url.Values{"csrf": {csrf}, "subject": {evil}, "kind": {"monthly"}, "limit": {"5"}})
	if p.status != 409 || strings.Contains(p.body, "<script>alert") {
		t.Errorf("the duplicate answered %d with the subject as markup: %v", p.status, strings.Contains(p.body, "<script>alert"))
	}
}

// TestNotificationsPage: what the account was told, in words, newest
// first and a page at a time: a low balance and a budget crossing after
// usage through the API, and a payment to confirm with its link while it
// waits.
func TestNotificationsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("ada@example.com", "25.00")
	br, csrf := e.signedIn(a)
	base := "/console/accounts/" + a.ID
	if p := br.post(base+"/low_balance_alerts", url.Values{"csrf": {csrf}, "threshold": {"20"}}); p.status != 303 {
		t.Fatalf("Save alerts answered %d", p.status)
	}
	if p := br.post(base+"/budgets", url.Values{"csrf": {csrf}, "subject": {"key_1"}, "kind": {"monthly"}, "limit": {"10"}}); p.status != 303 {
		t.Fatalf("Create budget answered %d", p.status)
	}
	e.usageOf(a, "5.50", "u1", "key_1")

	p := br.get(base + "/notifications")
	for _, want := range []string{"Low balance", "Balance fell below $20.00 (balance $19.50).",
		"Budget at 50%", "The budget for “key_1” reached 50%: $5.50 of $10.00 spent."} {
		if !strings.Contains(unescape(p.body), want) {
			t.Errorf("the notifications page does not say %q:\n%s", want, p.body)
		}
	}

	// A 3-D Secure card: the payment to confirm links to its page.
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_authenticationRequired"}`, 201, nil)
	var tu struct{ ID, Status string }
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/top_ups", a.Key, `{"amount":"10.00","idempotency_key":"3ds"}`, 201, &tu)
	if tu.Status != "requires_action" {
		t.Fatalf("the top-up is %s; want requires_action", tu.Status)
	}
	p = br.get(base + "/notifications")
	first := regexp.MustCompile(`(?s)<li class="event[^"]*" id="evt_[^"]*">.*?</li>`).FindString(p.body)
	if !strings.Contains(first, "Your bank asks you to confirm a payment of $10.00 (3-D Secure).") ||
		!strings.Contains(first, `href="`+e.url+`/console/pay/`+tu.ID+`?token=`) {
		t.Errorf("the newest notification is not the payment to confirm with its link:\n%s", first)
	}

	// Confirmed, it no longer offers the link, and says how it ended.
	link := regexp.MustCompile(`href="` + regexp.QuoteMeta(e.url) + `(/console/pay/[^"?]+)\?token=([^"]+)"`).FindStringSubmatch(first)
	if p := br.post(link[1], url.Values{"token": {unescape(link[2])}, "result": {"ok"}}); p.status != 303 && p.status != 200 {
		t.Fatalf("answering the challenge answered %d", p.status)
	}
	p = br.get(base + "/notifications")
	if !strings.Contains(p.body, "Top-up of $10.00 succeeded.") && !strings.Contains(p.body, "Manual top-up of $10.00 succeeded.") {
		t.Errorf("the top-up's success is not told:\n%s", p.body)
	}
	if strings.Contains(p.body, "/console/pay/") || !strings.Contains(p.body, "Confirmed: the payment succeeded.") {
		t.Errorf("the confirmed payment still offers its link, or does not say it is done:\n%s", p.body)
	}

	// 21 events more: the page shows 20, and the rest one click away.
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, nil)
	var cards struct{ Data []struct{ ID, Last4 string } }
	e.mustAPI("GET", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, "", 200, &cards)
	for _, c := range cards.Data {
		if c.Last4 == "4242" {
			e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods/"+c.ID+"/default", adminKey, "", 200, nil)
		}
	}
	for i := range 21 {
		e.mustAPI("POST", "/v1/accounts/"+a.ID+"/top_ups", a.Key, fmt.Sprintf(`{"amount":"1.00","idempotency_key":"buy-%d"}`, i), 201, nil)
	}
	p = br.get(base + "/notifications")
	if n := strings.Count(p.body, `<li class="event`); n != 20 {
		t.Errorf("the first page lists %d notifications; want 20", n)
	}
	if !strings.Contains(p.body, "Manual top-up of $1.00 succeeded.") || strings.Contains(p.body, "3-D Secure") {
		t.Errorf("the first page does not hold the newest top-ups only")
	}
	older := regexp.MustCompile(`href="([^"]*starting_after=evt_[^"]*)" rel="next"`).FindStringSubmatch(p.body)
	if older == nil {
		t.Fatalf("the first page has no link to older notifications")
	}
	p = br.get(unescape(older[1]))
	if n := strings.Count(p.body, `<li class="event`); n != 5 || !strings.Contains(p.body, "Balance fell below $20.00") || !strings.Contains(p.body, "← Newest") {
		t.Errorf("the second page lists %d notifications; want the 5 oldest and a way back:\n%s", n, p.body)
	}
}

// TestWebhookEndpointsOnNotificationsPage adds an endpoint (its secret is
// shown once, then only its prefix), shows each delivery attempt with its
// status and next try, refuses a URL that is not http(s) beside the field,
// and deletes it.
func TestWebhookEndpointsOnNotificationsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{allowPrivate: true})
	var hits atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(receiver.Close)
	a := e.account("ada@example.com", "25.00")
	br, csrf := e.signedIn(a)
	base := "/console/accounts/" + a.ID

	p := br.post(base+"/webhook_endpoints", url.Values{"csrf": {csrf}, "url": {"ftp://93.184.215.14/hook"}})
	if got, invalid := fieldError(t, p.body, "url"); p.status != 400 || got != "Must be an http or https URL." || !invalid {
		t.Errorf("an ftp URL answered %d with %q beside the field (aria-invalid %v); want 400 and the refusal", p.status, got, invalid)
	}
	if got := e.endpoints(a); len(got) != 0 {
		t.Fatalf("the refused endpoint was saved: %v", got)
	}

	p = br.post(base+"/webhook_endpoints", url.Values{"csrf": {csrf}, "url": {receiver.URL + "/hooks"}})
	secret := regexp.MustCompile(`id="secret" class="code" readonly value="(whsec_[^"]+)"`).FindStringSubmatch(p.body)
	if p.status != 200 || secret == nil || !strings.Contains(p.body, "shown only this once") {
		t.Fatalf("Add endpoint answered %d without the secret shown once:\n%s", p.status, p.body)
	}
	// Secrets are standard base64 (+, / and =), which the page escapes:
	// compare the text a person reads.
	whole := html.UnescapeString(secret[1])
	p = br.get(base + "/notifications")
	text := html.UnescapeString(p.body)
	if strings.Contains(text, whole) || !strings.Contains(text, whole[:12]+"…") || !strings.Contains(text, receiver.URL+"/hooks") {
		t.Errorf("the endpoint list shows the whole secret, or not its prefix and URL")
	}

	// An event, delivered once: the receiver answers 500, so a retry waits.
	e.mustAPI("PUT", "/v1/accounts/"+a.ID+"/low_balance_alerts", a.Key, `{"thresholds":["20.00"]}`, 200, nil)
	e.usage(a, "6.00", "u1", "inference")
	w, err := notify.New(e.store.Outbox, notify.Config{AllowPrivate: true, Clock: e.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Fatalf("the receiver was called %d times; want 1", hits.Load())
	}
	p = br.get(base + "/notifications")
	for _, want := range []string{"Low balance", "HTTP 500", "Next try "} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the endpoint's deliveries do not show %q:\n%s", want, p.body)
		}
	}

	ids := e.endpoints(a)
	if p := br.post(base+"/webhook_endpoints/"+ids[0]+"/delete", url.Values{"csrf": {csrf}}); p.status != 303 {
		t.Errorf("Delete answered %d; want 303", p.status)
	}
	if got := e.endpoints(a); len(got) != 0 {
		t.Errorf("endpoints after Delete = %v; want none", got)
	}
}
