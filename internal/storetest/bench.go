package storetest

import (
	"fmt"
	"math/rand/v2"
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

// BenchPostGrants measures Store.Post on accounts whose credit is split
// into 1 or 3 grants (promotional, paid expiring in a year, paid for
// ever), 1,000 accounts with a Zipf-like spread, in groups of 32 (single
// debits under load) and 1,000 (a batch): the cost of grants on the debit
// path, which issue 11 bounds at 10%. Compare grants=3 with grants=1 of
// the same group size, run in turn (-count).
func BenchPostGrants(b *testing.B, open func(tb testing.TB) *sqlstore.DB) {
	for _, size := range []int{32, 1000} {
		for _, n := range []int{1, 3} {
			b.Run(fmt.Sprintf("group=%d/grants=%d", size, n), func(b *testing.B) {
				benchPostGrants(b, open(b), size, n)
			})
		}
	}
}

func benchPostGrants(b *testing.B, s *sqlstore.DB, size, grants int) {
	g := ids.New(clock.NewManual(Epoch))
	const accounts = 1000
	accts := make([]string, accounts)
	var credits []ledger.Posting
	for i := range accts {
		accts[i] = createAccount(b, s, g, fmt.Sprintf("bench%d@example.com", i)).ID
		for k := range grants {
			p := credit(accts[i], 1_000_000_000_000, "grant-"+strconv.Itoa(k))
			switch k % 3 {
			case 1:
				p.Terms = ledger.GrantTerms{Category: ledger.Paid, Priority: ledger.DefaultPaidPriority, ExpiresAt: Epoch.AddDate(1, 0, 0)}
			case 2:
				p.Terms = ledger.GrantTerms{Category: ledger.Paid, Priority: ledger.DefaultPaidPriority}
			}
			credits = append(credits, p)
		}
	}
	if _, err := s.Post(ctx(b), credits); err != nil {
		b.Fatal(err)
	}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, accounts-1)
	group := make([]ledger.Posting, 0, size)
	b.ResetTimer()
	for n := 0; n < b.N; {
		group = group[:0]
		for range min(size, b.N-n) {
			group = append(group, usage(accts[zipf.Uint64()], 125, "ev-"+strconv.Itoa(n)))
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
}
