package soak

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topup/topup/client"
	"github.com/topup/topup/internal/money"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := DefaultConfig()
	ok.DB = "postgres://postgres@127.0.0.1:5432/soak"
	if err := ok.Validate(); err != nil {
		t.Fatalf("the default soak on PostgreSQL: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		flag   string
	}{
		{"sqlite", func(c *Config) { c.DB = "sqlite:soak.db" }, "--db"},
		{"no replicas", func(c *Config) { c.Replicas = 0 }, "--replicas"},
		{"no accounts", func(c *Config) { c.Accounts = 0 }, "--accounts"},
		{"no clients", func(c *Config) { c.Clients = 0 }, "--clients"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "--duration"},
		{"negative kills", func(c *Config) { c.KillEvery = -time.Second }, "--kill-every"},
		{"lease within a charge", func(c *Config) { c.Lease = c.Latency }, "--lease"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Errorf("Validate() = %v; want an error naming %s", err, tc.flag)
			}
		})
	}
}

// TestJudgeDebits: an acknowledged debit missing, doubled or recorded as
// another entry is broken, and so is a debit the load never sent.
func TestJudgeDebits(t *testing.T) {
	t.Parallel()
	s := &soak{rec: newRecord()}
	for _, k := range []string{"ok", "missing", "twice", "other", "unacked"} {
		s.rec.sentDebit(k)
	}
	for _, k := range []string{"ok", "missing", "twice", "other"} {
		s.rec.ackDebit(k, "acct_1", "en_"+k)
	}
	var p problems
	s.judgeDebits(map[string][]debitEntry{
		"ok":      {{"en_ok", "acct_1"}},
		"twice":   {{"en_twice", "acct_1"}, {"en_twice2", "acct_1"}},
		"other":   {{"en_x", "acct_1"}},
		"unacked": {{"en_unacked", "acct_1"}},
		"ghost":   {{"en_ghost", "acct_1"}},
	}, &p)
	got := strings.Join(p.list, "\n")
	for _, want := range []string{"acknowledged missing", "acknowledged twice", "acknowledged other", "ghost is in the ledger but was never sent", "twice is in the ledger 2 times"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, " ok ") || strings.Contains(got, "unacked") {
		t.Errorf("problems name a debit that is right:\n%s", got)
	}
	if s.report.recordedUnacked != 2 { // unacked and ghost
		t.Errorf("%d debits recorded without an answer; want 2", s.report.recordedUnacked)
	}
}

// TestCheckMoney: a charge credited twice or not at all, a credit without
// a charge, a second succeeded charge, a stray credit kind, and two open
// automatic top-ups on one account are each broken; a clean set is not.
func TestCheckMoney(t *testing.T) {
	t.Parallel()
	five := money.Amount(5 * money.MicrosPerUnit)
	clean := func() *moneyIn {
		return &moneyIn{
			topUps: map[string]soakTopUp{
				"tu_1": {id: "tu_1", account: "a", status: "succeeded", trigger: "threshold", amount: five, created: 10, completed: 20},
				"tu_2": {id: "tu_2", account: "a", status: "failed", trigger: "threshold", amount: five, created: 20, completed: 30},
			},
			charges:  map[string][]money.Amount{"tu_1": {five}},
			credits:  map[string][]money.Amount{"tu_1": {five}},
			positive: map[string][2]int64{"top_up": {1, int64(five)}, "credit": {1, 10 * money.MicrosPerUnit}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*moneyIn)
		want   string
	}{
		{"clean", func(*moneyIn) {}, ""},
		{"charged twice", func(in *moneyIn) { in.charges["tu_1"] = []money.Amount{five, five} }, "2 succeeded charges"},
		{"not credited", func(in *moneyIn) {
			delete(in.credits, "tu_1")
			in.positive["top_up"] = [2]int64{0, 0}
		}, "is credited []"},
		{"credited without a charge", func(in *moneyIn) { in.credits["tu_2"] = []money.Amount{five} }, "without a succeeded charge"},
		{"charge of a failed top-up", func(in *moneyIn) { in.charges["tu_2"] = []money.Amount{five} }, "is failed of"},
		{"stray charge", func(in *moneyIn) { in.stray = []string{"ch_x"} }, "names no top-up"},
		{"another kind of credit", func(in *moneyIn) { in.positive["adjustment"] = [2]int64{1, 1} }, "adjustment"},
		{"two open", func(in *moneyIn) {
			in.topUps["tu_2"] = soakTopUp{id: "tu_2", account: "a", status: "failed", trigger: "threshold", created: 15, completed: 30}
		}, "created while tu_1 was open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &soak{rec: newRecord(), accounts: []*account{{id: "a"}}}
			in := clean()
			tc.change(in)
			var p problems
			s.checkCharges(in, &p)
			s.checkCredits(in, &p)
			s.checkPositive(in, &p)
			s.checkOneOpen(in, &p)
			got := strings.Join(p.list, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("problems = %q; want one naming %q", got, tc.want)
			}
		})
	}
}

// TestCallerFailsOver: a lost answer (a dropped connection, a 5xx) sends
// the same request to the next replica; a refusal is final and counted by
// its code.
func TestCallerFailsOver(t *testing.T) {
	t.Parallel()
	var dropped, served atomic.Int64
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dropped.Add(1)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer dead.Close()
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, "refuse") {
			w.WriteHeader(409)
			w.Write([]byte(`{"error":{"code":"idempotency_conflict","message":"no","field":"idempotency_key"}}`))
			return
		}
		w.WriteHeader(201)
		w.Write([]byte(`{"entry_id":"en_1","balance":"1.00","currency":"usd","spendable":true}`))
	}))
	defer live.Close()
	c := newCaller([]string{dead.URL, live.URL}, "tpa_x", 2)
	c.pause = time.Millisecond
	rng := rand.New(rand.NewPCG(1, 2))
	st := &opStats{}
	for range 10 {
		out, err := c.do(context.Background(), rng, st, false, func(cl *client.Client) error {
			_, err := cl.RecordUsage(context.Background(), "acct_1", client.UsageParams{Amount: "0.01", IdempotencyKey: "k"})
			return err
		})
		if out != acked || err != nil {
			t.Fatalf("outcome %v, %v; want acknowledged by the live replica", out, err)
		}
	}
	if st.acked.Load() != 10 || dropped.Load() == 0 || st.failovers.Load() != dropped.Load() {
		t.Errorf("acked %d, dropped %d, failovers %d; want 10 acknowledged, each drop failed over", st.acked.Load(), dropped.Load(), st.failovers.Load())
	}
	out, _ := c.do(context.Background(), rng, st, false, func(cl *client.Client) error {
		_, err := cl.RecordUsage(context.Background(), "refuse", client.UsageParams{Amount: "0.01", IdempotencyKey: "k"})
		return err
	})
	if out != refused || st.codes["409 idempotency_conflict idempotency_key"] != 1 {
		t.Errorf("a 409 answered %v with codes %v; want refused, counted as 409 idempotency_conflict idempotency_key", out, st.codes)
	}
}
