package httpapi

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/storetest"
)

// poisonCase is one hostile request and how it must be refused.
type poisonCase struct {
	body   func(acct string, n int) string
	status int
	field  string // "" for the injected fault, which has no field
}

// TestPoisonRequestsHurtNoOne (issue 9's group isolation under load): on
// both databases, clients posting poison — NUL in a description, a subject
// or a key, an amount over TOPUP_MAX_AMOUNT, a credit that would overflow
// the account's totals, a fault injected at the store — interleaved with
// healthy clients of other accounts, single and batched: no healthy request
// fails, every poison request is refused with its field, and the ledger
// verifies.
func TestPoisonRequestsHurtNoOne(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			b := start(t, options{postgres: db == "postgres", cfg: Config{MaxAmount: ledger.MaxTurnover},
				wrapPoster: func(s *sqlstore.DB) ledger.Poster { return storetest.FaultyStore{Ledger: s.Ledger} }})
			poisonUnderLoad(t, b)
		})
	}
}

func poisonUnderLoad(t *testing.T, b *bundle) {
	healthy := make([]string, 6)
	for i := range healthy {
		healthy[i], _ = b.funded(t, "1000.00")
	}
	whale, _ := b.account(t, "usd")
	b.must(t, 201, "POST", "/v1/accounts/"+whale+"/credits", b.adminKey,
		map[string]string{"amount": (ledger.MaxTurnover - money.MicrosPerUnit).String(), "idempotency_key": "near-the-bound"})
	victim, _ := b.funded(t, "10.00")
	cases := []poisonCase{
		{func(a string, n int) string {
			return fmt.Sprintf(`{"amount":"0.01","idempotency_key":"nul-d-%d","description":"a\u0000b"}`, n)
		}, 400, "description"},
		{func(a string, n int) string {
			return fmt.Sprintf(`{"amount":"0.01","idempotency_key":"nul-s-%d","subject":"\u0000"}`, n)
		}, 400, "subject"},
		{func(a string, n int) string {
			return fmt.Sprintf(`{"amount":"0.01","idempotency_key":"nul\u0000%d"}`, n)
		}, 400, "idempotency_key"},
		{func(a string, n int) string {
			return fmt.Sprintf(`{"amount":"9999999999999","idempotency_key":"huge-%d"}`, n)
		}, 400, "amount"},
		{func(a string, n int) string { return fmt.Sprintf(`{"amount":"0.01","idempotency_key":"fault-%d"}`, n) }, 500, ""},
	}
	price := money.Amount(10_000) // 0.01
	var healthyN, healthyFailed, poisonN, poisonWrong atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				acct := healthy[(g+i)%len(healthy)]
				key := fmt.Sprintf("ok-%d-%d", g, i)
				if i%5 == 0 {
					// A batch: healthy events around a poison one.
					body := fmt.Sprintf(`{"events":[{"account_id":%q,"amount":"0.01","idempotency_key":"%s-a"},`+
						`{"account_id":%q,"amount":"0.01","idempotency_key":"bad-%d-%d","description":"\u0000"},`+
						`{"account_id":%q,"amount":"0.01","idempotency_key":"fault-b-%d-%d"},`+
						`{"account_id":%q,"amount":"0.01","idempotency_key":"%s-b"}]}`, acct, key, victim, g, i, victim, g, i, acct, key)
					status, out, _, err := b.call("POST", "/v1/usage/batch", b.adminKey, body)
					healthyN.Add(2)
					poisonN.Add(2)
					if err != nil || status != 200 {
						t.Errorf("batch %s: %d %v %v", key, status, out, err)
						healthyFailed.Add(2)
						continue
					}
					res := objects(t, out["results"])
					for k, want := range []string{"ok", "events[1].description", "internal", "ok"} {
						e, _ := res[k]["error"].(map[string]any)
						switch {
						case want == "ok" && e != nil:
							healthyFailed.Add(1)
							t.Errorf("batch %s event %d: %v", key, k, e)
						case want == "internal" && (e == nil || e["code"] != "internal"):
							poisonWrong.Add(1)
							t.Errorf("batch %s event %d: %v; want internal", key, k, res[k])
						case want != "ok" && want != "internal" && (e == nil || e["field"] != want):
							poisonWrong.Add(1)
							t.Errorf("batch %s event %d: %v; want %s", key, k, res[k], want)
						}
					}
					continue
				}
				healthyN.Add(1)
				status, out, _, err := b.call("POST", "/v1/accounts/"+acct+"/usage", b.adminKey,
					map[string]string{"amount": "0.01", "idempotency_key": key})
				if err != nil || status != 201 {
					healthyFailed.Add(1)
					t.Errorf("healthy %s: %d %v %v", key, status, out, err)
				}
			}
		})
	}
	for g := range 3 {
		wg.Go(func() {
			for i := range 30 {
				n := g*1000 + i
				if i%6 == 5 {
					// A credit that would take the whale past the turnover bound.
					poisonN.Add(1)
					status, out, _, _ := b.call("POST", "/v1/accounts/"+whale+"/credits", b.adminKey,
						map[string]string{"amount": "2.00", "idempotency_key": fmt.Sprintf("over-%d", n)})
					if status != 400 || field(out) != "amount" {
						poisonWrong.Add(1)
						t.Errorf("overflowing credit: %d %v; want 400 on amount", status, out)
					}
					continue
				}
				c := cases[i%len(cases)]
				poisonN.Add(1)
				status, out, _, _ := b.call("POST", "/v1/accounts/"+victim+"/usage", b.adminKey, c.body(victim, n))
				if status != c.status || field(out) != c.field {
					poisonWrong.Add(1)
					t.Errorf("poison %s: %d %v; want %d on %q", c.body(victim, n), status, out, c.status, c.field)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d healthy requests, %d failed; %d poison requests, %d not refused as they should be",
		healthyN.Load(), healthyFailed.Load(), poisonN.Load(), poisonWrong.Load())
	var held money.Amount
	for _, a := range healthy {
		held += mustAmount(t, b.state(t, a).Balance)
	}
	if want := 6*money.Amount(1000*money.MicrosPerUnit) - price*money.Amount(healthyN.Load()); held != want {
		t.Errorf("the healthy accounts hold %s, want %s after %d debits", held, want, healthyN.Load())
	}
	if got := b.state(t, victim).Balance; got != "10.00" {
		t.Errorf("the victim's balance is %s; no poison may have moved it", got)
	}
	v, err := b.store.Verify(t.Context())
	if err != nil || len(v) != 0 {
		t.Fatalf("verify: %v %+v", err, v)
	}
}

func field(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

func mustAmount(t *testing.T, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(strings.TrimPrefix(s, "-"))
	if err != nil {
		t.Fatalf("amount %q: %v", s, err)
	}
	if strings.HasPrefix(s, "-") {
		a = -a
	}
	return a
}
