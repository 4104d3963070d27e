package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/receipt/receipttest"
)

// get sends a GET with key and Accept and returns the status, headers and
// body.
func (b *bundle) get(t *testing.T, path, key, accept string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header, body
}

// TestReceipt: a succeeded top-up's receipt is a PDF a real reader opens,
// holding the number, the amount, the card and the operator; HTML when the
// client prefers it; none for a top-up that did not succeed, nor for
// another account.
func TestReceipt(t *testing.T) {
	t.Parallel()
	b := setupBilling(t, billingOptions{business: receipt.Business{Name: "Acme Compute Ltd", Address: `1 Main St\nSpringfield`, TaxID: "GB123456789"}})
	acct, key := b.account(t, "")
	b.attach(t, acct, key, "pm_card_mastercard")
	path := "/v1/accounts/" + acct + "/top_ups"
	paid := str(t, b.must(t, http.StatusCreated, "POST", path, key, map[string]any{"amount": "12.34", "idempotency_key": "r1"}), "id")
	declined := str(t, b.attach(t, acct, key, "pm_card_chargeDeclined"), "id")
	status, body, _ := b.do(t, "POST", path, key, map[string]any{"amount": "5", "idempotency_key": "r2", "payment_method": declined})
	e, _ := body["error"].(map[string]any)
	failed, _ := e["top_up_id"].(string)
	if status != http.StatusPaymentRequired || failed == "" {
		t.Fatalf("the declined top-up: %d %v", status, body)
	}

	status, h, pdf := b.get(t, path+"/"+paid+"/receipt", key, "")
	if status != http.StatusOK || h.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("receipt: %d %s %.40q; want a PDF", status, h.Get("Content-Type"), pdf)
	}
	text := receipttest.PDFText(t, pdf)
	for _, want := range []string{"R-000001", "12.34 USD", "Mastercard", "4444", "ada@example.com", "Acme Compute Ltd", "Springfield", "GB123456789"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF holds no %q:\n%s", want, text)
		}
	}

	browser := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	status, h, page := b.get(t, path+"/"+paid+"/receipt", b.adminKey, browser)
	if status != http.StatusOK || h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Content-Security-Policy") != receipt.CSP {
		t.Errorf("receipt as HTML: %d %s, CSP %q", status, h.Get("Content-Type"), h.Get("Content-Security-Policy"))
	}
	for _, want := range []string{"R-000001", "12.34 USD", "Mastercard •••• 4444", "Acme Compute Ltd"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the HTML receipt holds no %q", want)
		}
	}

	other, otherKey := b.account(t, "")
	for name, c := range map[string]struct{ path, key string }{
		"a declined top-up":          {path + "/" + failed + "/receipt", key},
		"an unknown top-up":          {path + "/tu_nope/receipt", key},
		"another account's top-up":   {"/v1/accounts/" + other + "/top_ups/" + paid + "/receipt", b.adminKey},
		"another account's key":      {path + "/" + paid + "/receipt", otherKey},
		"the top-up under the admin": {"/v1/accounts/acct_nope/top_ups/" + paid + "/receipt", b.adminKey},
	} {
		if status, _, body := b.get(t, c.path, c.key, ""); status != http.StatusNotFound {
			t.Errorf("%s: %d %s; want 404", name, status, body)
		}
	}
}

// TestWantsHTML: which answer an Accept header gets.
func TestWantsHTML(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]bool{
		"":                                 false,
		"*/*":                              false,
		"application/pdf":                  false,
		"text/html":                        true,
		"text/*":                           true,
		"text/html;q=0.5, application/pdf": false,
		"application/pdf;q=0.2, text/html": true,
		"text/html, application/pdf":       false,
		"text/html;q=0":                    false,
		"application/json":                 false,
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": true,
	} {
		if got := wantsHTML(accept); got != want {
			t.Errorf("Accept %q: HTML %v; want %v", accept, got, want)
		}
	}
}

