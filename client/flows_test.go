package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/client"
)

// TestIteratorsWalkEveryPage: 150 entries are walked in pages of 100,
// newest first, each once; stopping early stops asking.
func TestIteratorsWalkEveryPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct := newAccount(t, c, "100.00")
	events := make([]client.BatchEvent, 149)
	for i := range events {
		events[i] = client.BatchEvent{AccountID: acct.ID, Amount: "0.01"}
	}
	if _, err := c.RecordUsageBatch(ctx, events); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last client.Entry
	for e, err := range c.Transactions(ctx, acct.ID) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[e.ID] {
			t.Fatalf("entry %s walked twice", e.ID)
		}
		seen[e.ID] = true
		last = e
	}
	if len(seen) != 150 || last.Kind != "credit" {
		t.Errorf("walked %d entries ending with %s, want 150 ending with the credit", len(seen), last.Kind)
	}
	n := 0
	for range c.Transactions(ctx, acct.ID) {
		if n++; n == 3 {
			break
		}
	}
	page, err := c.ListTransactions(ctx, acct.ID, client.ListParams{Limit: 100, StartingAfter: last.ID})
	if err != nil || len(page.Data) != 0 || page.HasMore {
		t.Errorf("the page after the oldest entry: %+v %v", page, err)
	}
	if _, err := c.ListTransactions(ctx, acct.ID, client.ListParams{Limit: 101}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("limit 101: %v, want invalid", err)
	}
}

// dropFirst forwards every request but loses the answer of the first one
// to path: the server did the work, the caller never heard.
type dropFirst struct {
	path    string
	mu      sync.Mutex
	dropped bool
	sent    int
}

func (d *dropFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.URL.Path != d.path {
		return resp, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent++
	if !d.dropped {
		d.dropped = true
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset by peer (dropped by the test)")
	}
	return resp, nil
}

// TestRetryReplaysNeverChargesTwice: when a top-up's answer is lost, the
// client sends it again with the same key; the server replays the first
// top-up and the sandbox's charge log holds one charge for it.
func TestRetryReplaysNeverChargesTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t)
	c := srv.admin()
	acct := newAccount(t, c, "")
	if _, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_visa"); err != nil {
		t.Fatal(err)
	}
	drop := &dropFirst{path: "/v1/accounts/" + acct.ID + "/top_ups"}
	flaky := srv.admin(client.WithHTTPClient(&http.Client{Transport: drop}))
	tu, err := flaky.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "12.00"})
	if err != nil {
		t.Fatal(err)
	}
	if drop.sent != 2 || !tu.Replayed || tu.Status != "succeeded" {
		t.Fatalf("sent %d times, top-up %+v; want sent twice and the second a replay", drop.sent, tu)
	}
	charges := 0
	for ch, err := range c.SandboxCharges(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if ch.TopUpID == tu.ID {
			charges++
		}
	}
	if a, err := c.GetAccount(ctx, acct.ID); charges != 1 || err != nil || a.Balance != "12.00" {
		t.Errorf("%d sandbox charges for the top-up, balance %v (%v); want one charge and 12.00", charges, a, err)
	}

	drop = &dropFirst{path: "/v1/accounts/" + acct.ID + "/usage"}
	flaky = srv.admin(client.WithHTTPClient(&http.Client{Transport: drop}))
	res, err := flaky.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "2.00"})
	if err != nil || !res.Replayed || res.Balance != "10.00" {
		t.Errorf("usage whose answer was lost: %+v %v; want a replay at balance 10.00", res, err)
	}
}

