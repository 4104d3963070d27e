package ids_test

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
)

// commonPrefix is the length of the longest prefix a and b share.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// Secrets minted in a row, in one millisecond of a stopped clock, carry
// 256 fresh bits each and share no more of a prefix than chance gives: ids
// minted so share their top random bits, which is what made a 3-D Secure
// token guessable from its neighbours.
func TestSecretsShareNothing(t *testing.T) {
	t.Parallel()
	g := ids.New(clock.NewManual(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))
	mints := map[string]func() string{
		"ids.Secret":          func() string { return ids.Secret("act_") },
		"(*Generator).Secret": func() string { return g.Secret("act_") },
	}
	for name, mint := range mints {
		t.Run(name, func(t *testing.T) {
			const n = 2000
			var all []string
			for range n {
				s := mint()
				b, ok := ids.DecodeSecret("act_", s)
				if !ok || len(b) < 16 {
					t.Fatalf("secret %q decodes to %d bytes (ok %v); want at least 16", s, len(b), ok)
				}
				if strings.ToLower(s) != s || strings.ContainsAny(s[4:], "_-=/+") {
					t.Fatalf("secret %q is not lower-case letters and digits", s)
				}
				all = append(all, strings.TrimPrefix(s, "act_"))
			}
			// Sorted, the closest neighbours are adjacent. Among 2,000
			// random base32 strings two share 8 characters (40 bits) with
			// a chance under one in a million.
			sort.Strings(all)
			for i := 1; i < len(all); i++ {
				if all[i] == all[i-1] {
					t.Fatalf("the same secret minted twice: %s", all[i])
				}
				if p := commonPrefix(all[i], all[i-1]); p >= 8 {
					t.Fatalf("%s and %s share %d leading characters", all[i-1], all[i], p)
				}
			}
		})
	}
}

// A seeded generator replays its secrets, so a simulation does too; another
// seed gives others.
func TestSeededSecretsReplay(t *testing.T) {
	t.Parallel()
	c := clock.NewManual(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a, b, other := ids.NewSeeded(c, 7), ids.NewSeeded(c, 7), ids.NewSeeded(c, 8)
	for range 3 {
		sa, sb, so := a.Secret("cs_"), b.Secret("cs_"), other.Secret("cs_")
		if sa != sb || sa == so {
			t.Fatalf("seed 7 gave %s and %s, seed 8 %s", sa, sb, so)
		}
	}
}
