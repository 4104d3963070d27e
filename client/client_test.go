package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/topup/topup/client"
)

// TestAccountsCreditsUsage: the operator's main flow through the client:
// an account, a credit, usage (a replayed key records nothing new), a batch
// in which one bad event is refused alone, and the ledger.
func TestAccountsCreditsUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct, err := c.CreateAccount(ctx, client.AccountParams{Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if acct.APIKey == "" || acct.Currency != "usd" || acct.Balance.Cmp("0") != 0 {
		t.Fatalf("new account %+v", acct)
	}
	if _, err := c.Credit(ctx, acct.ID, client.CreditParams{Amount: "20.00", IdempotencyKey: "grant-1"}); err != nil {
		t.Fatal(err)
	}
	first, err := c.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.000125", IdempotencyKey: "call-1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.000125", IdempotencyKey: "call-1"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Balance != "19.999875" || first.Replayed || !again.Replayed || again.EntryID != first.EntryID {
		t.Fatalf("usage %+v, then the same key %+v", first, again)
	}
	got, err := c.GetAccount(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Balance != "19.999875" || got.AutoTopUp == nil || got.AutoTopUp.Enabled {
		t.Errorf("account after usage %+v", got)
	}
	var kinds []string
	for e, err := range c.Transactions(ctx, acct.ID) {
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, e.Kind+" "+e.Amount.String())
	}
	if want := []string{"usage -0.000125", "credit 20.00"}; !slices.Equal(kinds, want) {
		t.Errorf("ledger %v, want %v", kinds, want)
	}
	sp, err := c.Spendable(ctx, acct.ID, "")
	if err != nil || !sp.Spendable {
		t.Errorf("spendable %+v, %v", sp, err)
	}
}

// TestUsageBatchErrorsPerEvent: a batch event that is refused carries its
// own error naming its field; the other events are applied.
func TestUsageBatchErrorsPerEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct := newAccount(t, c, "20.00")
	if _, err := c.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.25", IdempotencyKey: "call-1"}); err != nil {
		t.Fatal(err)
	}
	batch, err := c.RecordUsageBatch(ctx, []client.BatchEvent{
		{AccountID: acct.ID, Amount: "1.00"},
		{AccountID: acct.ID, Amount: "-1"},
		{AccountID: acct.ID, Amount: "0.5", IdempotencyKey: "call-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := batch.Results
	if len(r) != 3 || r[0].Error != nil || r[0].Replayed || r[1].Error == nil || r[1].Error.Field != "events[1].amount" ||
		!errors.Is(r[1].Error, client.ErrInvalid) {
		t.Fatalf("batch results %+v", r)
	}
	if r[2].Error == nil || !errors.Is(r[2].Error, client.ErrIdempotencyConflict) {
		t.Errorf("a batch event reusing a key with another amount: %+v, want idempotency_conflict", r[2])
	}
	if a, err := c.GetAccount(ctx, acct.ID); err != nil || a.Balance != "18.75" {
		t.Errorf("balance after the batch %+v %v; want 18.75", a, err)
	}
}

// TestRefusalsAreTypedAndNotRetried: a 4xx comes back as *client.Error with
// its status, code and field, matched by errors.Is, and is sent once; an
// account's key answers for its own account only.
func TestRefusalsAreTypedAndNotRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t)
	counter := &countingTransport{next: http.DefaultTransport, count: map[string]int{}}
	c := srv.admin(client.WithHTTPClient(&http.Client{Transport: counter}))
	acct := newAccount(t, c, "")
	_, err := c.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "1e3"})
	e := client.AsError(err)
	if e == nil || e.Status != 400 || e.Code != client.CodeInvalid || e.Field != "amount" {
		t.Fatalf("usage of 1e3: %v", err)
	}
	if n := counter.count["POST /v1/accounts/"+acct.ID+"/usage"]; n != 1 {
		t.Errorf("a 400 was sent %d times, want once", n)
	}
	if _, err := c.GetAccount(ctx, "acct_nope"); !errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrInvalid) {
		t.Errorf("unknown account: %v, want not_found", err)
	}
	own := client.New(srv.url, acct.APIKey)
	if _, err := own.GetAccount(ctx, acct.ID); err != nil {
		t.Errorf("the account's key reading its account: %v", err)
	}
	if _, err := own.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "1"}); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("the account's key posting usage: %v, want forbidden", err)
	}
	if _, err := client.New(srv.url, "tpk_wrong").GetAccount(ctx, acct.ID); !client.HasCode(err, client.CodeUnauthenticated) {
		t.Errorf("a wrong key: %v, want unauthenticated", err)
	}
}

