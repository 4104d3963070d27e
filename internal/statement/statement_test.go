package statement_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/statement"
)

func fieldOf(err error) string {
	var e *apperr.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// TestParseMonth: YYYY-MM, UTC month bounds; anything else names month.
func TestParseMonth(t *testing.T) {
	t.Parallel()
	m, err := statement.ParseMonth("2026-12")
	if err != nil || m.String() != "2026-12" || !m.Start().Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) ||
		!m.End().Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("2026-12: %v %s..%s, %v", m, m.Start(), m.End(), err)
	}
	for _, bad := range []string{"", "2026-13", "2026-1", "2026-001", "26-01", "2026/01", "2026-01-01", "1969-12", " 2026-01"} {
		if _, err := statement.ParseMonth(bad); fieldOf(err) != "month" || apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("month %q: %v; want invalid naming month", bad, err)
		}
	}
	if got := statement.MonthOf(time.Date(2026, 3, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600))); got.String() != "2026-02" {
		t.Errorf("00:30 CET on 1 March is in %s; want 2026-02 (UTC)", got)
	}
}

// TestParseFormat: csv or json (the default); anything else names format.
func TestParseFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]statement.Format{"": statement.JSON, "json": statement.JSON, "csv": statement.CSV} {
		if got, err := statement.ParseFormat(in); err != nil || got != want {
			t.Errorf("format %q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"CSV", "pdf", "xml"} {
		if _, err := statement.ParseFormat(bad); fieldOf(err) != "format" {
			t.Errorf("format %q: %v; want invalid naming format", bad, err)
		}
	}
}

// TestCell: text cells that a spreadsheet would run as a formula are
// written after a quote; others are left alone.
func TestCell(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
		"+1+1":                     "'+1+1",
		"-2+3":                     "'-2+3",
		"@SUM(A1)":                 "'@SUM(A1)",
		"\tcmd":                    "'\tcmd",
		"\rcmd":                    "'\rcmd",
		"GPU hours":                "GPU hours",
		"a=b":                      "a=b",
		"":                         "",
	} {
		if got := statement.Cell(in); got != want {
			t.Errorf("Cell(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestCSVWriter: a header row, then one row per entry: amounts as the API
// writes them (negative amounts stay numbers), descriptions quoted where
// CSV needs it and guarded against formulas.
func TestCSVWriter(t *testing.T) {
	t.Parallel()
	usd, _ := money.LookupCurrency("usd")
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	w, err := statement.NewCSVWriter(&buf, usd)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []ledger.Entry{
		{ID: "ent_1", Kind: ledger.KindCredit, Amount: 50_000_000, BalanceAfter: 50_000_000, Description: "Welcome, \"friend\"\nline two", CreatedAt: at},
		{ID: "ent_2", Kind: ledger.KindUsage, Amount: -1_250_000, BalanceAfter: 48_750_000, Description: "=cmd|' /C calc'!A0", CreatedAt: at},
		{ID: "ent_3", Kind: ledger.KindUsage, Amount: -125, BalanceAfter: 48_749_875, Description: "-sub-cent", CreatedAt: at},
	} {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"created_at", "id", "kind", "description", "amount", "balance_after"},
		{"2026-11-20T10:00:00.000000Z", "ent_1", "credit", "Welcome, \"friend\"\nline two", "50.00", "50.00"},
		{"2026-11-20T10:00:00.000000Z", "ent_2", "usage", "'=cmd|' /C calc'!A0", "-1.25", "48.75"},
		{"2026-11-20T10:00:00.000000Z", "ent_3", "usage", "'-sub-cent", "-0.000125", "48.749875"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows; want %d: %q", len(rows), len(want), rows)
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] {
				t.Errorf("row %d column %s: %q; want %q", i, want[0][j], rows[i][j], want[i][j])
			}
		}
	}
}
