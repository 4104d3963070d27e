package ids

import (
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
)

// TestTime proves an id tells when it was minted, to the millisecond, and
// that strings not minted here are not mistaken for ids.
func TestTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 30, 45, 678_900_000, time.UTC)
	id := New(clock.NewManual(at)).New(TopUp)
	got, ok := Time(id)
	if want := at.Truncate(time.Millisecond); !ok || !got.Equal(want) {
		t.Errorf("Time(%s) = %v, %v; want %v", id, got, ok, want)
	}
	for _, bad := range []string{"", "tu_42", "tu", "01jabcdefghjkmnpqrstvwxyz0", "tu_" + "zzzzzzzzzzzzzzzzzzzzzzzzzz"} {
		if got, ok := Time(bad); ok {
			t.Errorf("Time(%q) = %v, true; want not an id", bad, got)
		}
	}
}