// TestStatementExact: on an account with 100,000 entries in the month,
// the CSV's amounts sum exactly to its closing balance from the opening
// one, each row's balance follows from the last, the JSON says the same,
// and the months around it hold none of its entries.
func TestStatementExact(t *testing.T) {
	t.Parallel()
	c := clock.NewManual(time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC))
	b := start(t, options{clock: c})
	acct, key := b.account(t, "")
	post := func(ps []ledger.Posting) {
		t.Helper()
		res, err := b.store.Post(t.Context(), ps)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	post([]ledger.Posting{{AccountID: acct, Kind: ledger.KindCredit, Amount: 1_000_000 * money.MicrosPerUnit, IdempotencyKey: "october", Call: ledger.ScopeCredit}})
	c.Set(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	const n, group = 100_000, 10_000
	descriptions := []string{"GPU hours", "=HYPERLINK(\"http://evil\")", "-1+1", "@SUM(A1)", "a, \"quoted\"\nline"}
	for g := range n / group {
		ps := make([]ledger.Posting, group)
		for i := range ps {
			k := g*group + i
			ps[i] = ledger.Posting{AccountID: acct, Kind: ledger.KindUsage, Amount: -money.Amount(123 * (k%7 + 1)), IdempotencyKey: fmt.Sprint("u", k),
				Call: ledger.ScopeUsage, Description: descriptions[k%len(descriptions)]}
		}
		post(ps)
		c.Advance(time.Hour)
	}
	c.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	post([]ledger.Posting{{AccountID: acct, Kind: ledger.KindUsage, Amount: -1, IdempotencyKey: "december", Call: ledger.ScopeUsage}})

	base := "/v1/accounts/" + acct + "/statement?month=2026-11"
	status, h, body := b.get(t, base+"&format=csv", key, "")
	if status != http.StatusOK || h.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("CSV statement: %d %s %.300s", status, h.Get("Content-Type"), body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n+1 || !slices.Equal(rows[0], []string{"created_at", "id", "kind", "description", "amount", "balance_after"}) {
		t.Fatalf("%d rows, header %v; want the header and %d entries", len(rows), rows[0], n)
	}
	opening := money.Amount(1_000_000 * money.MicrosPerUnit)
	running := opening
	for i, row := range rows[1:] {
		amount, after := signed(t, row[4]), signed(t, row[5])
		running += amount
		if after != running {
			t.Fatalf("row %d: balance_after %s, but the opening balance and the amounts so far make %s", i+1, row[5], running.String())
		}
		if d := row[3]; strings.ContainsAny(d[:1], "=+-@") {
			t.Fatalf("row %d: description %q runs as a formula", i+1, d)
		}
	}
	var js struct {
		AccountID      string           `json:"account_id"`
		Month          string           `json:"month"`
		Currency       string           `json:"currency"`
		OpeningBalance string           `json:"opening_balance"`
		ClosingBalance string           `json:"closing_balance"`
		Entries        []map[string]any `json:"entries"`
	}
	status, h, body = b.get(t, base+"&format=json", key, "")
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON statement: %d %s", status, h.Get("Content-Type"))
	}
	if err := json.Unmarshal(body, &js); err != nil {
		t.Fatal(err)
	}
	if js.AccountID != acct || js.Month != "2026-11" || js.Currency != "usd" || js.OpeningBalance != "1000000.00" ||
		signed(t, js.ClosingBalance) != running || len(js.Entries) != n {
		t.Errorf("JSON statement %s %s %s, opening %s, closing %s, %d entries; want the CSV's: closing %s, %d entries",
			js.AccountID, js.Month, js.Currency, js.OpeningBalance, js.ClosingBalance, len(js.Entries), running.Format(usdCurrency(t)), n)
	}
	if len(js.Entries) == n && (js.Entries[0]["id"] != rows[1][1] || js.Entries[n-1]["id"] != rows[n][1]) {
		t.Errorf("JSON entries run from %v to %v; the CSV's from %s to %s", js.Entries[0]["id"], js.Entries[n-1]["id"], rows[1][1], rows[n][1])
	}
	for month, want := range map[string][2]string{"2026-10": {"0.00", "1000000.00"}, "2026-12": {js.ClosingBalance, ""}} {
		status, _, body := b.get(t, "/v1/accounts/"+acct+"/statement?month="+month, key, "")
		var other struct {
			OpeningBalance string           `json:"opening_balance"`
			ClosingBalance string           `json:"closing_balance"`
			Entries        []map[string]any `json:"entries"`
		}
		if err := json.Unmarshal(body, &other); status != http.StatusOK || err != nil || other.OpeningBalance != want[0] || len(other.Entries) != 1 {
			t.Errorf("%s: %d, opening %s, %d entries (%v); want opening %s and its one entry", month, status, other.OpeningBalance, len(other.Entries), err, want[0])
		}
		if want[1] != "" && other.ClosingBalance != want[1] {
			t.Errorf("%s closes at %s; want %s", month, other.ClosingBalance, want[1])
		}
	}
}

// signed parses an amount as the API writes it, with its sign.
func signed(t *testing.T, s string) money.Amount {
	t.Helper()
	neg := strings.HasPrefix(s, "-")
	a, err := money.Parse(strings.TrimPrefix(s, "-"))
	if err != nil {
		t.Fatalf("amount %q: %v", s, err)
	}
	if neg {
		return -a
	}
	return a
}

func usdCurrency(t *testing.T) money.Currency {
	c, err := money.LookupCurrency("usd")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStatementRefusals: a bad month or format answers 400 naming the
// field; an unknown or foreign account 404.
func TestStatementRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct, key := b.account(t, "")
	_, otherKey := b.account(t, "")
	base := "/v1/accounts/" + acct + "/statement"
	for _, c := range []struct{ query, field string }{
		{"", "month"}, {"?month=2026-13", "month"}, {"?month=november", "month"}, {"?month=2026-11&format=pdf", "format"},
	} {
		status, body, _ := b.do(t, "GET", base+c.query, key, nil)
		wantError(t, status, body, http.StatusBadRequest, "invalid", c.field)
	}
	for name, c := range map[string]struct{ path, key string }{
		"an unknown account":    {"/v1/accounts/acct_nope/statement?month=2026-11", b.adminKey},
		"another account's key": {base + "?month=2026-11", otherKey},
	} {
		if status, _, _ := b.do(t, "GET", c.path, c.key, nil); status != http.StatusNotFound {
			t.Errorf("%s: %d; want 404", name, status)
		}
	}
}

// TestStatementSchemaMatchesWire: the documented Statement has exactly the
// members WriteStatement writes: its head, then entries.
func TestStatementSchemaMatchesWire(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	got := schemaFields(t, doc, doc.Components.Schemas["Statement"])
	want := append(jsonFields(reflect.TypeOf(statementHead{})), "entries")
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("schema Statement has fields %v; WriteStatement writes %v", got, want)
	}
}
