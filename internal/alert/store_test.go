package alert_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
)

// TestMain makes the PostgreSQL database the storage tests share (a schema
// each): every test below runs on SQLite and on PostgreSQL.
func TestMain(m *testing.M) { os.Exit(topuptest.Main(m)) }

// setThresholds saves low balance alerts that must be valid.
func setThresholds(e *topuptest.Env, acct string, ts ...string) {
	e.T.Helper()
	var in []money.Amount
	for _, s := range ts {
		in = append(in, topuptest.Amt(s))
	}
	if _, err := e.Store.SetLowBalanceAlerts(e.T.Context(), acct, in); err != nil {
		e.T.Fatalf("set thresholds %v: %v", ts, err)
	}
}

// budget creates a budget that must be valid.
func budget(e *topuptest.Env, acct, subject, kind, limit string) alert.Budget {
	e.T.Helper()
	in := alert.BudgetInput{Kind: &kind}
	if subject != "" {
		in.Subject = &subject
	}
	if limit != "" {
		in.Limit = topuptest.AmtP(limit)
	}
	b, err := e.Store.CreateBudget(e.T.Context(), acct, in)
	if err != nil {
		e.T.Fatalf("create budget %s %s %s: %v", subject, kind, limit, err)
	}
	return b
}

func usageOf(e *topuptest.Env, acct, subject, amount string) ledger.Posting {
	p := e.Usage(acct, amount)
	p.Subject = subject
	return p
}

// data decodes an event's data.
func data(t *testing.T, n topup.Notification) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(n.Data, &m); err != nil {
		t.Fatalf("event %s data %s: %v", n.ID, n.Data, err)
	}
	return m
}

func spendable(e *topuptest.Env, acct, subject string) (bool, string) {
	e.T.Helper()
	ok, reason, _, err := e.Store.Spendable(e.T.Context(), acct, subject)
	if err != nil {
		e.T.Fatalf("spendable: %v", err)
	}
	return ok, reason
}

func TestLowBalanceAlertOncePerDay(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		a := e.Account()
		e.Credit(a.ID, "30")
		setThresholds(e, a.ID, "5.00", "20.00")
		// The balance flaps around 20.00 all day, single postings and
		// whole groups alike: one alert.
		for i := range 20 {
			e.Use(a.ID, "15")
			e.Credit(a.ID, "15")
			e.Clock.Advance(time.Minute)
			if i%5 == 0 {
				res, err := e.Store.Post(t.Context(), []ledger.Posting{e.Usage(a.ID, "12"), e.Usage(a.ID, "1"),
					{AccountID: a.ID, Kind: ledger.KindCredit, Amount: topuptest.Amt("13"), IdempotencyKey: fmt.Sprintf("g-%d", i), Call: ledger.ScopeCredit}})
				if err != nil || res[0].Err != nil {
					t.Fatalf("group: %v %+v", err, res)
				}
			}
		}
		lows := e.Notes(a.ID, alert.BalanceLow)
		if len(lows) != 1 {
			t.Fatalf("%d balance.low after 24 falls below 20.00 in one day, want 1: %+v", len(lows), lows)
		}
		if d := data(t, lows[0]); d["threshold"] != "20.00" || d["balance"] != "15.00" {
			t.Fatalf("balance.low data %v, want threshold 20.00 balance 15.00", d)
		}
		// Below it into the next day: nothing while it stays below.
		e.Use(a.ID, "15")
		e.Clock.Advance(24 * time.Hour)
		e.Use(a.ID, "1")
		if n := len(e.Notes(a.ID, alert.BalanceLow)); n != 1 {
			t.Fatalf("a debit while the balance stays below alerted again (%d)", n)
		}
		// A manual top-up lifts the balance back above 20.00: armed again,
		// and on a new UTC day the next fall alerts.
		e.Card(e.Sandbox, a.ID, "pm_card_visa")
		tu, _, err := e.Store.CreateManual(t.Context(), a.ID, topuptest.Amt("20"), "", "manual-1", "hash", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		e.Settle(tu.ID, topup.Outcome{Status: topup.Succeeded, ChargeID: "ch_1"})
		if got := e.Balance(a.ID); got != topuptest.Amt("34") {
			t.Fatalf("balance after the top-up %s, want 34", got)
		}
		r := e.Use(a.ID, "20") // 34 → 14
		lows = e.Notes(a.ID, alert.BalanceLow)
		if len(lows) != 2 || data(t, lows[1])["balance"] != "14.00" {
			t.Fatalf("the fall after the top-up, on a new day: %d balance.low (last %s)", len(lows), lows[len(lows)-1].Data)
		}
		// A replay of that debit changes nothing and alerts nothing.
		again, err := e.Store.Post(t.Context(), []ledger.Posting{{AccountID: a.ID, Kind: ledger.KindUsage, Amount: -topuptest.Amt("20"),
			IdempotencyKey: lastKey(t, e, a.ID), Call: ledger.ScopeUsage}})
		if err != nil || !again[0].Replayed || again[0].EntryID != r.EntryID {
			t.Fatalf("replay: %v %+v", err, again)
		}
		if n := len(e.Notes(a.ID, alert.BalanceLow)); n != 2 {
			t.Fatalf("a replay alerted (%d)", n)
		}
		// Both thresholds crossed by one debit: both, the larger first.
		e.Clock.Advance(24 * time.Hour)
		e.Credit(a.ID, "16") // 30
		e.Use(a.ID, "27")    // 3
		lows = e.Notes(a.ID, alert.BalanceLow)
		if len(lows) != 4 || data(t, lows[2])["threshold"] != "20.00" || data(t, lows[3])["threshold"] != "5.00" {
			t.Fatalf("a fall through both thresholds: %d alerts", len(lows))
		}
		e.Verify()
	})
}

