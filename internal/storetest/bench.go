package storetest

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/sqlstore"
)

// BenchGroups are the group sizes BenchPost measures: one posting per
// transaction (a lone API call), a group as the committer gathers under load,
// and a large usage batch.
var BenchGroups = []int{1, 64, 1000}

// BenchPost measures Store.Post with BenchGroups postings per call, spread
// over 100 accounts of which one is hot (a quarter of all usage), and
// reports postings/s. One benchmark op is one posting, so ns/op is the cost
// of a posting whatever the group size.
func BenchPost(b *testing.B, open func(tb testing.TB) *sqlstore.DB) {
	for _, size := range BenchGroups {
		b.Run("group="+strconv.Itoa(size), func(b *testing.B) {
			s := open(b)
			g := ids.New(clock.NewManual(Epoch))
			const accounts = 100
			accts := make([]string, accounts)
			grants := make([]ledger.Posting, accounts)
			for i := range accts {
				accts[i] = createAccount(b, s, g, fmt.Sprintf("bench%d@example.com", i)).ID
				grants[i] = credit(accts[i], 1_000_000_000_000, "grant")
			}
			if _, err := s.Post(ctx(b), grants); err != nil {
				b.Fatal(err)
			}
			group := make([]ledger.Posting, 0, size)
			b.ResetTimer()
			for n := 0; n < b.N; {
				group = group[:0]
				for range min(size, b.N-n) {
					acct := accts[0] // the hot account
					if n%4 != 0 {
						acct = accts[1+(n*7919)%(accounts-1)]
					}
					group = append(group, usage(acct, 125, "ev-"+strconv.Itoa(n)))
					n++
				}
				res, err := s.Post(ctx(b), group)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if r.Err != nil || r.Replayed {
						b.Fatalf("posting: %+v", r)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "postings/s")
		})
	}
}
