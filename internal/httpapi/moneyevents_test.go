package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/topup/topup/internal/stripe"
)

// The provider's refund and dispute events, signed as Stripe signs them,
// posted to /v1/stripe/webhook in several orders and more than once, on
// both databases: each applied once (PRODUCT.md "Refunds, disputes,
// receipts and statements").

// stripeAPI answers the one lookup the Stripe provider makes for a refund
// or dispute event: the PaymentIntent, whose metadata names the top-up.
type stripeAPI struct {
	mu      sync.Mutex
	topUpOf map[string]string // pi_… → top-up id
}

func (a *stripeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/payment_intents/")
	a.mu.Lock()
	topUp := a.topUpOf[id]
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet || !ok || topUp == "" {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such payment_intent"}}`)
		return
	}
	json.NewEncoder(w).Encode(paymentIntent(id, topUp, 1000, ""))
}

// moneyBundle is the API taking signed Stripe webhooks, with the sandbox
// charging, on SQLite or PostgreSQL.
type moneyBundle struct {
	*billingBundle
	api *stripeAPI
}

func setupMoneyEvents(t *testing.T, postgres bool) moneyBundle {
	t.Helper()
	api := &stripeAPI{topUpOf: map[string]string{}}
	fake := httptest.NewServer(api)
	t.Cleanup(fake.Close)
	sp, err := stripe.New(stripe.Config{SecretKey: "sk_test_x", WebhookSecret: stripeTestWebhookSecret, APIBase: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	return moneyBundle{setupBilling(t, billingOptions{webhooks: sp, postgres: postgres}), api}
}

// disputedTopUp is an account with a paid top-up of 10.00 and Automatic
// Top-Up on (threshold 5, target 20), its charge known to the fake Stripe.
func (b moneyBundle) disputedTopUp(t *testing.T) (acct, topUpID, chargeID string) {
	t.Helper()
	acct, topUpID, chargeID = b.paidTopUp(t)
	b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", b.adminKey, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
	b.api.mu.Lock()
	b.api.topUpOf[chargeID] = topUpID
	b.api.mu.Unlock()
	return acct, topUpID, chargeID
}

// stripeDispute is a Stripe Dispute of chargeID for 10.00; moved lists its
// balance transactions (-1000 withdrawn, +1000 reinstated).
func stripeDispute(id, chargeID, status string, moved ...int64) map[string]any {
	txns := []any{}
	for _, amount := range moved {
		category := "dispute"
		if amount > 0 {
			category = "dispute_reversal"
		}
		txns = append(txns, map[string]any{"id": fmt.Sprintf("txn_%s_%d", id, amount), "object": "balance_transaction", "amount": amount,
			"currency": "usd", "type": "adjustment", "reporting_category": category})
	}
	return map[string]any{"id": id, "object": "dispute", "amount": 1000, "currency": "usd", "status": status, "reason": "fraudulent",
		"created": time.Now().Unix(), "charge": "ch_" + chargeID, "payment_intent": chargeID, "balance_transactions": txns,
		"is_charge_refundable": false, "metadata": map[string]any{}}
}

// stripeRefund is a refund made in Stripe's Dashboard (none of Topup's
// metadata) of amount minor units of chargeID.
func stripeRefund(id, chargeID, status string, amount int64) map[string]any {
	re := map[string]any{"id": id, "object": "refund", "amount": amount, "currency": "usd", "status": status, "created": time.Now().Unix(),
		"payment_intent": chargeID, "charge": "ch_" + chargeID, "metadata": map[string]any{}, "reason": "requested_by_customer"}
	if status == "failed" {
		re["failure_reason"] = "expired_or_canceled_card"
	}
	return re
}

// signedEvent is one Stripe event to post.
type signedEvent struct {
	name    string
	payload []byte
}

// moneyOutcome is what a customer and the operator see once the events
// are in.
type moneyOutcome struct {
	balance  string
	kinds    map[string]int // entry kind → how many
	disputed int            // top_up.disputed notifications
	refunded int            // top_up.refunded notifications
	autoOff  string         // Automatic Top-Up's disabled_reason, "" while on
	dispute  string         // the dispute's status, "" without one
}

func (b moneyBundle) outcome(t *testing.T, acct string) moneyOutcome {
	t.Helper()
	o := moneyOutcome{balance: b.balance(t, acct), kinds: map[string]int{}}
	for _, e := range b.allEntries(t, acct) {
		o.kinds[str(t, e, "kind")]++
	}
	for _, n := range objects(t, b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/notifications?limit=100", b.adminKey, nil)["data"]) {
		switch n["type"] {
		case "top_up.disputed":
			o.disputed++
		case "top_up.refunded":
			o.refunded++
		}
	}
	settings := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/auto_top_up", b.adminKey, nil)
	if settings["enabled"] != true {
		o.autoOff, _ = settings["disabled_reason"].(string)
		if o.autoOff == "" {
			o.autoOff = "off"
		}
	}
	ds := objects(t, b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/disputes", b.adminKey, nil)["data"])
	if len(ds) > 1 {
		t.Errorf("disputes = %v, want at most one", ds)
	}
	if len(ds) == 1 {
		o.dispute = str(t, ds[0], "status")
	}
	return o
}

func (o moneyOutcome) String() string {
	return fmt.Sprintf("balance %s, entries %v, top_up.disputed ×%d, top_up.refunded ×%d, auto top-up off: %q, dispute %q",
		o.balance, o.kinds, o.disputed, o.refunded, o.autoOff, o.dispute)
}

func (o moneyOutcome) equal(w moneyOutcome) bool {
	if o.balance != w.balance || o.disputed != w.disputed || o.refunded != w.refunded || o.autoOff != w.autoOff || o.dispute != w.dispute ||
		len(o.kinds) != len(w.kinds) {
		return false
	}
	for k, n := range w.kinds {
		if o.kinds[k] != n {
			return false
		}
	}
	return true
}

// orders are the ways the provider may deliver events: in order, reversed,
// the last first, each twice with the whole set again at the end, and all
// at once (each twice, concurrently, as overlapping retries come; then in
// order once more).
func orders(evs []signedEvent) map[string][]signedEvent {
	n := len(evs)
	reversed := make([]signedEvent, n)
	for i, ev := range evs {
		reversed[n-1-i] = ev
	}
	lastFirst := append([]signedEvent{evs[n-1]}, evs[:n-1]...)
	var twice []signedEvent
	for _, ev := range evs {
		twice = append(twice, ev, ev)
	}
	twice = append(twice, reversed...)
	return map[string][]signedEvent{"in order": evs, "reversed": reversed, "last first": lastFirst, "each twice, then all again": twice,
		"all at once": evs}
}

// TestStripeMoneyEventsAppliedOnce: every Stripe refund and dispute event,
// signed, posted in several orders and with copies, on SQLite and on
// PostgreSQL, moves the ledger once: the entries, the balance, Automatic
// Top-Up switched off for a dispute, the customer told once, the operator's
// metric counting each dispute once, and `topup verify` clean.
func TestStripeMoneyEventsAppliedOnce(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			b := setupMoneyEvents(t, db == "postgres")
			scenarios := []struct {
				name   string
				events func(t *testing.T, charge string) []signedEvent
				want   moneyOutcome
			}{
				{"a dispute won", func(t *testing.T, pi string) []signedEvent {
					dp := "dp_won_" + pi
					return []signedEvent{
						{"created", stripeEvent(t, "evt_c_"+pi, "charge.dispute.created", stripeDispute(dp, pi, "needs_response"), nil)},
						{"funds_withdrawn", stripeEvent(t, "evt_w_"+pi, "charge.dispute.funds_withdrawn", stripeDispute(dp, pi, "needs_response", -1000), nil)},
						{"funds_reinstated", stripeEvent(t, "evt_r_"+pi, "charge.dispute.funds_reinstated", stripeDispute(dp, pi, "under_review", -1000, 1000), nil)},
						{"closed", stripeEvent(t, "evt_x_"+pi, "charge.dispute.closed", stripeDispute(dp, pi, "won", -1000, 1000), nil)},
					}
				}, moneyOutcome{balance: "10.00", kinds: map[string]int{"top_up": 1, "dispute": 1, "dispute_reversal": 1}, disputed: 1,
					autoOff: "dispute", dispute: "won"}},
				{"a dispute lost", func(t *testing.T, pi string) []signedEvent {
					dp := "dp_lost_" + pi
					return []signedEvent{
						{"created", stripeEvent(t, "evt_c_"+pi, "charge.dispute.created", stripeDispute(dp, pi, "needs_response"), nil)},
						{"funds_withdrawn", stripeEvent(t, "evt_w_"+pi, "charge.dispute.funds_withdrawn", stripeDispute(dp, pi, "needs_response", -1000), nil)},
						{"closed", stripeEvent(t, "evt_x_"+pi, "charge.dispute.closed", stripeDispute(dp, pi, "lost", -1000), nil)},
					}
				}, moneyOutcome{balance: "0.00", kinds: map[string]int{"top_up": 1, "dispute": 1}, disputed: 1, autoOff: "dispute", dispute: "lost"}},
				{"an inquiry closed", func(t *testing.T, pi string) []signedEvent {
					dp := "dp_inq_" + pi
					return []signedEvent{
						{"created", stripeEvent(t, "evt_c_"+pi, "charge.dispute.created", stripeDispute(dp, pi, "warning_needs_response"), nil)},
						{"closed", stripeEvent(t, "evt_x_"+pi, "charge.dispute.closed", stripeDispute(dp, pi, "warning_closed"), nil)},
					}
				}, moneyOutcome{balance: "10.00", kinds: map[string]int{"top_up": 1}, disputed: 1, autoOff: "dispute", dispute: "lost"}},
				{"a Dashboard refund", func(t *testing.T, pi string) []signedEvent {
					re := "re_" + pi
					return []signedEvent{
						{"refund.created", stripeEvent(t, "evt_rc_"+pi, "refund.created", stripeRefund(re, pi, "pending", 300), nil)},
						{"refund.updated", stripeEvent(t, "evt_ru_"+pi, "refund.updated", stripeRefund(re, pi, "succeeded", 300), nil)},
					}
				}, moneyOutcome{balance: "7.00", kinds: map[string]int{"top_up": 1, "refund": 1}, refunded: 1}},
			}
			var opened int
			for _, sc := range scenarios {
				for name := range orders([]signedEvent{{}}) {
					acct, _, pi := b.disputedTopUp(t)
					evs := orders(sc.events(t, pi))[name]
					if name == "all at once" {
						b.postAtOnce(t, evs)
					}
					for _, ev := range evs {
						if status, body := b.postWebhook(t, ev.payload, stripeTestWebhookSecret, time.Now()); status != http.StatusOK {
							t.Fatalf("%s %s: %s answered %d %v", sc.name, name, ev.name, status, body)
						}
					}
					if got := b.outcome(t, acct); !got.equal(sc.want) {
						t.Errorf("%s, %s: %v\nwant %v", sc.name, name, got, sc.want)
					}
					if sc.want.disputed > 0 {
						opened++
					}
				}
			}
			if got := b.disputesOpened(t); got != opened {
				t.Errorf(`topup_disputes_total{event="opened"} = %d, want %d (one per dispute)`, got, opened)
			}
			b.verifyCleanButStripeRefunds(t)
		})
	}
}

