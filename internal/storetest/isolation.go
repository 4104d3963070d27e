package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/sqlstore"
)

// FaultyStore fails any transaction that holds a posting whose key starts
// with "fault-": a database error nobody foresaw, injected at the store a
// committer writes through (the poison tests of this suite and the API's).
type FaultyStore struct{ *sqlstore.Ledger }

// Post fails the whole group when any posting is marked, as a database
// refusing one value fails its transaction; otherwise it is the store's.
func (s FaultyStore) Post(ctx context.Context, postings []ledger.Posting) ([]ledger.Result, error) {
	for i := range postings {
		if strings.HasPrefix(postings[i].IdempotencyKey, "fault-") {
			return nil, fmt.Errorf("injected fault for %s", postings[i].IdempotencyKey)
		}
	}
	return s.Ledger.Post(ctx, postings)
}

// testPoisonUnderLoad: clients posting poison (an injected store fault, a
// NUL byte the database may refuse, an amount that would overflow the
// account's totals) interleaved with healthy clients of other accounts,
// single and batched, through one committer: no healthy posting fails,
// every poison posting is refused on its own, and the ledger verifies.
func testPoisonUnderLoad(t *testing.T, f *fixture) {
	healthy := make([]ledger.Account, 6)
	for i := range healthy {
		healthy[i] = f.account(fmt.Sprintf("ok%d@example.com", i))
		f.postOK(credit(healthy[i].ID, amt(t, "1000"), "grant"))
	}
	whale := f.account("whale@example.com")
	f.postOK(credit(whale.ID, ledger.MaxTurnover-amt(t, "1"), "grant"))
	nul := f.account("nul@example.com")

	c := ledger.NewCommitter(FaultyStore{f.s.Ledger}, ledger.CommitterConfig{})
	c.Start()
	defer c.Stop()
	price := amt(t, "0.01")
	const clients, each = 8, 40
	var healthyFailed, poisonAccepted, healthyN, poisonN atomic.Int64
	var wg sync.WaitGroup
	for g := range clients {
		wg.Go(func() {
			for i := range each {
				acct := healthy[(g+i)%len(healthy)].ID
				batch := []ledger.Posting{usage(acct, price, fmt.Sprintf("h-%d-%d", g, i))}
				if i%4 == 0 { // a batch mixing healthy and poison events
					batch = append(batch, usage(acct, price, fmt.Sprintf("h2-%d-%d", g, i)), poison(whale.ID, nul.ID, g, i))
				}
				res, err := c.Submit(context.Background(), batch)
				if err != nil {
					t.Errorf("client %d request %d failed whole: %v", g, i, err)
					healthyFailed.Add(1)
					continue
				}
				for k, r := range res {
					if isPoison(batch[k]) {
						poisonN.Add(1)
						if r.Err == nil && !strings.Contains(batch[k].Description, "\x00") {
							poisonAccepted.Add(1)
						}
						checkPoisonRefusal(t, batch[k], r.Err)
						continue
					}
					healthyN.Add(1)
					if r.Err != nil {
						healthyFailed.Add(1)
						t.Errorf("healthy %s: %v", batch[k].IdempotencyKey, r.Err)
					}
				}
			}
		})
	}
	for g := range 3 { // clients sending nothing but poison
		wg.Go(func() {
			for i := range each {
				p := poison(whale.ID, nul.ID, 100+g, i)
				res, err := c.Submit(context.Background(), []ledger.Posting{p})
				poisonN.Add(1)
				if err == nil && res[0].Err != nil {
					err = res[0].Err
				}
				if err == nil && !strings.Contains(p.Description, "\x00") {
					poisonAccepted.Add(1)
				}
				checkPoisonRefusal(t, p, err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d healthy postings, %d failed; %d poison postings, %d wrongly accepted", healthyN.Load(), healthyFailed.Load(), poisonN.Load(), poisonAccepted.Load())
	if healthyFailed.Load() != 0 || poisonAccepted.Load() != 0 {
		t.Fatalf("%d of %d healthy postings failed; %d of %d poison postings accepted", healthyFailed.Load(), healthyN.Load(), poisonAccepted.Load(), poisonN.Load())
	}
	var total money.Amount
	for _, a := range healthy {
		total += amt(t, "1000") - f.balance(a.ID)
	}
	if want := price * money.Amount(healthyN.Load()); total != want {
		t.Fatalf("healthy accounts were debited %s in all, want %s for %d postings", total, want, healthyN.Load())
	}
	f.verifyClean()
}

// poison returns one of three kinds of poison by i.
func poison(whale, nul string, g, i int) ledger.Posting {
	key := fmt.Sprintf("%d-%d", g, i)
	switch i % 3 {
	case 0:
		return usage(nul, 1, "fault-"+key)
	case 1:
		p := usage(nul, 1, "nul-"+key)
		p.Description = "bad\x00byte"
		return p
	}
	return credit(whale, 2*money.MicrosPerUnit, "overflow-"+key)
}

func isPoison(p ledger.Posting) bool {
	return !strings.HasPrefix(p.IdempotencyKey, "h")
}

// checkPoisonRefusal: an overflow is refused as bad input on amount; the
// injected fault as an internal error; a NUL byte either refused (PostgreSQL
// cannot store it) or, where the database can store it, accepted alone.
func checkPoisonRefusal(t *testing.T, p ledger.Posting, err error) {
	t.Helper()
	switch {
	case strings.HasPrefix(p.IdempotencyKey, "overflow-"):
		if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != "amount" {
			t.Errorf("overflow %s: %v, want invalid amount", p.IdempotencyKey, err)
		}
	case strings.HasPrefix(p.IdempotencyKey, "fault-"):
		if err == nil || apperr.As(err) != nil {
			t.Errorf("fault %s: %v, want the injected internal error", p.IdempotencyKey, err)
		}
	}
}