// TestCards: cards are attached, made default, listed and removed.
func TestCards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct := newAccount(t, c, "50.00")
	visa, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_visa")
	if err != nil {
		t.Fatal(err)
	}
	mc, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_mastercard")
	if err != nil {
		t.Fatal(err)
	}
	if !visa.Default || mc.Default || visa.Last4 == "" {
		t.Fatalf("cards %+v %+v", visa, mc)
	}
	if d, err := c.SetDefaultPaymentMethod(ctx, acct.ID, mc.ID); err != nil || !d.Default {
		t.Fatalf("make default: %+v %v", d, err)
	}
	var cards []string
	for pm, err := range c.PaymentMethods(ctx, acct.ID) {
		if err != nil {
			t.Fatal(err)
		}
		cards = append(cards, fmt.Sprint(pm.Brand, pm.Default))
	}
	if len(cards) != 2 {
		t.Errorf("cards listed %v", cards)
	}
	del, err := c.DeletePaymentMethod(ctx, acct.ID, mc.ID)
	if err != nil || !del.Deleted {
		t.Errorf("delete card: %+v %v", del, err)
	}
}

// TestAutoTopUpSettings: settings that break the rules are refused naming
// the field and nothing is saved; valid ones are saved, read back and
// audited; switching off keeps the amounts and can remove the cap.
func TestAutoTopUpSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct := newAccount(t, c, "50.00")
	visa, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_visa")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SetAutoTopUp(ctx, acct.ID, client.AutoTopUpParams{Enabled: true, Threshold: client.MoneyPtr("20.00"), Target: client.MoneyPtr("10.00")})
	if e := client.AsError(err); e == nil || e.Status != 400 || e.Field != "target" {
		t.Fatalf("threshold above target: %v", err)
	}
	set, err := c.SetAutoTopUp(ctx, acct.ID, client.AutoTopUpParams{Enabled: true, Threshold: client.MoneyPtr("5.00"),
		Target: client.MoneyPtr("20.00"), PaymentMethod: visa.ID, MonthlyLimit: client.MoneyPtr("100")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetAutoTopUp(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Enabled || *got.Threshold != "5.00" || *got.Target != "20.00" || *got.PaymentMethod != visa.ID ||
		*got.MonthlyLimit != "100.00" || got.UpdatedAt == nil || *set.Target != "20.00" {
		t.Errorf("settings read back %+v", got)
	}
	off, err := c.SetAutoTopUp(ctx, acct.ID, client.AutoTopUpParams{Enabled: false, RemoveMonthlyLimit: true})
	if err != nil || off.Enabled || off.MonthlyLimit != nil || *off.Target != "20.00" {
		t.Errorf("switched off without amounts: %+v %v", off, err)
	}
	audit, err := c.ListAutoTopUpAudit(ctx, acct.ID, client.ListParams{})
	if err != nil || len(audit.Data) != 2 || audit.Data[0].Actor != "admin" {
		t.Errorf("audit %+v %v", audit, err)
	}
}

// TestManualTopUps: a visa top-up succeeds and credits; a declined card is
// a 402 carrying decline_code and the failed top-up's id (kept and
// listed).
func TestManualTopUps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct := newAccount(t, c, "")
	visa, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_visa")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "10.00", PaymentMethod: visa.ID})
	if err != nil || ok.Status != "succeeded" || *ok.Amount != "10.00" || ok.Trigger != "manual" {
		t.Fatalf("visa top-up %+v %v", ok, err)
	}

	declined, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_chargeDeclinedInsufficientFunds")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "10.00", PaymentMethod: declined.ID})
	e := client.AsError(err)
	if e == nil || e.Status != 402 || !errors.Is(err, client.ErrCardDeclined) || e.DeclineCode != "insufficient_funds" || e.TopUpID == "" {
		t.Fatalf("declined top-up: %#v", err)
	}
	failed, err := c.GetTopUp(ctx, acct.ID, e.TopUpID)
	if err != nil || failed.Status != "failed" {
		t.Errorf("the declined top-up: %+v %v", failed, err)
	}

	var statuses []string
	for tu, err := range c.TopUps(ctx, acct.ID) {
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, tu.Status)
	}
	if want := []string{"failed", "succeeded"}; !slices.Equal(statuses, want) {
		t.Errorf("top-ups %v, want %v", statuses, want)
	}
	if a, err := c.GetAccount(ctx, acct.ID); err != nil || a.Balance != "10.00" {
		t.Errorf("balance after one paid top-up: %+v %v", a, err)
	}
}

