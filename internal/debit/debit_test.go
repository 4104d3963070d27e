package debit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

var usd = func() money.Currency {
	c, err := money.LookupCurrency("usd")
	if err != nil {
		panic(err)
	}
	return c
}()

func amt(s string) money.Amount {
	a, err := money.Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

func ptr(a money.Amount) *money.Amount { return &a }

// ids numbers ids per prefix, so that a test can name what a plan made.
func ids() func(string) string {
	n := map[string]int{}
	return func(prefix string) string {
		n[prefix]++
		return fmt.Sprintf("%s_%d", prefix, n[prefix])
	}
}

func account(balance string) *ledger.AccountState {
	return &ledger.AccountState{Account: ledger.Account{ID: "acc_1", Currency: usd, Balance: amt(balance), Status: ledger.Active}}
}

// keys makes every posting's idempotency key new.
var keys atomic.Int64

func usage(amount, subject string) ledger.Posting {
	return ledger.Posting{AccountID: "acc_1", Kind: ledger.KindUsage, Amount: -amt(amount), Subject: subject,
		IdempotencyKey: fmt.Sprint("k", keys.Add(1)), Call: ledger.ScopeUsage}
}

func types(es []ledger.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

func TestLowBalanceAlerts(t *testing.T) {
	t.Parallel()
	day := now.Format(time.DateOnly)
	for _, tc := range []struct {
		name       string
		balance    string
		thresholds []alert.Threshold
		postings   []ledger.Posting
		want       []string // the balance.low events' thresholds
	}{
		{"one crossing", "20", []alert.Threshold{{Amount: amt("10")}, {Amount: amt("5")}}, []ledger.Posting{usage("12", "")}, []string{"10.00"}},
		{"each crossing where it happened", "20", []alert.Threshold{{Amount: amt("10")}, {Amount: amt("5")}},
			[]ledger.Posting{usage("12", ""), usage("4", "")}, []string{"10.00", "5.00"}},
		{"both at once", "20", []alert.Threshold{{Amount: amt("10")}, {Amount: amt("5")}}, []ledger.Posting{usage("16", "")}, []string{"10.00", "5.00"}},
		{"once a day", "20", []alert.Threshold{{Amount: amt("10"), AlertedOn: day}}, []ledger.Posting{usage("12", "")}, nil},
		{"already below", "8", []alert.Threshold{{Amount: amt("10")}}, []ledger.Posting{usage("1", "")}, nil},
		{"not reached", "20", []alert.Threshold{{Amount: amt("10")}}, []ledger.Posting{usage("10", "")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := State{Accounts: map[string]*ledger.AccountState{"acc_1": account(tc.balance)},
				Watched: map[string]Watch{"acc_1": {Thresholds: tc.thresholds}}}
			p := New(now, ids(), st, tc.postings)
			if len(p.Spend) != 0 {
				t.Errorf("spend = %v; an account without budgets spends on none", p.Spend)
			}
			p.Observe(nil)
			var got []string
			for _, e := range p.Events {
				if e.Type != alert.BalanceLow || e.AccountID != "acc_1" || e.ID == "" {
					t.Errorf("event %+v; want balance.low of acc_1 with an id", e)
				}
				got = append(got, e.Data.(map[string]string)["threshold"])
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("balance.low for %v; want %v", got, tc.want)
			}
			if fired := len(tc.want) > 0; fired != (len(p.Alerted) == 1) {
				t.Errorf("alerted = %+v; want the thresholds written back only when one fired", p.Alerted)
			} else if fired && p.Alerted[0].Thresholds[0].AlertedOn != day {
				t.Errorf("thresholds written back = %+v; want the day they fired", p.Alerted[0].Thresholds)
			}
		})
	}
}

func TestBudgets(t *testing.T) {
	t.Parallel()
	budget := func(subject, limit, spentAfter string) alert.Budget {
		b := alert.NewBudget("bud_"+subject, "acc_1", subject, alert.OneTime, ptr(amt(limit)), now.Add(-time.Hour))
		b.Spent = amt(spentAfter)
		return b
	}
	for _, tc := range []struct {
		name      string
		postings  []ledger.Posting
		spend     []Spend
		budgets   []alert.Budget // as the spend statement returns them
		events    []string
		spendable []bool
	}{
		{"50 %", []ledger.Posting{usage("5", "")}, []Spend{{BudgetKey{"acc_1", ""}, amt("5")}},
			[]alert.Budget{budget("", "10", "5")}, []string{alert.BudgetThresholdReached}, []bool{true}},
		{"50 and 80 % in order, then 100 % stops", []ledger.Posting{usage("6", ""), usage("2", ""), usage("2", "")},
			[]Spend{{BudgetKey{"acc_1", ""}, amt("10")}}, []alert.Budget{budget("", "10", "10")},
			[]string{alert.BudgetThresholdReached, alert.BudgetThresholdReached, alert.BudgetExhausted}, []bool{true, true, false}},
		{"a subject counts toward its own and the account's", []ledger.Posting{usage("4", "gpt")},
			[]Spend{{BudgetKey{"acc_1", ""}, amt("4")}, {BudgetKey{"acc_1", "gpt"}, amt("4")}},
			[]alert.Budget{budget("", "100", "4"), budget("gpt", "4", "4")},
			[]string{alert.BudgetThresholdReached, alert.BudgetThresholdReached, alert.BudgetExhausted}, []bool{false}},
		{"an exhausted budget stops more usage", []ledger.Posting{usage("1", "")}, []Spend{{BudgetKey{"acc_1", ""}, amt("1")}},
			[]alert.Budget{budget("", "10", "11")}, nil, []bool{false}},
		{"a credit spends nothing but is seen", []ledger.Posting{{AccountID: "acc_1", Kind: ledger.KindCredit, Amount: amt("5"), IdempotencyKey: "c", Call: ledger.ScopeCredit}},
			[]Spend{{BudgetKey{"acc_1", ""}, 0}}, []alert.Budget{budget("", "10", "0")}, nil, []bool{true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := State{Accounts: map[string]*ledger.AccountState{"acc_1": account("100")}, Watched: map[string]Watch{"acc_1": {Budgets: true}}}
			p := New(now, ids(), st, tc.postings)
			if fmt.Sprint(p.Spend) != fmt.Sprint(tc.spend) {
				t.Errorf("spend = %v; want %v", p.Spend, tc.spend)
			}
			p.Observe(tc.budgets)
			if fmt.Sprint(types(p.Events)) != fmt.Sprint(tc.events) {
				t.Errorf("events = %v; want %v", types(p.Events), tc.events)
			}
			for i, want := range tc.spendable {
				r, rec := p.Results[i], p.Records[i].Result
				if r.Spendable != want || rec.Spendable != want || (!want && (r.Reason != ledger.ReasonBudgetExhausted || rec.Reason != r.Reason)) {
					t.Errorf("result %d = %+v, stored %+v; want spendable %v (budget_exhausted when not)", i, r, rec, want)
				}
			}
		})
	}
}

func TestAutomaticTopUp(t *testing.T) {
	t.Parallel()
	settings := func(change func(*topup.Settings)) topup.Settings {
		s := topup.Settings{Enabled: true, Threshold: ptr(amt("10")), Target: ptr(amt("50"))}
		if change != nil {
			change(&s)
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		status   ledger.Status
		postings []ledger.Posting
		settings topup.Settings
		state    topup.TriggerState
		due      bool
		topUp    bool
		events   []string
	}{
		{"crossing creates one", ledger.Active, []ledger.Posting{usage("5", ""), usage("8", ""), usage("1", "")}, settings(nil),
			topup.TriggerState{DefaultCard: "pm_1"}, true, true, nil},
		{"not below the threshold", ledger.Active, []ledger.Posting{usage("10", "")}, settings(nil), topup.TriggerState{DefaultCard: "pm_1"}, false, false, nil},
		{"one already open", ledger.Active, []ledger.Posting{usage("15", "")}, settings(nil), topup.TriggerState{HasOpen: true, DefaultCard: "pm_1"}, true, false, nil},
		{"backing off", ledger.Active, []ledger.Posting{usage("15", "")}, settings(func(s *topup.Settings) { s.RetryAfter = now.Add(time.Minute) }),
			topup.TriggerState{DefaultCard: "pm_1"}, false, false, nil},
		{"closed account", ledger.Closed, []ledger.Posting{usage("15", "")}, settings(nil), topup.TriggerState{DefaultCard: "pm_1"}, false, false, nil},
		{"no card", ledger.Active, []ledger.Posting{usage("15", "")}, settings(nil), topup.TriggerState{}, true, false, nil},
		{"the settings' own card", ledger.Active, []ledger.Posting{usage("15", "")}, settings(func(s *topup.Settings) { s.PaymentMethod = "pm_2" }),
			topup.TriggerState{}, true, true, nil},
		{"monthly limit reached: told once", ledger.Active, []ledger.Posting{usage("15", "")},
			settings(func(s *topup.Settings) { s.MonthlyLimit = ptr(amt("100")) }), topup.TriggerState{MonthToDate: amt("99.60"), DefaultCard: "pm_1"},
			true, false, []string{topup.EventAutoTopUpLimitReached}},
		{"monthly limit reached: already told", ledger.Active, []ledger.Posting{usage("15", "")},
			settings(func(s *topup.Settings) { s.MonthlyLimit, s.LimitNotified = ptr(amt("100")), topup.Month(now) }),
			topup.TriggerState{MonthToDate: amt("100"), DefaultCard: "pm_1"}, true, false, nil},
		{"monthly limit leaves enough", ledger.Active, []ledger.Posting{usage("15", "")},
			settings(func(s *topup.Settings) { s.MonthlyLimit = ptr(amt("100")) }), topup.TriggerState{MonthToDate: amt("50"), DefaultCard: "pm_1"}, true, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			acct := account("20")
			acct.Status = tc.status
			auto := tc.settings
			st := State{Accounts: map[string]*ledger.AccountState{"acc_1": acct}, Auto: map[string]*topup.Settings{"acc_1": &auto}}
			p := New(now, ids(), st, tc.postings)
			p.Observe(nil)
			due := p.Due()
			if (len(due) == 1) != tc.due {
				t.Fatalf("due = %v; want due %v", due, tc.due)
			}
			for _, id := range due {
				p.Trigger(id, tc.settings, tc.state)
			}
			if (len(p.TopUps) == 1) != tc.topUp {
				t.Fatalf("top-ups = %+v; want one %v", p.TopUps, tc.topUp)
			}
			if fmt.Sprint(types(p.Events)) != fmt.Sprint(tc.events) {
				t.Errorf("events = %v; want %v", types(p.Events), tc.events)
			}
			if len(tc.events) > 0 && p.LimitNotified["acc_1"] != topup.Month(now) {
				t.Errorf("limit notified = %v; want this month recorded", p.LimitNotified)
			}
			if !tc.topUp {
				return
			}
			tu := p.TopUps[0]
			if tu.Status != topup.Pending || tu.Trigger != topup.TriggerThreshold || tu.PaymentMethod == "" || !tu.CrossedAt.Equal(now) {
				t.Errorf("top-up = %+v; want pending, threshold, a card, crossed now", tu)
			}
			// Only the result that crossed names it, in the answer and in
			// what a replay answers.
			crossed := 0
			for i, r := range p.Results {
				if r.Balance < *tc.settings.Threshold && crossed == 0 {
					crossed++
					if r.TopUpID != tu.ID || p.Records[i].Result.TopUpID != tu.ID {
						t.Errorf("result %d = %+v; want it to name %s", i, r, tu.ID)
					}
				} else if r.TopUpID != "" {
					t.Errorf("result %d = %+v names a top-up; only the crossing one does", i, r)
				}
			}
		})
	}
}

// TestPlainDebitsPlanNothingMore: an account without alerts, budgets or
// Automatic Top-Up gets entries and nothing else to load or write.
func TestPlainDebitsPlanNothingMore(t *testing.T) {
	t.Parallel()
	st := State{Accounts: map[string]*ledger.AccountState{"acc_1": account("1")}}
	p := New(now, ids(), st, []ledger.Posting{usage("5", ""), usage("5", "")})
	p.Observe(nil)
	if len(p.Entries) != 2 || len(p.Spend)+len(p.Events)+len(p.Alerted)+len(p.Due()) != 0 {
		t.Errorf("plan = %+v; want two entries and nothing more", p)
	}
	if r := p.Results[1]; r.Spendable || r.Reason != ledger.ReasonInsufficientBalance || r.Balance != -amt("9") {
		t.Errorf("second result = %+v; want -9, not spendable: insufficient_balance", r)
	}
}

// TestAutomaticTopUpWatchesAvailable: with credit held, the trigger is the
// available credit (balance less held) strictly below the threshold, and
// the result that took it there names the top-up, though the balance
// stays above the threshold.
func TestAutomaticTopUpWatchesAvailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, held, usage string
		due               bool
	}{
		{"held takes available below", "8", "3", true},
		{"available exactly at the threshold", "8", "2", false},
		{"nothing held", "0", "3", false},
	} {
		acct := account("20")
		acct.Held = amt(tc.held)
		auto := topup.Settings{Enabled: true, Threshold: ptr(amt("10")), Target: ptr(amt("50"))}
		st := State{Accounts: map[string]*ledger.AccountState{"acc_1": acct}, Auto: map[string]*topup.Settings{"acc_1": &auto}}
		p := New(now, ids(), st, []ledger.Posting{usage(tc.usage, "")})
		due := p.Due()
		if (len(due) == 1) != tc.due {
			t.Errorf("%s: due = %v; want %v", tc.name, due, tc.due)
			continue
		}
		if !tc.due {
			continue
		}
		p.Trigger("acc_1", auto, topup.TriggerState{DefaultCard: "pm_1"})
		if len(p.TopUps) != 1 || p.Results[0].TopUpID != p.TopUps[0].ID || p.Records[0].Result.TopUpID != p.TopUps[0].ID {
			t.Errorf("%s: top-ups %+v, result %+v", tc.name, p.TopUps, p.Results[0])
		}
		if r := p.Results[0]; r.Balance != amt("17") || r.Available != amt("9") {
			t.Errorf("%s: result balance %s available %s", tc.name, r.Balance.Format(usd), r.Available.Format(usd))
		}
	}
}

