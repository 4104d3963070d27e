package progress_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/topup/topup/internal/progress"
)

// TestQuietOffTerminal: a buffer, a file or a pipe gets nothing.
func TestQuietOffTerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	b := progress.New(&buf, 10, "verifying")
	b.Add(3)
	b.Set(10)
	b.Finish()
	if b != nil || buf.Len() != 0 {
		t.Fatalf("off a terminal the bar wrote %q", buf.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if progress.New(f, 10, "x") != nil || progress.IsTerminal(f) {
		t.Fatal("a regular file was taken for a terminal")
	}
}

// TestDrawsWhenForced: on a terminal the bar shows what it does and how far
// it came.
func TestDrawsWhenForced(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	b := progress.Force(&buf, 4, "checking ledgers")
	b.Add(2)
	b.Finish()
	if out := buf.String(); !strings.Contains(out, "checking ledgers") {
		t.Fatalf("the bar drew %q", out)
	}
}

func TestCommas(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234", -999: "-999"} {
		if got := progress.Commas(n); got != want {
			t.Errorf("Commas(%d) = %q, want %q", n, got, want)
		}
	}
}
