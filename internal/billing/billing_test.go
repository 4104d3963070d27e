package billing_test

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/billing"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
	"github.com/topup/topup/internal/topup/topuptest"
)

func TestMain(m *testing.M) { os.Exit(topuptest.Main(m)) }

// newService is the service over e's store, with the sandbox charging and
// an engine that charges manual top-ups at once (not started: nothing else
// runs in the background).
func newService(e *topuptest.Env, cfg billing.Config) *billing.Service {
	cfg.PublicURL = "https://billing.example.com"
	return billing.New(cfg, billing.Deps{Store: e.Store.Payments, Alerts: e.Store, Provider: e.Sandbox, Sandbox: e.Sandbox,
		Engine: e.Engine(e.Sandbox), Clock: e.Clock, Logger: topuptest.Logger(e.T, 0)})
}

// closed closes the account and returns it as the edge reads it.
func closed(e *topuptest.Env, a ledger.Account) ledger.Account {
	e.T.Helper()
	st := ledger.Closed
	a, err := e.Store.UpdateAccount(e.T.Context(), a.ID, ledger.AccountUpdate{Status: &st})
	if err != nil {
		e.T.Fatalf("close %s: %v", a.ID, err)
	}
	return a
}

// wantRefusal fails unless err is a refusal with code (and field, when
// given).
func wantRefusal(t *testing.T, err error, code apperr.Code, field string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil || e.Code != code || (field != "" && e.Field != field) {
		t.Fatalf("err = %v; want %s on %q", err, code, field)
	}
}

// TestManualTopUpAmounts: a manual top-up is whole minor units between the
// currency's minimum charge and TOPUP_MAX_TARGET; anything else is refused
// naming "amount" and records nothing.
func TestManualTopUpAmounts(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		svc := newService(e, billing.Config{MaxTarget: topuptest.Amt("500.00")})
		a := e.Account()
		e.Card(e.Sandbox, a.ID, "pm_card_visa")
		for i, tc := range []struct {
			amount money.Amount
			ok     bool
		}{
			{0, false},
			{-topuptest.Amt("5.00"), false},
			{topuptest.Amt("5.005"), false}, // not whole cents
			{a.Currency.MinCharge - topuptest.Amt("0.01"), false},
			{topuptest.Amt("500.01"), false},
			{a.Currency.MinCharge, true},
			{topuptest.Amt("500.00"), true},
		} {
			tu, replay, err := svc.RecordManualTopUp(t.Context(), a, tc.amount, "", "k"+string(rune('a'+i)))
			if !tc.ok {
				wantRefusal(t, err, apperr.Invalid, "amount")
				continue
			}
			if err != nil || replay || tu.Status != topup.Pending || *tu.Amount != tc.amount {
				t.Errorf("%s: got %+v replay %v err %v; want a pending top-up", tc.amount, tu, replay, err)
			}
		}
		if n := len(e.TopUps(a.ID)); n != 2 {
			t.Errorf("%d top-ups recorded; want the 2 accepted", n)
		}
	})
}

