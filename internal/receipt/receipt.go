// Package receipt decides what a succeeded top-up's receipt says and
// renders it as HTML and as PDF. Build is a pure function of what the
// store keeps of the top-up (a Record) and the operator's business details
// (TOPUP_BUSINESS_NAME, TOPUP_BUSINESS_ADDRESS, TOPUP_BUSINESS_TAX_ID); the
// two renderers only lay out the Receipt it returns, so a receipt says the
// same thing whichever format is asked for.
package receipt

import (
	"fmt"
	"strings"
	"time"

	"github.com/topup/topup/internal/money"
)

// Record is what the store keeps of a succeeded top-up for its receipt:
// the number Settle gave it, the account's e-mail, and the card's brand
// and last four as they were when it was charged (a removed card's row is
// gone, its receipt keeps them).
type Record struct {
	Number    int64
	TopUpID   string
	AccountID string
	Email     string
	Amount    money.Amount
	Currency  money.Currency
	CardBrand string
	CardLast4 string
	PaidAt    time.Time
	// Refunds are the top-up's succeeded refunds, oldest first.
	Refunds []Refund
}

// Refund is one refund of the top-up, as its receipt lists it.
type Refund struct {
	ID     string
	Amount money.Amount
	At     time.Time
}

// Business is the operator as receipts name it.
type Business struct {
	Name    string
	Address string // several lines, separated by newlines (or "\n" as typed in an environment variable)
	TaxID   string
}

// Receipt is what a receipt says, every value already written out: the
// renderers add no words of their own but labels.
type Receipt struct {
	Number string // "R-000042"
	// Seller: the operator's name, address lines and tax id.
	SellerName    string
	SellerAddress []string
	SellerTaxID   string
	// Customer is the account's e-mail.
	Customer string
	Account  string
	TopUp    string
	// Date is the day the top-up was paid (UTC), "2026-11-20"; PaidAt
	// the instant, in the API's time format.
	Date   string
	PaidAt string
	Paid   time.Time
	// Amount as the API writes it ("12.34") and the upper-case currency.
	Amount   string
	Currency string
	// Card: "Visa •••• 4242", or "Card" when nothing was kept of it.
	Card    string
	Refunds []RefundLine
}

// RefundLine is one refund on a receipt.
type RefundLine struct {
	ID, Date, Amount string
}

// Title is the document's title: "Receipt R-000042".
func (r Receipt) Title() string { return "Receipt " + r.Number }

// Number writes a receipt number: R- and at least six digits.
func Number(n int64) string { return fmt.Sprintf("R-%06d", n) }

// Build decides a receipt's content from a top-up's record and the
// operator's details.
func Build(rec Record, b Business) Receipt {
	r := Receipt{
		Number:        Number(rec.Number),
		SellerName:    strings.TrimSpace(b.Name),
		SellerAddress: addressLines(b.Address),
		SellerTaxID:   strings.TrimSpace(b.TaxID),
		Customer:      rec.Email,
		Account:       rec.AccountID,
		TopUp:         rec.TopUpID,
		Date:          rec.PaidAt.UTC().Format(time.DateOnly),
		PaidAt:        rec.PaidAt.UTC().Format("2006-01-02 15:04:05 UTC"),
		Paid:          rec.PaidAt.UTC(),
		Amount:        rec.Amount.Format(rec.Currency),
		Currency:      strings.ToUpper(rec.Currency.Code),
		Card:          cardLabel(rec.CardBrand, rec.CardLast4),
	}
	for _, f := range rec.Refunds {
		r.Refunds = append(r.Refunds, RefundLine{ID: f.ID, Date: f.At.UTC().Format(time.DateOnly), Amount: f.Amount.Format(rec.Currency)})
	}
	return r
}

// addressLines splits an address into its non-empty lines: newlines, or
// the two characters \n an operator typed into an environment variable.
func addressLines(s string) []string {
	s = strings.ReplaceAll(s, `\n`, "\n")
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// brands are the card networks' names as people write them (Stripe's
// brand codes).
var brands = map[string]string{
	"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
	"diners": "Diners Club", "jcb": "JCB", "unionpay": "UnionPay", "cartes_bancaires": "Cartes Bancaires",
}

// cardLabel is "Visa •••• 4242"; "Card" alone when neither is known.
func cardLabel(brand, last4 string) string {
	name := brands[strings.ToLower(brand)]
	if name == "" {
		name = strings.TrimSpace(brand)
	}
	if name == "" {
		name = "Card"
	}
	if last4 == "" {
		return name
	}
	return name + " •••• " + last4
}
