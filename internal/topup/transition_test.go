package topup

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

var testUSD, _ = money.LookupCurrency("usd")

func TestTransition(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	ten := money.Amount(10 * money.MicrosPerUnit)
	open := func(trig Trigger, status Status) TopUp {
		return TopUp{ID: "tu_1", AccountID: "acc_1", Status: status, Trigger: trig, Amount: &ten, Currency: testUSD, PaymentMethod: "pm_1",
			Attempts: 1, CreatedAt: now.Add(-time.Minute)}
	}
	on := func(streak int) *Settings {
		return &Settings{Enabled: true, Threshold: &ten, Target: &ten, FailureStreak: streak, RetryAfter: now.Add(-time.Minute)}
	}
	policy := Policy{Backoff: time.Hour, PayURL: "https://x.test/console/pay"}
	for _, tc := range []struct {
		name     string
		t        TopUp
		o        Outcome
		st       *Settings
		status   Status
		credit   bool
		streak   int // -1: settings unchanged
		disabled string
		events   []string
		next     bool
	}{
		{"succeeded: credit, streak reset, next checked", open(TriggerThreshold, Processing), Outcome{Status: Succeeded, ChargeID: "ch_1"}, on(2),
			Succeeded, true, 0, "", []string{EventTopUpSucceeded}, true},
		{"succeeded without a streak leaves settings", open(TriggerThreshold, Processing), Outcome{Status: Succeeded}, on(0),
			Succeeded, true, -1, "", []string{EventTopUpSucceeded}, true},
		{"manual success does not touch the streak", open(TriggerManual, Processing), Outcome{Status: Succeeded}, on(2),
			Succeeded, true, -1, "", []string{EventTopUpSucceeded}, true},
		{"success wins over a final failure", open(TriggerThreshold, Failed), Outcome{Status: Succeeded}, on(1),
			Succeeded, true, 0, "", []string{EventTopUpSucceeded}, true},
		{"declined: streak grows, back-off", open(TriggerThreshold, Processing), Outcome{Status: Failed, FailureCode: "card_declined"}, on(0),
			Failed, false, 1, "", []string{EventTopUpFailed}, false},
		{"third decline in a row switches off", open(TriggerThreshold, Processing), Outcome{Status: Failed, FailureCode: "card_declined"}, on(2),
			Failed, false, 3, RepeatedDeclines, []string{EventTopUpFailed, EventAutoTopUpDisabled}, false},
		{"a card never to retry switches off at once", open(TriggerThreshold, Processing), Outcome{Status: Failed, FailureCode: "stolen_card", NeverRetry: true}, on(0),
			Failed, false, 1, CardNotRetryable, []string{EventTopUpFailed, EventAutoTopUpDisabled}, false},
		{"manual failure does not touch the streak", open(TriggerManual, Processing), Outcome{Status: Failed, FailureCode: "card_declined"}, on(2),
			Failed, false, -1, "", []string{EventTopUpFailed}, false},
		{"3-D Secure expired is a failure", open(TriggerThreshold, RequiresAction), Outcome{Status: Canceled, FailureCode: AuthenticationExpired}, on(0),
			Canceled, false, 1, "", []string{EventTopUpFailed}, false},
		{"requires action", open(TriggerThreshold, Processing), Outcome{Status: RequiresAction, ChargeID: "ch_1", ClientSecret: "cs", ActionToken: "act_x"}, on(0),
			RequiresAction, false, -1, "", []string{EventTopUpActionRequired}, false},
		{"unknown: try again later", open(TriggerThreshold, Processing), Outcome{Status: Processing, RetryAt: now.Add(time.Minute)}, on(0),
			Processing, false, -1, "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Transition(tc.t, tc.o, tc.st, now, policy)
			if err != nil || !c.Changed {
				t.Fatalf("Transition = %+v, %v; want a change", c, err)
			}
			if c.TopUp.Status != tc.status {
				t.Errorf("status = %s; want %s", c.TopUp.Status, tc.status)
			}
			if tc.credit != (c.Credit != nil) {
				t.Fatalf("credit = %+v; want one %v", c.Credit, tc.credit)
			}
			if c.Credit != nil {
				p := *c.Credit
				if p.Kind != ledger.KindTopUp || p.Amount != ten || p.TopUpID != "tu_1" || p.IdempotencyKey != "topup-tu_1" || p.AccountID != "acc_1" {
					t.Errorf("credit = %+v; want a top_up entry of 10 for tu_1", p)
				}
			}
			switch {
			case tc.streak < 0 && c.Settings != nil:
				t.Errorf("settings = %+v; want them unchanged", c.Settings)
			case tc.streak >= 0 && (c.Settings == nil || c.Settings.FailureStreak != tc.streak):
				t.Errorf("settings = %+v; want streak %d", c.Settings, tc.streak)
			case tc.streak > 0 && !c.Settings.RetryAfter.Equal(now.Add(time.Hour)):
				t.Errorf("retry after = %v; want the back-off", c.Settings.RetryAfter)
			case tc.disabled != "" && (c.Settings.Enabled || c.Settings.DisabledReason != tc.disabled || c.Disabled != tc.disabled):
				t.Errorf("settings = %+v, disabled %q; want switched off: %s", c.Settings, c.Disabled, tc.disabled)
			}
			var types []string
			for _, e := range c.Events {
				types = append(types, e.Type)
				if e.AccountID != "acc_1" {
					t.Errorf("event %+v is not acc_1's", e)
				}
			}
			if strings.Join(types, ",") != strings.Join(tc.events, ",") {
				t.Errorf("events = %v; want %v", types, tc.events)
			}
			if c.CheckNext != tc.next {
				t.Errorf("check next = %v; want %v", c.CheckNext, tc.next)
			}
		})
	}
}