// TestManualTopUpIdempotency: a key replayed with the same amount and card
// returns the first top-up; with another amount or card it is a conflict;
// a closed account or one without a card is refused.
func TestManualTopUpIdempotency(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		svc := newService(e, billing.Config{})
		a := e.Account()
		card := e.Card(e.Sandbox, a.ID, "pm_card_visa")
		ten, twenty := topuptest.Amt("10.00"), topuptest.Amt("20.00")
		first, _, err := svc.RecordManualTopUp(t.Context(), a, ten, "", "k1")
		if err != nil {
			t.Fatal(err)
		}
		bare := e.Account()
		for _, tc := range []struct {
			name   string
			acct   ledger.Account
			amount money.Amount
			card   string
			key    string
			code   apperr.Code // "" for a replay of first
			field  string
		}{
			{"same request", a, ten, "", "k1", "", ""},
			{"another amount", a, twenty, "", "k1", apperr.IdempotencyConflict, "idempotency_key"},
			{"the default card named", a, ten, card.ID, "k1", apperr.IdempotencyConflict, "idempotency_key"},
			{"an unknown card", a, ten, "pm_nope", "k2", apperr.Invalid, "payment_method"},
			{"no card at all", bare, ten, "", "k1", apperr.Invalid, "payment_method"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tu, replay, err := svc.RecordManualTopUp(t.Context(), tc.acct, tc.amount, tc.card, tc.key)
				if tc.code != "" {
					wantRefusal(t, err, tc.code, tc.field)
					return
				}
				if err != nil || !replay || tu.ID != first.ID {
					t.Errorf("got %s replay %v err %v; want a replay of %s", tu.ID, replay, err, first.ID)
				}
			})
		}
		_, _, err = svc.RecordManualTopUp(t.Context(), closed(e, a), ten, "", "k3")
		wantRefusal(t, err, apperr.AccountClosed, "")
		if n := len(e.TopUps(a.ID)); n != 1 {
			t.Errorf("%d top-ups; want only the first", n)
		}
	})
}

// TestManualTopUpCharges: a manual top-up is charged at once and credited
// (or Failed, without error, when declined); a replay returns the first.
func TestManualTopUpCharges(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		svc := newService(e, billing.Config{})
		a := e.Account()
		e.Card(e.Sandbox, a.ID, "pm_card_visa")
		tu, replay, err := svc.ManualTopUp(t.Context(), a, topuptest.Amt("10.00"), "", "paid")
		if err != nil || replay || tu.Status != topup.Succeeded {
			t.Fatalf("got %s replay %v err %v; want succeeded", tu.Status, replay, err)
		}
		if b := e.Balance(a.ID); b != topuptest.Amt("10.00") {
			t.Errorf("balance %s; want 10.00", b)
		}
		if again, replay, err := svc.ManualTopUp(t.Context(), a, topuptest.Amt("10.00"), "", "paid"); err != nil || !replay || again.ID != tu.ID {
			t.Errorf("replay got %s %v %v; want %s", again.ID, replay, err, tu.ID)
		}
		declined := e.Card(e.Sandbox, a.ID, "pm_card_chargeDeclined")
		tu, _, err = svc.ManualTopUp(t.Context(), a, topuptest.Amt("10.00"), declined.ID, "declined")
		if err != nil || tu.Status != topup.Failed || tu.FailureCode == "" {
			t.Errorf("declined: got %s %q err %v; want failed with a code", tu.Status, tu.FailureCode, err)
		}
	})
}

// TestManualTopUpReplayWhileWaiting: a replay while the first request
// still waits for the provider is request_in_progress; after the wait it
// returns the first top-up and charges nothing more.
func TestManualTopUpReplayWhileWaiting(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		svc := newService(e, billing.Config{})
		a := e.Account()
		e.Card(e.Sandbox, a.ID, "pm_card_visa")
		waiting, _, err := svc.RecordManualTopUp(t.Context(), a, topuptest.Amt("5.00"), "", "slow")
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = svc.ManualTopUp(t.Context(), a, topuptest.Amt("5.00"), "", "slow")
		wantRefusal(t, err, apperr.RequestInProgress, "")
		e.Clock.Advance(billing.ManualWait)
		if again, replay, err := svc.ManualTopUp(t.Context(), a, topuptest.Amt("5.00"), "", "slow"); err != nil || !replay || again.ID != waiting.ID {
			t.Errorf("after the wait got %s %v %v; want %s replayed", again.ID, replay, err, waiting.ID)
		}
		if b := e.Balance(a.ID); b != 0 {
			t.Errorf("balance %s; want nothing charged by a replay", b)
		}
	})
}