// TestThreeDSecureTopUp: the 3-D Secure card answers 201 requires_action
// with its action_url; passing the challenge there settles it and credits.
func TestThreeDSecureTopUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct := newAccount(t, c, "")
	threeDS, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_authenticationRequired")
	if err != nil {
		t.Fatal(err)
	}
	tu, err := c.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "15.00", PaymentMethod: threeDS.ID})
	if err != nil || tu.Status != "requires_action" || tu.ActionURL == nil {
		t.Fatalf("3-D Secure top-up %+v %v", tu, err)
	}
	if err := c.AnswerSandboxChallenge(ctx, *tu.ActionURL, true); err != nil {
		t.Fatal(err)
	}
	if tu, err = c.GetTopUp(ctx, acct.ID, tu.ID); err != nil || tu.Status != "succeeded" {
		t.Fatalf("after the challenge %+v %v", tu, err)
	}
	if a, err := c.GetAccount(ctx, acct.ID); err != nil || a.Balance != "15.00" {
		t.Errorf("balance after the authenticated top-up: %+v %v", a, err)
	}
}

// TestVoidGrant: a void answers the grant, voided, and the balance loses
// what remained; the same key replays; a new key is ErrConflict.
func TestVoidGrant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct, err := c.CreateAccount(ctx, client.AccountParams{Email: "void@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	credit, err := c.Credit(ctx, acct.ID, client.CreditParams{Amount: "5.00"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.VoidGrant(ctx, acct.ID, credit.GrantID, client.VoidParams{IdempotencyKey: "void-1"})
	if err != nil || g.Status != "voided" || g.Remaining.Cmp("0") != 0 || g.ID != credit.GrantID || g.Replayed {
		t.Fatalf("void: %+v, %v", g, err)
	}
	again, err := c.VoidGrant(ctx, acct.ID, credit.GrantID, client.VoidParams{IdempotencyKey: "void-1"})
	if err != nil || !again.Replayed || again.ID != g.ID {
		t.Errorf("the same key: %+v, %v", again, err)
	}
	if _, err := c.VoidGrant(ctx, acct.ID, credit.GrantID, client.VoidParams{}); !errors.Is(err, client.ErrConflict) {
		t.Errorf("a new key for a voided grant: %v, want ErrConflict", err)
	}
	if got, err := c.GetAccount(ctx, acct.ID); err != nil || got.Balance.Cmp("0") != 0 {
		t.Errorf("account after the void: %+v, %v", got, err)
	}
}
