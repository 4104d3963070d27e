package receipt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/receipt/receipttest"
)

func currency(t *testing.T, code string) money.Currency {
	t.Helper()
	c, err := money.LookupCurrency(code)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func record(t *testing.T) receipt.Record {
	return receipt.Record{Number: 42, TopUpID: "tu_1", AccountID: "acct_1", Email: "ada@example.com", Amount: 12_340_000,
		Currency: currency(t, "usd"), CardBrand: "visa", CardLast4: "4242", PaidAt: time.Date(2026, 11, 20, 23, 30, 0, 0, time.FixedZone("x", -3600))}
}

var business = receipt.Business{Name: "Acme Compute GmbH", Address: `Hauptstraße 1\n10115 Berlin`, TaxID: "DE123456789"}

// TestBuild: what a receipt says, decided from the record and the
// operator's details alone.
func TestBuild(t *testing.T) {
	t.Parallel()
	jpy := record(t)
	jpy.Amount, jpy.Currency, jpy.CardBrand, jpy.CardLast4 = 500_000_000, currency(t, "jpy"), "", ""
	big := record(t)
	big.Number, big.CardBrand = 1_234_567, "unknownbrand"
	refunded := record(t)
	refunded.Refunds = []receipt.Refund{{ID: "re_1", Amount: 2_000_000, At: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}}
	for _, tc := range []struct {
		name string
		rec  receipt.Record
		b    receipt.Business
		want func(r receipt.Receipt) bool
	}{
		{"number, amount as the API writes it, UTC date", record(t), business, func(r receipt.Receipt) bool {
			return r.Number == "R-000042" && r.Amount == "12.34" && r.Currency == "USD" && r.Date == "2026-11-21" &&
				r.PaidAt == "2026-11-21 00:30:00 UTC" && r.Customer == "ada@example.com" && r.Card == "Visa •••• 4242"
		}},
		{"the operator's details, address lines split", record(t), business, func(r receipt.Receipt) bool {
			return r.SellerName == "Acme Compute GmbH" && strings.Join(r.SellerAddress, "|") == "Hauptstraße 1|10115 Berlin" && r.SellerTaxID == "DE123456789"
		}},
		{"no operator details configured", record(t), receipt.Business{}, func(r receipt.Receipt) bool {
			return r.SellerName == "" && r.SellerAddress == nil && r.SellerTaxID == ""
		}},
		{"a currency without minor units, no card kept", jpy, business, func(r receipt.Receipt) bool {
			return r.Amount == "500" && r.Currency == "JPY" && r.Card == "Card"
		}},
		{"past six digits, an unknown brand", big, business, func(r receipt.Receipt) bool {
			return r.Number == "R-1234567" && r.Card == "unknownbrand •••• 4242"
		}},
		{"no refunds: no refund lines", record(t), business, func(r receipt.Receipt) bool { return r.Refunds == nil }},
		{"refunds listed", refunded, business, func(r receipt.Receipt) bool {
			return len(r.Refunds) == 1 && r.Refunds[0] == receipt.RefundLine{ID: "re_1", Date: "2026-11-22", Amount: "2.00"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if r := receipt.Build(tc.rec, tc.b); !tc.want(r) {
				t.Errorf("%+v", r)
			}
		})
	}
}

// TestHTML: the page shows the receipt, escapes what customers and
// operators typed, and its one style is the one CSP allows.
func TestHTML(t *testing.T) {
	t.Parallel()
	rec := record(t)
	rec.Email = `<script>alert(1)</script>@example.com`
	var buf bytes.Buffer
	if err := receipt.HTML(&buf, receipt.Build(rec, business)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"R-000042", "12.34 USD", "Visa •••• 4242", "Acme Compute GmbH", "Hauptstraße 1<br>10115 Berlin", "Tax ID: DE123456789", "&lt;script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "Refunds") {
		t.Errorf("the page holds a script or a refunds section with none:\n%s", page)
	}
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no <style> element")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(receipt.CSP, h) {
		t.Errorf("CSP %q does not allow the page's style (%s): the browser would show it unstyled", receipt.CSP, h)
	}
}

// TestPDF: the PDF opens in a real reader (pdftotext, Debian's
// poppler-utils) and holds the number, the amount, the card and the
// operator; the same receipt is the same bytes each time.
func TestPDF(t *testing.T) {
	t.Parallel()
	r := receipt.Build(record(t), business)
	var one, two bytes.Buffer
	if err := receipt.PDF(&one, r); err != nil {
		t.Fatal(err)
	}
	if err := receipt.PDF(&two, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Error("two renderings of one receipt differ")
	}
	text := receipttest.PDFText(t, one.Bytes())
	for _, want := range []string{"R-000042", "12.34 USD", "Visa", "4242", "ada@example.com", "Acme Compute GmbH", "Hauptstraße 1", "DE123456789", "2026-11-21"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext finds no %q in:\n%s", want, text)
		}
	}
}