// TestThreeDSecure: a charge the bank wants authenticated leaves the
// top-up requires_action with an action URL; the URL's token opens it (and
// nothing else does), and the customer's answer settles it.
func TestThreeDSecure(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		svc := newService(e, billing.Config{ConsoleURL: "https://billing.example.com/console"})
		a := e.Account()
		e.Card(e.Sandbox, a.ID, "pm_card_authenticationRequired")
		tu, _, err := svc.ManualTopUp(t.Context(), a, topuptest.Amt("10.00"), "", "3ds")
		if err != nil || tu.Status != topup.RequiresAction {
			t.Fatalf("got %s err %v; want requires_action", tu.Status, err)
		}
		u, err := url.Parse(svc.ActionURL(tu))
		if err != nil || !strings.HasPrefix(u.String(), "https://billing.example.com/console/pay/"+tu.ID) {
			t.Fatalf("action URL %q; want the console's 3-D Secure page", u)
		}
		if sandbox, _ := svc.Payments(); !sandbox {
			t.Error("Payments says Stripe; want the sandbox's challenge")
		}
		for _, tc := range []struct{ id, token string }{{tu.ID, "wrong"}, {tu.ID, ""}, {"tu_nope", u.Query().Get("token")}} {
			_, err := svc.ActionTopUp(t.Context(), tc.id, tc.token)
			wantRefusal(t, err, apperr.NotFound, "")
		}
		opened, err := svc.ActionTopUp(t.Context(), tu.ID, u.Query().Get("token"))
		if err != nil || opened.ID != tu.ID {
			t.Fatalf("the action URL's token opened %s, %v", opened.ID, err)
		}
		done, err := svc.AnswerChallenge(t.Context(), opened, true)
		if err != nil || done.Status != topup.Succeeded || svc.ActionURL(done) != "" {
			t.Errorf("answered: %s err %v; want succeeded with no action URL", done.Status, err)
		}
		if again, err := svc.AnswerChallenge(t.Context(), done, false); err != nil || again.Status != topup.Succeeded {
			t.Errorf("answering again: %s err %v; want nothing changed", again.Status, err)
		}
		stripe := billing.New(billing.Config{}, billing.Deps{Store: e.Store.Payments})
		_, err = stripe.AnswerChallenge(t.Context(), opened, true)
		wantRefusal(t, err, apperr.NotFound, "")
	})
}

// TestCompleteCardSetup: a hosted setup session brings its card in once;
// an empty, unfinished or foreign session is invalid, and a closed
// account adds no card.
func TestCompleteCardSetup(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		svc := newService(e, billing.Config{})
		a, other := e.Account(), e.Account()
		session := func(acct ledger.Account, token string) string {
			t.Helper()
			page, err := svc.StartCardSetup(t.Context(), acct, "https://billing.example.com/return", "https://billing.example.com/")
			if err != nil {
				t.Fatal(err)
			}
			id := page[strings.LastIndex(page, "/")+1:]
			if token != "" {
				if _, err := e.Sandbox.ChooseCard(t.Context(), id, token); err != nil {
					t.Fatal(err)
				}
			}
			return id
		}
		done, unfinished, foreign := session(a, "pm_card_visa"), session(a, ""), session(other, "pm_card_visa")
		card, err := svc.CompleteCardSetup(t.Context(), a, done)
		if err != nil || card.Last4 != "4242" || !card.Default {
			t.Fatalf("got %+v, %v; want the visa as the default", card, err)
		}
		for _, tc := range []struct {
			name    string
			acct    ledger.Account
			session string
			code    apperr.Code
		}{
			{"no session", a, "", apperr.Invalid},
			{"unfinished", a, unfinished, apperr.Invalid},
			{"another customer's", a, foreign, apperr.Invalid},
			{"used before", a, done, apperr.Conflict},
			{"closed account", closed(e, other), foreign, apperr.AccountClosed},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := svc.CompleteCardSetup(t.Context(), tc.acct, tc.session)
				field := "session_id"
				if tc.code == apperr.AccountClosed {
					field = ""
				}
				wantRefusal(t, err, tc.code, field)
			})
		}
		_, err = svc.StartCardSetup(t.Context(), closed(e, a), "https://billing.example.com/return", "")
		wantRefusal(t, err, apperr.AccountClosed, "")
		if cards, _ := e.Store.Cards(t.Context(), a.ID); len(cards) != 1 {
			t.Errorf("%d cards; want the one setup", len(cards))
		}
	})
}

