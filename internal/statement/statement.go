// Package statement is an account's monthly statement: which month is
// asked for (UTC calendar months), which of its entries belong to it, and
// the CSV it is written as. It holds no database and no HTTP: the store
// finds the month's range of entries and streams them, the API writes them
// as they come, so a month of a million entries never sits in memory.
package statement

import (
	"encoding/csv"
	"io"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// Month is a UTC calendar month.
type Month struct{ start time.Time }

// ParseMonth reads "YYYY-MM"; anything else is refused naming the field
// month.
func ParseMonth(s string) (Month, error) {
	if s == "" {
		return Month{}, apperr.Invalidf("month", "is required, as YYYY-MM")
	}
	t, err := time.Parse("2006-01", s)
	if err != nil || len(s) != 7 || t.Year() < 1970 {
		return Month{}, apperr.Invalidf("month", "must be a month as YYYY-MM, such as 2026-11, not %q", s)
	}
	return Month{start: t.UTC()}, nil
}

// MonthOf returns the month holding t (UTC).
func MonthOf(t time.Time) Month {
	t = t.UTC()
	return Month{start: time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)}
}

// Start is the month's first instant; End the next month's first instant.
func (m Month) Start() time.Time { return m.start }

// End is the first instant after the month.
func (m Month) End() time.Time { return m.start.AddDate(0, 1, 0) }

// String is "YYYY-MM".
func (m Month) String() string { return m.start.Format("2006-01") }

// Format is how a statement is written: csv or json.
type Format string

// The formats a statement is written in.
const (
	CSV  Format = "csv"
	JSON Format = "json"
)

// ParseFormat reads format: csv or json; empty is json. Anything else is
// refused naming the field format.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", JSON:
		return JSON, nil
	case CSV:
		return CSV, nil
	}
	return "", apperr.Invalidf("format", "must be csv or json, not %q", s)
}

// Range is a month's statement as the store finds it: its entries are
// those numbered After+1 through Through (an account's entries are
// numbered 1, 2, … in the order they were written), Opening is the
// balance after entry After (0 before the first) and Closing the balance
// after entry Through. Since every entry's balance_after is the running
// sum, Opening plus the entries is Closing exactly, and one month's
// Through is the next month's After: consecutive statements chain.
type Range struct {
	AccountID string
	Month     Month
	Currency  money.Currency
	After     int64
	Through   int64
	Opening   money.Amount
	Closing   money.Amount
}

// Entries is how many entries the month holds.
func (r Range) Entries() int64 { return r.Through - r.After }

// Header is the CSV's header row.
var Header = []string{"created_at", "id", "kind", "description", "amount", "balance_after"}

// CSVWriter writes a statement's CSV a row at a time.
type CSVWriter struct {
	w   *csv.Writer
	cur money.Currency
}

// NewCSVWriter writes the header row to w and returns the writer of the
// rows of a statement in currency cur.
func NewCSVWriter(w io.Writer, cur money.Currency) (*CSVWriter, error) {
	cw := &CSVWriter{w: csv.NewWriter(w), cur: cur}
	return cw, cw.w.Write(Header)
}

// Write writes one entry's row. Text cells are guarded against formula
// injection; amounts are numbers ("-5.00" stays a number).
func (c *CSVWriter) Write(e ledger.Entry) error {
	return c.w.Write([]string{ledger.FormatTime(e.CreatedAt), Cell(e.ID), Cell(string(e.Kind)), Cell(e.Description),
		e.Amount.Format(c.cur), e.BalanceAfter.Format(c.cur)})
}

// Flush writes what is buffered and reports any error of the writes.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// Cell guards a text cell against formula injection (OWASP "CSV
// Injection"): a spreadsheet runs a cell that starts with =, +, -, @, a tab
// or a carriage return as a formula, so such a cell is written after a
// single quote, which the spreadsheet shows as text. Only text cells go
// through it: an amount is a number, and "-5.00" must stay one.
func Cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
