package receipt

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"io"

	"codeberg.org/go-pdf/fpdf"
)

// style is the HTML receipt's one <style> element, allowed by its hash
// (CSP): the page loads nothing and runs nothing.
const style = `body { font-family: system-ui, sans-serif; color: #1f2328; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: 0.25rem; }
.muted { color: #59636e; }
table { border-collapse: collapse; width: 100%; margin: 1.5rem 0; }
th, td { text-align: left; padding: 0.4rem 0; border-bottom: 1px solid #d1d9e0; vertical-align: top; }
th { width: 40%; font-weight: 600; }
.amount { font-size: 1.25rem; font-weight: 600; }
address { font-style: normal; }
`

// CSP is the Content-Security-Policy of the HTML receipt: nothing but its
// own style, framed nowhere.
var CSP = func() string {
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}()

// The HTML receipt is one self-contained, printable page.
var page = template.Must(template.New("receipt").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>{{.Style}}</style>
</head>
<body>
<header>
<h1>Receipt <span id="receipt-number">{{.R.Number}}</span></h1>
<p class="muted">Paid {{.R.PaidAt}}</p>
</header>
<section>
<h2>From</h2>
{{with .R.SellerName}}<p><strong>{{.}}</strong></p>{{end}}
{{with .R.SellerAddress}}<address>{{range .}}{{.}}<br>{{end}}</address>{{end}}
{{with .R.SellerTaxID}}<p>Tax ID: {{.}}</p>{{end}}
</section>
<table>
<tr><th>Receipt number</th><td>{{.R.Number}}</td></tr>
<tr><th>Date</th><td>{{.R.Date}}</td></tr>
<tr><th>Billed to</th><td>{{.R.Customer}}</td></tr>
<tr><th>Account</th><td>{{.R.Account}}</td></tr>
<tr><th>Top-up</th><td>{{.R.TopUp}}</td></tr>
<tr><th>Paid with</th><td>{{.R.Card}}</td></tr>
<tr><th>Amount paid</th><td class="amount">{{.R.Amount}} {{.R.Currency}}</td></tr>
</table>
{{with .R.Refunds}}<section>
<h2>Refunds</h2>
<table>
{{range .}}<tr><th>{{.Date}} ({{.ID}})</th><td>−{{.Amount}} {{$.R.Currency}}</td></tr>
{{end}}</table>
</section>{{end}}
<p class="muted">Prepaid credit for {{.R.Customer}}. Keep this receipt for your records.</p>
</body>
</html>
`))

// HTML writes r as a printable HTML page; serve it with CSP.
func HTML(w io.Writer, r Receipt) error {
	return page.Execute(w, struct {
		R     Receipt
		Title string
		Style template.CSS
	}{r, r.Title(), template.CSS(style)})
}

// PDF writes r as a one-page A4 PDF. It uses the PDF core font Helvetica,
// whose text is Windows-1252: characters outside it (a business name in
// another script) print as "?". The document's dates are the payment's
// (r.Paid), so the same receipt is the same bytes every time it is asked
// for.
func PDF(w io.Writer, r Receipt) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.SetCreationDate(r.Paid)
	pdf.SetModificationDate(r.Paid)
	pdf.SetCatalogSort(true)
	pdf.SetTitle(r.Title(), true)
	pdf.SetCreator("Topup", true)
	pdf.SetProducer("Topup", true)
	pdf.SetMargins(20, 20, 20)
	pdf.AddPage()

	pdf.SetFont("Helvetica", "B", 20)
	pdf.CellFormat(0, 10, tr(r.Title()), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.SetTextColor(89, 99, 110)
	pdf.CellFormat(0, 6, tr("Paid "+r.PaidAt), "", 1, "L", false, 0, "")
	pdf.SetTextColor(31, 35, 40)
	pdf.Ln(6)

	pdf.SetFont("Helvetica", "B", 11)
	if r.SellerName != "" {
		pdf.CellFormat(0, 6, tr(r.SellerName), "", 1, "L", false, 0, "")
	}
	pdf.SetFont("Helvetica", "", 10)
	for _, line := range r.SellerAddress {
		pdf.CellFormat(0, 5, tr(line), "", 1, "L", false, 0, "")
	}
	if r.SellerTaxID != "" {
		pdf.CellFormat(0, 5, tr("Tax ID: "+r.SellerTaxID), "", 1, "L", false, 0, "")
	}
	pdf.Ln(8)

	row := func(label, value string) {
		pdf.SetFont("Helvetica", "B", 10)
		pdf.CellFormat(55, 8, tr(label), "B", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 10)
		pdf.CellFormat(0, 8, tr(value), "B", 1, "L", false, 0, "")
	}
	row("Receipt number", r.Number)
	row("Date", r.Date)
	row("Billed to", r.Customer)
	row("Account", r.Account)
	row("Top-up", r.TopUp)
	row("Paid with", r.Card)
	row("Amount paid", r.Amount+" "+r.Currency)

	if len(r.Refunds) > 0 {
		pdf.Ln(8)
		pdf.SetFont("Helvetica", "B", 12)
		pdf.CellFormat(0, 8, "Refunds", "", 1, "L", false, 0, "")
		for _, f := range r.Refunds {
			row(f.Date+" ("+f.ID+")", "-"+f.Amount+" "+r.Currency)
		}
	}
	pdf.Ln(10)
	pdf.SetFont("Helvetica", "", 9)
	pdf.SetTextColor(89, 99, 110)
	pdf.MultiCell(0, 5, tr("Prepaid credit for "+r.Customer+". Keep this receipt for your records."), "", "L", false)
	return pdf.Output(w)
}