// TestCardsAndSettings: a card attached by token is saved (refused cards
// and closed accounts are not); settings saves are checked against
// TOPUP_MAX_TARGET and may charge at once; removing the card Automatic
// Top-Up names switches it off, and a closed account may still remove.
func TestCardsAndSettings(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		svc := newService(e, billing.Config{MaxTarget: topuptest.Amt("100.00")})
		a := e.Account()
		_, err := svc.AttachCard(t.Context(), a, "pm_nope")
		wantRefusal(t, err, apperr.Invalid, "payment_method")
		card, err := svc.AttachCard(t.Context(), a, "pm_card_visa")
		if err != nil || !card.Default {
			t.Fatalf("attach: %+v, %v", card, err)
		}
		on := true
		for _, tc := range []struct {
			name           string
			threshold, tgt string
			field          string
		}{
			{"target above TOPUP_MAX_TARGET", "10.00", "100.01", "target"},
			{"target not above threshold", "10.00", "10.00", "target"},
		} {
			_, _, err := svc.SaveSettings(t.Context(), a.ID, "test", topup.Input{Enabled: &on, Threshold: topuptest.AmtP(tc.threshold), Target: topuptest.AmtP(tc.tgt)})
			wantRefusal(t, err, apperr.Invalid, tc.field)
		}
		st, created, err := svc.SaveSettings(t.Context(), a.ID, "test", topup.Input{Enabled: &on, Threshold: topuptest.AmtP("10.00"), Target: topuptest.AmtP("100.00"),
			PaymentMethod: &card.ID})
		if err != nil || !st.Enabled || created == nil {
			t.Fatalf("save: %+v created %v err %v; want enabled and a top-up at once (balance 0)", st, created, err)
		}
		_, err = svc.RemoveCard(t.Context(), a.ID, "pm_nope")
		wantRefusal(t, err, apperr.NotFound, "")
		spare, err := svc.AttachCard(t.Context(), a, "pm_card_mastercard")
		if err != nil {
			t.Fatal(err)
		}
		disabled, err := svc.RemoveCard(t.Context(), a.ID, card.ID)
		if err != nil || !disabled {
			t.Errorf("remove: disabled %v err %v; want Automatic Top-Up switched off", disabled, err)
		}
		if st, _ := e.Settings(a.ID); st.Enabled {
			t.Error("Automatic Top-Up is still on without its card")
		}
		gone := closed(e, a)
		_, err = svc.AttachCard(t.Context(), gone, "pm_card_amex")
		wantRefusal(t, err, apperr.AccountClosed, "")
		_, _, err = svc.SaveSettings(t.Context(), a.ID, "test", topup.Input{Enabled: &on})
		wantRefusal(t, err, apperr.AccountClosed, "")
		if _, err := svc.RemoveCard(t.Context(), a.ID, spare.ID); err != nil {
			t.Errorf("a closed account removing its card: %v", err)
		}
		if cards, _ := e.Store.Cards(t.Context(), a.ID); len(cards) != 0 {
			t.Errorf("%d cards left; want none", len(cards))
		}
	})
}