// TestStripeRefundFailedAfterSucceeding: a Dashboard refund that fails
// after it succeeded gives the money back; heard in the other order it
// never took any. Either way the balance ends where it began, and a copy of
// any event changes nothing.
func TestStripeRefundFailedAfterSucceeding(t *testing.T) {
	t.Parallel()
	b := setupMoneyEvents(t, false)
	for _, tc := range []struct {
		name  string
		order []string
		kinds map[string]int
	}{
		{"succeeded, then failed", []string{"updated", "failed", "updated", "failed"}, map[string]int{"top_up": 1, "refund": 1, "refund_reversal": 1}},
		{"failed heard first", []string{"failed", "updated", "created"}, map[string]int{"top_up": 1}},
	} {
		acct, _, pi := b.disputedTopUp(t)
		re := "re_" + pi
		evs := map[string][]byte{
			"created": stripeEvent(t, "evt_rc_"+pi, "refund.created", stripeRefund(re, pi, "pending", 1000), nil),
			"updated": stripeEvent(t, "evt_ru_"+pi, "refund.updated", stripeRefund(re, pi, "succeeded", 1000), nil),
			"failed":  stripeEvent(t, "evt_rf_"+pi, "refund.failed", stripeRefund(re, pi, "failed", 1000), nil),
		}
		for _, name := range tc.order {
			b.mustWebhook(t, evs[name])
		}
		got := b.outcome(t, acct)
		if got.balance != "10.00" || len(got.kinds) != len(tc.kinds) || got.autoOff != "" {
			t.Errorf("%s: %v, want balance 10.00, entries %v, Automatic Top-Up on", tc.name, got, tc.kinds)
		}
		for k, n := range tc.kinds {
			if got.kinds[k] != n {
				t.Errorf("%s: %d %s entries, want %d", tc.name, got.kinds[k], k, n)
			}
		}
	}
	b.verifyClean(t)
}