// TestWebhookVerifiesRealDelivery: a real delivery of a top-up's event
// verifies with the endpoint's secret (Standard Webhooks headers and
// Topup-Signature alike); a changed body or another secret does not.
func TestWebhookVerifiesRealDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type delivery struct {
		h    http.Header
		body []byte
	}
	got := make(chan delivery, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
	}))
	t.Cleanup(recv.Close)
	c := startServer(t).admin()
	acct := newAccount(t, c, "")
	ep, err := c.CreateWebhookEndpoint(ctx, acct.ID, recv.URL+"/hooks")
	if err != nil || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("endpoint %+v %v", ep, err)
	}
	if _, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_visa"); err != nil {
		t.Fatal(err)
	}
	tu, err := c.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "10.00"})
	if err != nil {
		t.Fatal(err)
	}
	var d delivery
	select {
	case d = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery within 20s")
	}
	ev, err := client.VerifyWebhook(ep.Secret, d.h, d.body)
	if err != nil {
		t.Fatalf("verify a real delivery: %v", err)
	}
	var data client.TopUp
	if err := ev.DecodeData(&data); err != nil || ev.Type != "top_up.succeeded" || data.ID != tu.ID || ev.ID != d.h.Get("webhook-id") {
		t.Errorf("event %+v data %+v (%v)", ev, data, err)
	}
	own := d.h.Clone()
	own.Del(client.HeaderWebhookSignature)
	if _, err := client.VerifyWebhook(ep.Secret, own, d.body); err != nil {
		t.Errorf("Topup-Signature alone: %v", err)
	}
	tampered := append([]byte(nil), d.body...)
	tampered[len(tampered)/2] ^= 1
	for name, err := range map[string]error{
		"changed body": second(client.VerifyWebhook(ep.Secret, d.h, tampered)),
		"other secret": second(client.VerifyWebhook("whsec_"+strings.Repeat("A", 44), d.h, d.body)),
		"too late": second(client.WebhookVerifier{Secrets: []string{ep.Secret},
			Now: func() time.Time { return time.Now().Add(time.Hour) }}.Verify(d.h, d.body)),
		"no headers": second(client.VerifyWebhook(ep.Secret, http.Header{}, d.body)),
	} {
		if err == nil {
			t.Errorf("%s verified", name)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestReceiptAndStatement: a succeeded top-up's receipt comes as PDF and
// as HTML; the month's statement as JSON and as a CSV stream that agree.
func TestReceiptAndStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startServer(t).admin()
	acct := newAccount(t, c, "100.00")
	visa, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_visa")
	if err != nil {
		t.Fatal(err)
	}
	tu, err := c.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "12.34", PaymentMethod: visa.ID})
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := c.Receipt(ctx, acct.ID, tu.ID)
	if err != nil || !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("receipt: %.20q, %v; want a PDF", pdf, err)
	}
	page, err := c.ReceiptHTML(ctx, acct.ID, tu.ID)
	if err != nil || !strings.Contains(string(page), "R-000001") || !strings.Contains(string(page), "12.34 USD") {
		t.Errorf("HTML receipt: %v\n%s", err, page)
	}
	if _, err := c.Receipt(ctx, acct.ID, "tu_nope"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("the receipt of no top-up: %v; want not found", err)
	}
	month := time.Now().UTC().Format("2006-01")
	st, err := c.Statement(ctx, acct.ID, month)
	if err != nil || st.OpeningBalance != "0.00" || st.ClosingBalance != "112.34" || len(st.Entries) != 2 || st.Entries[1].Kind != "top_up" {
		t.Fatalf("statement %+v, %v; want 0.00 to 112.34 over the credit and the top-up", st, err)
	}
	body, err := c.StatementCSV(ctx, acct.ID, month)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); err != nil || len(lines) != 3 || !strings.HasSuffix(lines[2], ",12.34,112.34") {
		t.Errorf("CSV statement: %v\n%s", err, data)
	}
	if _, err := c.StatementCSV(ctx, acct.ID, "2026-13"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("a statement of month 13: %v; want invalid", err)
	}
}