// TestExpiryPlan: what an expiration does in a plan, whether a sweep or a
// debit meets it: it tells the customer (credit.expired, with the grant),
// a low balance alert it crosses fires there, budgets do not count it as
// usage, and the account may need an automatic top-up.
func TestExpiryPlan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		postings []ledger.Posting
		events   []string
	}{
		{"a sweep", []ledger.Posting{ledger.Sweep("acc_1")}, []string{ledger.EventCreditExpired, alert.BalanceLow}},
		{"a debit that meets it", []ledger.Posting{usage("1", "")}, []string{ledger.EventCreditExpired, alert.BalanceLow}},
		{"a void", []ledger.Posting{ledger.VoidPosting("acc_1", "live", "v1")}, []string{ledger.EventCreditExpired, alert.BalanceLow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			old := &ledger.Grant{ID: "old", AccountID: "acc_1", Category: ledger.Promotional, Source: ledger.SourceCredit, Amount: amt("15"),
				Remaining: amt("15"), Priority: 10, ExpiresAt: now.Add(-time.Minute), Status: ledger.GrantActive}
			live := &ledger.Grant{ID: "live", AccountID: "acc_1", Category: ledger.Paid, Amount: amt("5"), Remaining: amt("5"), Priority: 50, Status: ledger.GrantActive}
			acct := account("20")
			acct.Wallet = ledger.NewWallet([]*ledger.Grant{old, live}, 0)
			auto := topup.Settings{Enabled: true, Threshold: ptr(amt("10")), Target: ptr(amt("50"))}
			budget := alert.NewBudget("bud_1", "acc_1", "", alert.OneTime, ptr(amt("100")), now.Add(-time.Hour))
			st := State{Accounts: map[string]*ledger.AccountState{"acc_1": acct}, Auto: map[string]*topup.Settings{"acc_1": &auto},
				Watched: map[string]Watch{"acc_1": {Thresholds: []alert.Threshold{{Amount: amt("10")}}, Budgets: true}}}
			p := New(now, ids(), st, tc.postings)
			for _, s := range p.Spend {
				if s.Amount > amt("1") {
					t.Errorf("spend %v; the expiration is not usage", p.Spend)
				}
			}
			p.Observe([]alert.Budget{budget})
			if fmt.Sprint(types(p.Events)) != fmt.Sprint(tc.events) {
				t.Fatalf("events = %v; want %v", types(p.Events), tc.events)
			}
			d, ok := p.Events[0].Data.(ledger.ExpiredView)
			if !ok || d.ID != "old" || d.AmountExpired != "15.00" || d.Status != "expired" || p.Events[0].AccountID != "acc_1" {
				t.Errorf("credit.expired data %+v", p.Events[0].Data)
			}
			if p.Events[1].Data.(map[string]string)["balance"] != "5.00" {
				t.Errorf("balance.low %+v; want it fired at the expiration's balance", p.Events[1].Data)
			}
			if due := p.Due(); len(due) != 1 {
				t.Errorf("due = %v; the expiration took the balance below the threshold", due)
			}
		})
	}
}