// TestStripeEventsForUnknownCharges: refund and dispute events about a
// charge Topup never made are acknowledged (200, so Stripe stops sending
// them) and move nothing.
func TestStripeEventsForUnknownCharges(t *testing.T) {
	t.Parallel()
	b := setupMoneyEvents(t, false)
	b.api.mu.Lock()
	b.api.topUpOf["pi_elsewhere"] = "tu_not_ours"
	b.api.mu.Unlock()
	for _, payload := range [][]byte{
		stripeEvent(t, "evt_u1", "charge.dispute.closed", stripeDispute("dp_elsewhere", "pi_elsewhere", "lost", -1000), nil),
		stripeEvent(t, "evt_u2", "refund.updated", stripeRefund("re_elsewhere", "pi_elsewhere", "succeeded", 1000), nil),
	} {
		b.mustWebhook(t, payload)
	}
	if got := b.disputesOpened(t); got != 0 {
		t.Errorf("disputes opened = %d, want 0", got)
	}
	b.verifyClean(t)
}

// TestSandboxDisputeMovesTheLedger: the sandbox's dispute endpoints send
// their events through the code that applies Stripe's, with the same
// effects: the funds leave at once, Automatic Top-Up switches off, the
// customer is told once; a won dispute gives the money back, a lost one
// keeps it.
func TestSandboxDisputeMovesTheLedger(t *testing.T) {
	t.Parallel()
	b := moneyBundle{billingBundle: setupBilling(t, billingOptions{})}
	for _, outcome := range []string{"won", "lost"} {
		acct, _, chargeID := b.paidTopUp(t)
		b.must(t, http.StatusOK, "PUT", "/v1/accounts/"+acct+"/auto_top_up", b.adminKey, map[string]any{"enabled": true, "threshold": "5", "target": "20"})
		path := "/v1/sandbox/charges/" + chargeID + "/dispute"
		b.must(t, http.StatusOK, "POST", path, b.adminKey, nil)
		b.must(t, http.StatusOK, "POST", path, b.adminKey, nil) // again: the same dispute, its events again
		open := moneyOutcome{balance: "0.00", kinds: map[string]int{"top_up": 1, "dispute": 1}, disputed: 1, autoOff: "dispute", dispute: "open"}
		if got := b.outcome(t, acct); !got.equal(open) {
			t.Errorf("disputed: %v\nwant %v", got, open)
		}
		b.must(t, http.StatusOK, "POST", path+"/close", b.adminKey, map[string]any{"outcome": outcome})
		b.must(t, http.StatusOK, "POST", path+"/close", b.adminKey, map[string]any{"outcome": outcome})
		want := moneyOutcome{balance: "0.00", kinds: map[string]int{"top_up": 1, "dispute": 1}, disputed: 1, autoOff: "dispute", dispute: outcome}
		if outcome == "won" {
			want.balance, want.kinds["dispute_reversal"] = "10.00", 1
		}
		if got := b.outcome(t, acct); !got.equal(want) {
			t.Errorf("closed %s: %v\nwant %v", outcome, got, want)
		}
		for _, tu := range b.topUps(t, acct) {
			if tu["trigger"] != "manual" && tu["status"] != "canceled" {
				t.Errorf("an automatic top-up after the dispute: %v", tu)
			}
		}
	}
	if got := b.disputesOpened(t); got != 2 {
		t.Errorf("disputes opened = %d, want 2", got)
	}
	b.verifyClean(t)
}