// lastKey returns the idempotency key of the account's newest entry.
func lastKey(t *testing.T, e *topuptest.Env, acct string) string {
	t.Helper()
	es, _, err := e.Store.Entries(t.Context(), acct, ledger.Page{Limit: 1})
	if err != nil || len(es) != 1 {
		t.Fatalf("entries: %v", err)
	}
	return es[0].IdempotencyKey
}

func TestBudgetsAnnounceAndStop(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		a := e.Account()
		e.Credit(a.ID, "1000")
		b := budget(e, a.ID, "", "monthly", "10.00")
		if r := e.Use(a.ID, "4"); !r.Spendable || r.Reason != "" {
			t.Fatalf("usage within the budget: %+v", r)
		}
		// One debit crosses 50 % and 80 %: both events, in order.
		e.Use(a.ID, "4.5")
		th := e.Notes(a.ID, alert.BudgetThresholdReached)
		if len(th) != 2 || data(t, th[0])["percent"] != 50.0 || data(t, th[1])["percent"] != 80.0 || data(t, th[1])["spent"] != "8.50" {
			t.Fatalf("budget.threshold_reached after 8.50 of 10.00: %+v", th)
		}
		if d := data(t, th[0]); d["id"] != b.ID || d["limit"] != "10.00" || d["kind"] != "monthly" {
			t.Fatalf("the event's budget: %v", d)
		}
		// Reaching the limit: exhausted, and usage (still recorded) says stop.
		r := e.Use(a.ID, "2")
		if r.Spendable || r.Reason != ledger.ReasonBudgetExhausted || r.EntryID == "" {
			t.Fatalf("usage past the limit: %+v; want recorded, not spendable, budget_exhausted", r)
		}
		if ex := e.Notes(a.ID, alert.BudgetExhausted); len(ex) != 1 || data(t, ex[0])["percent"] != 100.0 {
			t.Fatalf("budget.exhausted: %+v", ex)
		}
		if ok, reason := spendable(e, a.ID, ""); ok || reason != ledger.ReasonBudgetExhausted {
			t.Fatalf("spendable: %v %s", ok, reason)
		}
		// The first response, stored, is replayed with its reason.
		again, err := e.Store.Post(t.Context(), []ledger.Posting{{AccountID: a.ID, Kind: ledger.KindUsage, Amount: -topuptest.Amt("2"),
			IdempotencyKey: lastKey(t, e, a.ID), Call: ledger.ScopeUsage}})
		if err != nil || !again[0].Replayed || again[0].Spendable || again[0].Reason != ledger.ReasonBudgetExhausted {
			t.Fatalf("replay of the stopped usage: %v %+v", err, again)
		}
		// The month ends (the clock moves, nothing sleeps): spend resets.
		e.Clock.Set(time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC))
		if ok, _ := spendable(e, a.ID, ""); !ok {
			t.Fatal("the budget still stops spending in a new month")
		}
		if got, err := e.Store.Budget(t.Context(), a.ID, b.ID); err != nil || got.Spent != 0 || got.PeriodStart != e.Now() {
			t.Fatalf("budget on April 1st: %+v %v", got, err)
		}
		r = e.Use(a.ID, "6")
		if !r.Spendable {
			t.Fatalf("first usage of April: %+v", r)
		}
		if th := e.Notes(a.ID, alert.BudgetThresholdReached); len(th) != 3 || data(t, th[2])["spent"] != "6.00" {
			t.Fatalf("50 %% of April's budget: %d events", len(th))
		}
		e.Verify()
	})
}

