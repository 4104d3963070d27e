package sqlite_test

import (
	"testing"

	"github.com/topup/topup/internal/ledger"
)

// TestVerifyReportsProgress: Verify tells the context's progress function
// of every check it finishes, ending at all of them, so that `topup verify`
// can draw its bar.
func TestVerifyReportsProgress(t *testing.T) {
	t.Parallel()
	s := open(t)
	var seen []int
	total := 0
	ctx := ledger.WithProgress(t.Context(), func(done, n int) {
		seen = append(seen, done)
		total = n
	})
	if _, err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if total < 2 || len(seen) != total || seen[len(seen)-1] != total {
		t.Fatalf("progress %v of %d; want every step from 1 to the total", seen, total)
	}
	for i, d := range seen {
		if d != i+1 {
			t.Fatalf("progress %v: steps out of order", seen)
		}
	}
}