// postAtOnce posts the events concurrently, each twice, as overlapping
// retries of Stripe's come: each is answered 200 (two copies racing to
// record the same refund or dispute do not fail one another).
func (b moneyBundle) postAtOnce(t *testing.T, evs []signedEvent) {
	t.Helper()
	var wg sync.WaitGroup
	for _, ev := range append(evs, evs...) {
		wg.Go(func() {
			header := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev.payload, Secret: stripeTestWebhookSecret, Timestamp: time.Now()}).Header
			req, err := http.NewRequest("POST", b.srv.URL+"/v1/stripe/webhook", bytes.NewReader(ev.payload))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Stripe-Signature", header)
			resp, err := b.client.Do(req)
			if err != nil {
				t.Errorf("%s: %v", ev.name, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s, posted with its copies at once: %d %s", ev.name, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
}

var openedSeries = regexp.MustCompile(`(?m)^topup_disputes_total\{event="opened"\} (\d+)$`)

// disputesOpened reads topup_disputes_total{event="opened"} from /metrics.
func (b *billingBundle) disputesOpened(t *testing.T) int {
	t.Helper()
	req, err := http.NewRequest("GET", b.srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+b.adminKey)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := openedSeries.FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// verifyClean runs `topup verify`'s checks on the test's database.
// verifyCleanButStripeRefunds is verifyClean for a world that mixes
// providers: the top-ups are charged by the sandbox, and signed Stripe
// events then report refunds made "in Stripe's Dashboard" that the sandbox
// never made. Verify rightly reports each of those (the sandbox's refund
// log must equal the ledger's refunds); every other invariant must hold.
func (b *billingBundle) verifyCleanButStripeRefunds(t *testing.T) {
	t.Helper()
	v, err := b.store.Verify(t.Context())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range v {
		if !strings.Contains(p.Problem, "the sandbox that charged its top-up made no such refund") {
			t.Errorf("verify: %+v", p)
		}
	}
}

func (b *billingBundle) verifyClean(t *testing.T) {
	t.Helper()
	v, err := b.store.Verify(t.Context())
	if err != nil || len(v) > 0 {
		t.Errorf("verify: %v %+v", err, v)
	}
}
