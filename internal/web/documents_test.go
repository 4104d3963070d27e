package web_test

import (
	"encoding/csv"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/receipt/receipttest"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/web"
)

// TestConsoleDocuments: the history offers each succeeded top-up's
// receipt, which opens as HTML in a browser and downloads as a PDF; the
// statement form downloads the month as CSV or JSON; another account's
// session sees neither.
func TestConsoleDocuments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("docs@example.com", "50.00")
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, nil)
	var tu struct {
		ID string `json:"id"`
	}
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/top_ups", adminKey, `{"amount":"12.34","idempotency_key":"docs"}`, 201, &tu)
	br, _ := e.signedIn(a)
	base := web.Prefix + "/accounts/" + a.ID

	history := br.get(base + "/top_ups")
	receiptPath := base + "/top_ups/" + tu.ID + "/receipt"
	if history.status != 200 || !strings.Contains(history.body, `href="`+receiptPath+`"`) || !strings.Contains(history.body, `href="`+receiptPath+`?format=pdf"`) ||
		!strings.Contains(history.body, `action="`+base+`/statement"`) {
		t.Fatalf("the history (%d) offers no receipt or statement:\n%s", history.status, history.body)
	}

	get := func(path, accept string) page {
		t.Helper()
		req, err := http.NewRequest("GET", e.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := br.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	}
	html := get(receiptPath, "text/html,application/xhtml+xml,*/*;q=0.8")
	if html.status != 200 || !strings.HasPrefix(html.header.Get("Content-Type"), "text/html") || !regexp.MustCompile(`R-\d{6}`).MatchString(html.body) ||
		!strings.Contains(html.body, "12.34 USD") || !strings.Contains(html.header.Get("Content-Security-Policy"), "style-src 'sha256-") {
		t.Errorf("the receipt in a browser: %d %s %s\n%.400s", html.status, html.header.Get("Content-Type"), html.header.Get("Content-Security-Policy"), html.body)
	}
	pdf := get(receiptPath+"?format=pdf", "text/html")
	if pdf.status != 200 || pdf.header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("the PDF link: %d %s", pdf.status, pdf.header.Get("Content-Type"))
	}
	if text := receipttest.PDFText(t, []byte(pdf.body)); !strings.Contains(text, "12.34 USD") || !strings.Contains(text, "4242") {
		t.Errorf("the PDF holds no amount or card:\n%s", text)
	}

	month := time.Now().UTC().Format("2006-01")
	st := br.get(base + "/statement?month=" + month + "&format=csv")
	rows, err := csv.NewReader(strings.NewReader(st.body)).ReadAll()
	if st.status != 200 || err != nil || len(rows) != 3 || rows[2][2] != "top_up" || rows[2][5] != "62.34" ||
		!strings.Contains(st.header.Get("Content-Disposition"), "attachment") {
		t.Errorf("the CSV statement: %d %v %q (%s)", st.status, err, rows, st.header.Get("Content-Disposition"))
	}
	if js := br.get(base + "/statement?month=" + month + "&format=json"); js.status != 200 || !strings.Contains(js.body, `"closing_balance":"62.34"`) {
		t.Errorf("the JSON statement: %d %.300s", js.status, js.body)
	}
	if bad := br.get(base + "/statement?month=13"); bad.status != 400 {
		t.Errorf("a statement of month 13: %d; want 400", bad.status)
	}

	other := e.account("other@example.com", "")
	obr, _ := e.signedIn(other)
	for _, path := range []string{receiptPath, base + "/statement?month=" + month + "&format=csv"} {
		if p := obr.get(path); p.status != 404 {
			t.Errorf("another account's session on %s: %d; want 404", path, p.status)
		}
	}
	if p := e.browser().get(receiptPath); p.status != 401 {
		t.Errorf("no session on the receipt: %d; want 401 (sign in)", p.status)
	}
}

// TestConsoleHistoryShowsRefundsAndDisputes: each top-up in the history
// lists its refunds and disputes with their state — a refund made at the
// provider, a dispute open then won — and the notifications say so in
// words. Nothing on the page refunds: that stays the operator's API.
func TestConsoleHistoryShowsRefundsAndDisputes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.account("later@example.com", "1.00")
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, nil)
	var tu struct {
		ID string `json:"id"`
	}
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/top_ups", adminKey, `{"amount":"12.34","idempotency_key":"later"}`, 201, &tu)
	var charges struct {
		Data []struct {
			ID      string `json:"id"`
			TopUpID string `json:"top_up_id"`
		} `json:"data"`
	}
	e.mustAPI("GET", "/v1/sandbox/charges?limit=100", adminKey, "", 200, &charges)
	charge := ""
	for _, c := range charges.Data {
		if c.TopUpID == tu.ID {
			charge = c.ID
		}
	}
	if _, ok, err := e.store.ApplyRefund(t.Context(), refund.Word{ProviderID: "re_later", ChargeID: charge, AmountMinor: 100, Status: refund.Succeeded}); err != nil || !ok {
		t.Fatalf("a refund made at the provider: %v %v", ok, err)
	}
	e.mustAPI("POST", "/v1/sandbox/charges/"+charge+"/dispute", adminKey, "", 200, nil)
	br, _ := e.signedIn(a)
	base := web.Prefix + "/accounts/" + a.ID

	history := br.get(base + "/top_ups")
	for _, want := range []string{`<li class="refund-succeeded">Refund of $1.00 · succeeded</li>`,
		`<li class="dispute-open">Disputed $12.34 (fraudulent) · open, $11.34 withdrawn</li>`} {
		if !strings.Contains(history.body, want) {
			t.Errorf("the history does not show %s:\n%s", want, history.body)
		}
	}
	if strings.Contains(strings.ToLower(history.body), "/refunds") {
		t.Error("the history offers a refund action; refunds are the operator's, through the API")
	}
	e.mustAPI("POST", "/v1/sandbox/charges/"+charge+"/dispute/close", adminKey, `{"outcome":"won"}`, 200, nil)
	if history := br.get(base + "/top_ups"); !strings.Contains(history.body, `<li class="dispute-won">Disputed $12.34 (fraudulent) · won, $11.34 given back</li>`) {
		t.Errorf("the history after the dispute was won:\n%s", history.body)
	}
	notes := br.get(base + "/notifications")
	for _, want := range []string{"$1.00 of the manual top-up of $12.34 was refunded to your card", "Your bank disputes the manual top-up of $12.34 (fraudulent)"} {
		if !strings.Contains(notes.body, want) {
			t.Errorf("the notifications do not say %q", want)
		}
	}
}
