package alert_test

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup/topuptest"
)

// BenchmarkPostWatched measures Store.Post on SQLite as storetest.BenchPost
// does (100 accounts, one hot, groups of 1, 64 and 1000 usage postings),
// with every account watched (five low balance alerts and a monthly
// account-wide budget) and without. Besides postings/s it reports the
// process's CPU time per posting, which other load on the machine disturbs
// far less than the wall clock.
func BenchmarkPostWatched(b *testing.B) {
	for _, watched := range []bool{false, true} {
		for _, size := range []int{1, 64, 1000} {
			b.Run(fmt.Sprintf("watched=%v/group=%d", watched, size), func(b *testing.B) { benchPost(b, watched, size) })
		}
	}
}

func benchPost(b *testing.B, watched bool, size int) {
	c := clock.NewManual(topuptest.Epoch)
	g := ids.New(c)
	s := topuptest.Backends()[0].Open(b, c, g)
	const accounts = 100
	accts := make([]string, accounts)
	grants := make([]ledger.Posting, accounts)
	for i := range accts {
		a, _, err := ledger.NewAccount(b.Context(), s, g, c, fmt.Sprintf("bench%d@example.com", i), "usd")
		if err != nil {
			b.Fatal(err)
		}
		accts[i] = a.ID
		grants[i] = ledger.Posting{AccountID: a.ID, Kind: ledger.KindCredit, Amount: 1_000_000 * money.MicrosPerUnit, IdempotencyKey: "grant", Call: ledger.ScopeCredit}
		if watched {
			var ts []money.Amount
			for _, t := range []int64{10, 50, 100, 500, 1000} {
				ts = append(ts, money.Amount(t*money.MicrosPerUnit))
			}
			if _, err := s.SetLowBalanceAlerts(b.Context(), a.ID, ts); err != nil {
				b.Fatal(err)
			}
			kind, limit := string(alert.Monthly), money.Amount(1_000_000*money.MicrosPerUnit)
			if _, err := s.CreateBudget(b.Context(), a.ID, alert.BudgetInput{Kind: &kind, Limit: &limit}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := s.Post(b.Context(), grants); err != nil {
		b.Fatal(err)
	}
	group := make([]ledger.Posting, 0, size)
	cpu0 := cpuTime()
	b.ResetTimer()
	for n := 0; n < b.N; {
		group = group[:0]
		for range min(size, b.N-n) {
			acct := accts[0] // the hot account
			if n%4 != 0 {
				acct = accts[1+(n*7919)%(accounts-1)]
			}
			group = append(group, ledger.Posting{AccountID: acct, Kind: ledger.KindUsage, Amount: -125, IdempotencyKey: "ev-" + strconv.Itoa(n), Call: ledger.ScopeUsage})
			n++
		}
		res, err := s.Post(b.Context(), group)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || r.Replayed || !r.Spendable {
				b.Fatalf("posting: %+v", r)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "postings/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/posting")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