func TestBudgetOfOneSubjectStopsOnlyIt(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		a := e.Account()
		e.Credit(a.ID, "100")
		keyA := budget(e, a.ID, "key_a", "one_time", "5.00")
		wide := budget(e, a.ID, "", "unlimited", "")
		// A batch: key_a is spent in the middle; key_b goes on.
		res, err := e.Store.Post(t.Context(), []ledger.Posting{usageOf(e, a.ID, "key_a", "3"), usageOf(e, a.ID, "key_a", "3"),
			usageOf(e, a.ID, "key_b", "1"), usageOf(e, a.ID, "", "1"), usageOf(e, a.ID, "key_a", "0.5")})
		if err != nil {
			t.Fatal(err)
		}
		want := []bool{true, false, true, true, false}
		for i, r := range res {
			if r.Err != nil || r.Spendable != want[i] {
				t.Fatalf("event %d: %+v, want spendable %v", i, r, want[i])
			}
		}
		for subject, want := range map[string]bool{"key_a": false, "key_b": true, "": true} {
			if ok, _ := spendable(e, a.ID, subject); ok != want {
				t.Errorf("spendable(%q) = %v, want %v", subject, ok, want)
			}
		}
		gotA, _ := e.Store.Budget(t.Context(), a.ID, keyA.ID)
		gotWide, _ := e.Store.Budget(t.Context(), a.ID, wide.ID)
		if gotA.Spent != topuptest.Amt("6.5") || gotWide.Spent != topuptest.Amt("8.5") {
			t.Fatalf("spent: key_a %s (want 6.50), account-wide %s (want 8.50: every subject counts)", gotA.Spent, gotWide.Spent)
		}
		if ex := e.Notes(a.ID, alert.BudgetExhausted); len(ex) != 1 || data(t, ex[0])["subject"] != "key_a" {
			t.Fatalf("budget.exhausted: %+v", ex)
		}
		e.Verify()
	})
}

func TestBudgetLimitChanges(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		a := e.Account()
		e.Credit(a.ID, "100")
		b := budget(e, a.ID, "", "monthly", "100.00")
		e.Use(a.ID, "30")
		// Lowering the limit below the spend exhausts at once, with its events.
		got, err := e.Store.UpdateBudget(t.Context(), a.ID, b.ID, alert.BudgetInput{Limit: topuptest.AmtP("20")})
		if err != nil || got.Spent != topuptest.Amt("30") || !got.Exhausted() {
			t.Fatalf("lowered to 20.00: %+v %v", got, err)
		}
		if ex := e.Notes(a.ID, alert.BudgetExhausted); len(ex) != 1 {
			t.Fatalf("lowering below the spend: %d budget.exhausted", len(ex))
		}
		if ok, reason := spendable(e, a.ID, ""); ok || reason != ledger.ReasonBudgetExhausted {
			t.Fatalf("spendable after lowering: %v %s", ok, reason)
		}
		// Raised again: what was spent is kept, spending may go on.
		if got, err = e.Store.UpdateBudget(t.Context(), a.ID, b.ID, alert.BudgetInput{Limit: topuptest.AmtP("200")}); err != nil || got.Spent != topuptest.Amt("30") || got.Exhausted() {
			t.Fatalf("raised to 200.00: %+v %v", got, err)
		}
		if r := e.Use(a.ID, "1"); !r.Spendable {
			t.Fatalf("usage after raising: %+v", r)
		}
		// Kind and subject cannot change; a limit must fit the kind.
		kind, subject := "one_time", "key_x"
		for _, in := range []alert.BudgetInput{{Kind: &kind, Limit: topuptest.AmtP("5")}, {Subject: &subject, Limit: topuptest.AmtP("5")}, {}} {
			if _, err := e.Store.UpdateBudget(t.Context(), a.ID, b.ID, in); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("update %+v: %v, want invalid", in, err)
			}
		}
		e.Verify()
	})
}