// TestAlertOperations: thresholds, budgets and endpoints are refused by
// the rules, naming the field; without alert storage every one is
// NotFound; endpoints on private addresses need
// TOPUP_WEBHOOKS_ALLOW_PRIVATE.
func TestAlertOperations(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		svc := newService(e, billing.Config{})
		private := newService(e, billing.Config{WebhooksAllowPrivate: true})
		none := billing.New(billing.Config{}, billing.Deps{Store: e.Store.Payments})
		a := e.Account()
		ctx := t.Context()
		limit, monthly := topuptest.Amt("10.00"), "monthly"
		for _, tc := range []struct {
			name  string
			call  func(s *billing.Service) error
			code  apperr.Code
			field string
		}{
			{"thresholds", func(s *billing.Service) error {
				_, err := s.SetLowBalanceAlerts(ctx, a.ID, []money.Amount{topuptest.Amt("5.00"), -1})
				return err
			}, apperr.Invalid, "thresholds[1]"},
			{"budget", func(s *billing.Service) error {
				_, err := s.CreateBudget(ctx, a.ID, alert.BudgetInput{Kind: &monthly})
				return err
			}, apperr.Invalid, "limit"},
			{"budget update", func(s *billing.Service) error {
				_, err := s.UpdateBudget(ctx, a.ID, "bud_nope", alert.BudgetInput{Kind: &monthly, Limit: &limit})
				return err
			}, apperr.NotFound, ""},
			{"budget delete", func(s *billing.Service) error { return s.DeleteBudget(ctx, a.ID, "bud_nope") }, apperr.NotFound, ""},
			{"endpoint without URL", func(s *billing.Service) error {
				_, err := s.CreateEndpoint(ctx, a.ID, "")
				return err
			}, apperr.Invalid, "url"},
			{"endpoint on loopback", func(s *billing.Service) error {
				_, err := s.CreateEndpoint(ctx, a.ID, "https://127.0.0.1/hook")
				return err
			}, apperr.Invalid, "url"},
			{"endpoint delete", func(s *billing.Service) error { return s.DeleteEndpoint(ctx, a.ID, "we_nope") }, apperr.NotFound, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantRefusal(t, tc.call(svc), tc.code, tc.field)
				wantRefusal(t, tc.call(none), apperr.NotFound, "")
			})
		}
		if _, err := svc.CreateBudget(ctx, a.ID, alert.BudgetInput{Kind: &monthly, Limit: &limit}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.CreateBudget(ctx, a.ID, alert.BudgetInput{Kind: &monthly, Limit: &limit})
		wantRefusal(t, err, apperr.Conflict, "")
		ep, err := private.CreateEndpoint(ctx, a.ID, "https://127.0.0.1/hook")
		if err != nil || ep.Secret == "" {
			t.Fatalf("a private endpoint under TOPUP_WEBHOOKS_ALLOW_PRIVATE: %+v, %v", ep, err)
		}
		if err := svc.DeleteEndpoint(ctx, a.ID, ep.ID); err != nil {
			t.Error(err)
		}
		_, err = svc.SetLowBalanceAlerts(ctx, closed(e, a).ID, []money.Amount{topuptest.Amt("5.00")})
		wantRefusal(t, err, apperr.AccountClosed, "")
	})
}

// TestManualHash: the idempotency hash of a manual top-up depends on the
// amount to the micro and on the card named, and on nothing else.
func TestManualHash(t *testing.T) {
	t.Parallel()
	ten := topuptest.Amt("10.00")
	for _, tc := range []struct {
		a, b money.Amount
		ca   string
		cb   string
		same bool
	}{
		{ten, ten, "", "", true},
		{ten, ten, "pm_1", "pm_1", true},
		{ten, ten + 1, "", "", false},
		{ten, ten, "", "pm_1", false},
		{ten, ten, "pm_1", "pm_2", false},
	} {
		if got := billing.ManualHash(tc.a, tc.ca) == billing.ManualHash(tc.b, tc.cb); got != tc.same {
			t.Errorf("ManualHash(%d, %q) == ManualHash(%d, %q) is %v; want %v", tc.a, tc.ca, tc.b, tc.cb, got, tc.same)
		}
	}
}