// TestSandboxDisputeFlow: the admin disputes the charge of a top-up in the
// sandbox and closes the dispute won; closing it lost afterwards is a
// conflict; the account lists the dispute, won.
func TestSandboxDisputeFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t)
	c := srv.admin()
	acct := newAccount(t, c, "")
	if _, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_visa"); err != nil {
		t.Fatal(err)
	}
	tu, err := c.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "12.00"})
	if err != nil {
		t.Fatal(err)
	}
	var charge string
	for ch, err := range c.SandboxCharges(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if ch.TopUpID == tu.ID {
			charge = ch.ID
		}
	}
	d, err := c.DisputeSandboxCharge(ctx, charge, "")
	if err != nil || d.ChargeID != charge || d.TopUpID != tu.ID || d.Amount != "12.00" || d.Status != "needs_response" ||
		d.Reason != "fraudulent" || !d.FundsWithdrawn {
		t.Fatalf("dispute = %+v, %v", d, err)
	}
	won, err := c.CloseSandboxDispute(ctx, charge, "won")
	if err != nil || won.ID != d.ID || won.Status != "won" || !won.FundsReinstated {
		t.Fatalf("won = %+v, %v", won, err)
	}
	var apiErr *client.Error
	if _, err := c.CloseSandboxDispute(ctx, charge, "lost"); !errors.As(err, &apiErr) || apiErr.Code != "conflict" {
		t.Fatalf("closing a won dispute as lost = %v, want a conflict", err)
	}
	ds, err := c.ListDisputes(ctx, acct.ID, client.ListParams{})
	if err != nil || len(ds.Data) != 1 || ds.Data[0].TopUpID != tu.ID || ds.Data[0].Status != "won" || ds.Data[0].AmountWithdrawn != "12.00" ||
		!ds.Data[0].Reinstated || ds.Data[0].ClosedAt == nil {
		t.Fatalf("disputes = %+v, %v; want the one won, 12.00 withdrawn and given back", ds, err)
	}
}

// TestRefundRetryReplays: when a refund's answer is lost on the way to the
// client, the client sends it again with the same key; the server replays
// the first refund, the sandbox made one refund, and the top-up shows it.
func TestRefundRetryReplays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t)
	c := srv.admin()
	acct := newAccount(t, c, "")
	if _, err := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_visa"); err != nil {
		t.Fatal(err)
	}
	tu, err := c.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "12.00"})
	if err != nil {
		t.Fatal(err)
	}
	drop := &dropFirst{path: "/v1/accounts/" + acct.ID + "/top_ups/" + tu.ID + "/refunds"}
	flaky := srv.admin(client.WithHTTPClient(&http.Client{Transport: drop}))
	amount := client.Money("5.00")
	r, err := flaky.CreateRefund(ctx, acct.ID, tu.ID, client.RefundParams{Amount: &amount, Reason: "requested_by_customer"})
	if err != nil {
		t.Fatal(err)
	}
	if drop.sent != 2 || !r.Replayed || r.Status != "succeeded" || r.Amount != "5.00" || r.TopUpID != tu.ID {
		t.Fatalf("sent %d times, refund %+v; want sent twice, the second a replay of a succeeded 5.00", drop.sent, r)
	}
	list, err := c.ListRefunds(ctx, acct.ID, tu.ID, client.ListParams{})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != r.ID {
		t.Fatalf("refunds = %+v, %v", list, err)
	}
	got, err := c.GetTopUp(ctx, acct.ID, tu.ID)
	if err != nil || got.AmountRefunded != "5.00" {
		t.Fatalf("top-up = %+v, %v; want amount_refunded 5.00", got, err)
	}
	if a, err := c.GetAccount(ctx, acct.ID); err != nil || a.Balance != "7.00" {
		t.Errorf("balance %v (%v), want 7.00", a, err)
	}
	var apiErr *client.Error
	tooMuch := client.Money("7.01")
	if _, err := c.CreateRefund(ctx, acct.ID, tu.ID, client.RefundParams{Amount: &tooMuch}); !errors.As(err, &apiErr) || apiErr.Code != "invalid" {
		t.Fatalf("more than is left = %v, want invalid", err)
	}
}