func TestTransitionLeavesFinalTopUps(t *testing.T) {
	t.Parallel()
	ten := money.Amount(10 * money.MicrosPerUnit)
	for _, st := range []Status{Succeeded, Failed, Canceled} {
		tu := TopUp{ID: "tu_1", Status: st, Amount: &ten}
		for _, o := range []Status{Failed, Canceled, RequiresAction, Processing} {
			if c, err := Transition(tu, Outcome{Status: o}, nil, time.Now(), Policy{}); err != nil || c.Changed || c.TopUp.Status != st {
				t.Errorf("%s top-up given %s = %+v, %v; want unchanged", st, o, c, err)
			}
		}
	}
	if c, err := Transition(TopUp{ID: "tu_1", Status: Succeeded, Amount: &ten}, Outcome{Status: Succeeded}, nil, time.Now(), Policy{}); err != nil || c.Changed {
		t.Errorf("a success again = %+v, %v; want unchanged (credited once)", c, err)
	}
	if _, err := Transition(TopUp{ID: "tu_1", Status: Pending}, Outcome{Status: Succeeded}, nil, time.Now(), Policy{}); err == nil {
		t.Error("a success before the amount was fixed was accepted")
	}
}

func TestActionURLInEvents(t *testing.T) {
	t.Parallel()
	tu := TopUp{ID: "tu_1", AccountID: "acc_1", Status: RequiresAction, ActionToken: "act_a/b", Currency: testUSD}
	if got, want := ActionURL("https://x.test/console/pay/", tu), "https://x.test/console/pay/tu_1?token=act_a%2Fb"; got != want {
		t.Errorf("ActionURL = %q; want %q", got, want)
	}
	if got := EventData(tu, "https://x.test/console/pay")["action_url"]; got != "https://x.test/console/pay/tu_1?token=act_a%2Fb" {
		t.Errorf("event action_url = %v", got)
	}
	if got := EventData(tu, "")["action_url"]; got != nil {
		t.Errorf("event action_url without a pay URL = %v; want null", got)
	}
	tu.Status = Succeeded
	if got := EventData(tu, "https://x.test/console/pay")["action_url"]; got != nil {
		t.Errorf("action_url of a top-up that waits for nothing = %v; want null", got)
	}
}

// TestEventDataIsTheWireTopUp checks that a top_up.* event carries the
// top-up as the API shows it: money as a string, times in the API's one
// format (not Go's nanosecond time.Time text), and the attempts count.
func TestEventDataIsTheWireTopUp(t *testing.T) {
	t.Parallel()
	amount := money.Amount(20_500_000)
	created := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
	tu := TopUp{ID: "tu_1", AccountID: "acc_1", Status: Succeeded, Trigger: TriggerManual, Currency: testUSD, Amount: &amount,
		PaymentMethod: "pm_1", Attempts: 2, CreatedAt: created, CompletedAt: created.Add(time.Second)}
	got, err := json.Marshal(EventData(tu, ""))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"account_id":"acc_1","action_url":null,"amount":"20.50","amount_refunded":"0.00","attempts":2,"completed_at":"2026-03-04T04:06:08.123456Z",` +
		`"created_at":"2026-03-04T04:06:07.123456Z","currency":"usd","failure_code":null,"id":"tu_1","payment_method":"pm_1",` +
		`"status":"succeeded","trigger":"manual"}`
	if string(got) != want {
		t.Errorf("event data\n got %s\nwant %s", got, want)
	}
}

// TestSuccessCreditsWhatWasCharged: a success that says what the provider
// charged credits that, and the top-up's amount becomes it; one that says
// nothing, or the same, credits the top-up's amount.
func TestSuccessCreditsWhatWasCharged(t *testing.T) {
	t.Parallel()
	ten := money.Amount(10 * money.MicrosPerUnit)
	for _, tc := range []struct {
		charged int64
		want    money.Amount
	}{
		{0, ten},
		{1000, ten},
		{1500, 15 * money.MicrosPerUnit},
		{1, 10_000},
	} {
		tu := TopUp{ID: "tu_1", AccountID: "acc_1", Status: Processing, Amount: &ten, Currency: testUSD, Attempts: 1}
		c, err := Transition(tu, Outcome{Status: Succeeded, ChargeID: "pi_1", Charged: tc.charged}, nil, time.Now(), Policy{})
		if err != nil || !c.Changed || c.Credit == nil {
			t.Fatalf("charged %d: %+v, %v", tc.charged, c, err)
		}
		if c.Credit.Amount != tc.want || c.TopUp.Amount == nil || *c.TopUp.Amount != tc.want {
			t.Errorf("charged %d: credit %v, top-up amount %v; want %v", tc.charged, c.Credit.Amount, c.TopUp.Amount, tc.want)
		}
	}
	if ten != money.Amount(10*money.MicrosPerUnit) {
		t.Error("the caller's amount was changed in place")
	}
}
