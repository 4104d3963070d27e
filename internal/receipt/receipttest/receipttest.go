// Package receipttest reads receipts' PDFs back in tests, with pdftotext
// (Debian's poppler-utils): a real reader, so a PDF that only looks right
// to our own code fails.
package receipttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// PDFText returns the text pdftotext reads from pdf. Without pdftotext the
// test fails in CI (CI=true: .ci/run installs poppler-utils) and skips
// elsewhere; a PDF the reader cannot open fails the test.
func PDFText(t testing.TB, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and pdftotext is missing: receipts' PDFs must be read back in CI (.ci/run installs poppler-utils)")
		}
		t.Skip("pdftotext is missing: apt-get install poppler-utils to read receipts' PDFs back")
	}
	path := filepath.Join(t.TempDir(), "receipt.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin, "-layout", "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext cannot read the PDF: %v\n%s", err, out)
	}
	return string(out)
}
