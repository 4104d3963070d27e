package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

const testWebhookSecret = "whsec_test_secret"

// eventJSON is a Stripe-shaped event around object, of stripe-go's
// api_version.
func eventJSON(t *testing.T, id, typ string, object obj, previous obj) []byte {
	t.Helper()
	return versionedEventJSON(t, stripego.APIVersion, id, typ, object, previous)
}

// versionedEventJSON is eventJSON rendered in apiVersion.
func versionedEventJSON(t *testing.T, apiVersion, id, typ string, object obj, previous obj) []byte {
	t.Helper()
	data := obj{"object": object}
	if previous != nil {
		data["previous_attributes"] = previous
	}
	b, err := json.Marshal(obj{
		"id": id, "object": "event", "type": typ, "api_version": apiVersion,
		"created": 1767225600, "livemode": false, "pending_webhooks": 1, "data": data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign signs payload as Stripe would at time at.
func sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: payload, Secret: secret, Timestamp: at,
	}).Header
}

// TestParseWebhookCharges proves payment_intent events carry the charge,
// read as Charge reads it, with the top-up id from the metadata.
func TestParseWebhookCharges(t *testing.T) {
	t.Parallel()
	_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("payment_intent events need no lookup, got %s %s", r.Method, r.URL.Path)
	})
	tests := []struct {
		name, typ string
		pi        obj
		want      payment.Charge
	}{
		{
			name: "succeeded", typ: "payment_intent.succeeded",
			pi:   intent("pi_1", "succeeded", "tu_1", nil),
			want: payment.Charge{ID: "pi_1", TopUpID: "tu_1", Status: payment.Succeeded},
		},
		{
			name: "payment_failed insufficient funds", typ: "payment_intent.payment_failed",
			pi: intent("pi_2", "requires_payment_method", "tu_2", obj{
				"last_payment_error": obj{"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"},
			}),
			want: payment.Charge{ID: "pi_2", TopUpID: "tu_2", Status: payment.Declined, DeclineCode: "insufficient_funds"},
		},
		{
			name: "payment_failed authentication_required waits for the customer", typ: "payment_intent.payment_failed",
			pi: intent("pi_3", "requires_payment_method", "tu_3", obj{
				"last_payment_error": obj{"type": "card_error", "code": "authentication_required", "decline_code": "authentication_required"},
			}),
			want: payment.Charge{ID: "pi_3", TopUpID: "tu_3", Status: payment.RequiresAction, DeclineCode: "authentication_required", ClientSecret: "pi_3_secret_abc"},
		},
		{
			name: "payment_failed after a failed 3-D Secure challenge", typ: "payment_intent.payment_failed",
			pi: intent("pi_4", "requires_payment_method", "tu_4", obj{
				"last_payment_error": obj{"type": "invalid_request_error", "code": "payment_intent_authentication_failure"},
			}),
			want: payment.Charge{ID: "pi_4", TopUpID: "tu_4", Status: payment.Declined, DeclineCode: "payment_intent_authentication_failure"},
		},
		{
			name: "requires_action", typ: "payment_intent.requires_action",
			pi:   intent("pi_5", "requires_action", "tu_5", nil),
			want: payment.Charge{ID: "pi_5", TopUpID: "tu_5", Status: payment.RequiresAction, ClientSecret: "pi_5_secret_abc"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			payload := eventJSON(t, "evt_"+tt.pi["id"].(string), tt.typ, tt.pi, nil)
			ev, err := p.ParseWebhook(payload, sign(payload, testWebhookSecret, time.Now()))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if ev.ID != "evt_"+tt.pi["id"].(string) || ev.Type != tt.typ || ev.Customer != "cus_1" ||
				!ev.Created.Equal(time.Unix(1767225600, 0)) || ev.Charge == nil {
				t.Fatalf("event = %+v", ev)
			}
			tt.want.Amount, tt.want.Currency, tt.want.Created = 1250, "usd", time.Unix(1767225600, 0).UTC()
			if *ev.Charge != tt.want {
				t.Errorf("charge =\n %+v\nwant\n %+v", *ev.Charge, tt.want)
			}
		})
	}
}

// TestParseWebhookRefusesBadSignatures proves that nothing unsigned, wrongly
// signed, altered or replayed late gets through, and that each such refusal
// wraps payment.ErrBadSignature.
func TestParseWebhookRefusesBadSignatures(t *testing.T) {
	t.Parallel()
	_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {})
	payload := eventJSON(t, "evt_1", "payment_intent.succeeded", intent("pi_1", "succeeded", "tu_1", nil), nil)
	now := time.Now()
	tests := []struct {
		name    string
		payload []byte
		header  string
	}{
		{"wrong secret", payload, sign(payload, "whsec_someone_else", now)},
		{"no header", payload, ""},
		{"garbled header", payload, "t=abc,v1"},
		{"altered body", []byte(strings.Replace(string(payload), `"amount":1250`, `"amount":999999`, 1)), sign(payload, testWebhookSecret, now)},
		{"older than the 300 s tolerance", payload, sign(payload, testWebhookSecret, now.Add(-6*time.Minute))},
		{"signed 6 minutes in the future", payload, sign(payload, testWebhookSecret, now.Add(6*time.Minute))},
		{"signed a day in the future", payload, sign(payload, testWebhookSecret, now.Add(24*time.Hour))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := p.ParseWebhook(tt.payload, tt.header); !errors.Is(err, payment.ErrBadSignature) {
				t.Errorf("ParseWebhook error = %v, want ErrBadSignature", err)
			}
		})
	}
	t.Run("within the tolerance", func(t *testing.T) {
		t.Parallel()
		if _, err := p.ParseWebhook(payload, sign(payload, testWebhookSecret, now.Add(-4*time.Minute))); err != nil {
			t.Errorf("ParseWebhook of a 4-minute-old event: %v", err)
		}
		// A sender's clock a little ahead of ours is not refused.
		if _, err := p.ParseWebhook(payload, sign(payload, testWebhookSecret, now.Add(4*time.Minute))); err != nil {
			t.Errorf("ParseWebhook of an event signed 4 minutes ahead: %v", err)
		}
	})
	t.Run("no secret configured", func(t *testing.T) {
		t.Parallel()
		q, err := New(Config{SecretKey: "sk_test_x"})
		if err != nil {
			t.Fatal(err)
		}
		// Even a payload signed with the empty key is refused.
		if _, err := q.ParseWebhook(payload, sign(payload, "", now)); !errors.Is(err, payment.ErrBadSignature) {
			t.Errorf("ParseWebhook error = %v, want ErrBadSignature", err)
		}
	})
}

// TestParseWebhookCards proves the setup and detach events carry the card,
// the customer and the account, fetching from Stripe what the event names
// only by id.
func TestParseWebhookCards(t *testing.T) {
	t.Parallel()
	f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/setup_intents/seti_1":
			reply(w, 200, obj{
				"id": "seti_1", "object": "setup_intent", "status": "succeeded", "usage": "off_session",
				"customer": "cus_1", "metadata": obj{"account_id": "acc_1"},
				"payment_method": cardPM("pm_saved", "mastercard", "4444", "cus_1"),
			})
		case "/v1/payment_methods/pm_saved":
			reply(w, 200, cardPM("pm_saved", "mastercard", "4444", "cus_1"))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			reply(w, 404, stripeError("invalid_request_error", "resource_missing", "", "no such object", nil))
		}
	})
	saved := payment.Card{ID: "pm_saved", Brand: "mastercard", Last4: "4444", ExpMonth: 12, ExpYear: 2034}
	parse := func(t *testing.T, payload []byte) payment.Event {
		t.Helper()
		ev, err := p.ParseWebhook(payload, sign(payload, testWebhookSecret, time.Now()))
		if err != nil {
			t.Fatalf("ParseWebhook: %v", err)
		}
		return ev
	}

	t.Run("checkout.session.completed in setup mode", func(t *testing.T) {
		ev := parse(t, eventJSON(t, "evt_cs", "checkout.session.completed", obj{
			"id": "cs_1", "object": "checkout.session", "mode": "setup", "status": "complete",
			"customer": "cus_1", "setup_intent": "seti_1", "metadata": obj{"account_id": "acc_1"},
		}, nil))
		if ev.Card == nil || *ev.Card != saved || ev.Customer != "cus_1" || ev.AccountID != "acc_1" {
			t.Errorf("event = %+v card %+v; want %+v for cus_1 / acc_1", ev, ev.Card, saved)
		}
		if r := f.Requests(); len(r) == 0 || r[0].Form.Get("expand[0]") != "payment_method" {
			t.Errorf("SetupIntent lookup %+v does not expand its payment method", r)
		}
	})
	t.Run("checkout.session.completed in payment mode is ignored", func(t *testing.T) {
		ev := parse(t, eventJSON(t, "evt_pay", "checkout.session.completed", obj{
			"id": "cs_2", "object": "checkout.session", "mode": "payment", "status": "complete",
		}, nil))
		if ev.ID != "evt_pay" || ev.Card != nil || ev.Charge != nil {
			t.Errorf("event = %+v, want only its id and type", ev)
		}
	})
	t.Run("setup_intent.succeeded", func(t *testing.T) {
		ev := parse(t, eventJSON(t, "evt_si", "setup_intent.succeeded", obj{
			"id": "seti_1", "object": "setup_intent", "status": "succeeded", "usage": "off_session",
			"customer": "cus_1", "payment_method": "pm_saved", "metadata": obj{"account_id": "acc_1"},
		}, nil))
		if ev.Card == nil || *ev.Card != saved || ev.Customer != "cus_1" || ev.AccountID != "acc_1" {
			t.Errorf("event = %+v card %+v; want %+v for cus_1 / acc_1", ev, ev.Card, saved)
		}
	})
	t.Run("payment_method.detached", func(t *testing.T) {
		ev := parse(t, eventJSON(t, "evt_det", "payment_method.detached",
			cardPM("pm_gone", "visa", "4242", nil), obj{"customer": "cus_1"}))
		if ev.Card == nil || ev.Card.ID != "pm_gone" || ev.Card.Last4 != "4242" || ev.Customer != "cus_1" {
			t.Errorf("event = %+v card %+v; want pm_gone detached from cus_1", ev, ev.Card)
		}
	})
	t.Run("other types carry only id and type", func(t *testing.T) {
		ev := parse(t, eventJSON(t, "evt_cust", "customer.updated", obj{"id": "cus_1", "object": "customer"}, nil))
		if ev.ID != "evt_cust" || ev.Type != "customer.updated" || ev.Card != nil || ev.Charge != nil || ev.Customer != "" {
			t.Errorf("event = %+v, want only its id and type", ev)
		}
	})
}

// TestParseWebhookLookupFailureIsRetryable proves a setup event whose card
// could not be fetched is an error (Stripe sends it again), not a silent
// event without a card.
func TestParseWebhookLookupFailureIsRetryable(t *testing.T) {
	t.Parallel()
	_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		reply(w, 503, stripeError("api_error", "", "", "unavailable", nil))
	})
	payload := eventJSON(t, "evt_si", "setup_intent.succeeded", obj{
		"id": "seti_1", "object": "setup_intent", "status": "succeeded", "customer": "cus_1", "payment_method": "pm_saved",
	}, nil)
	_, err := p.ParseWebhook(payload, sign(payload, testWebhookSecret, time.Now()))
	if err == nil || errors.Is(err, payment.ErrBadSignature) {
		t.Errorf("ParseWebhook error = %v, want a retryable error", err)
	}
}

// appliedEvents is a topup.EventStore that records what ApplyEvent asked.
type appliedEvents struct {
	settled  map[string]topup.Outcome // top-up id → outcome
	added    map[string]payment.Card  // account id → card
	refunds  []refund.Word
	disputes []refund.DisputeWord
}

func (a *appliedEvents) ApplyRefund(_ context.Context, w refund.Word) (refund.Refund, bool, error) {
	a.refunds = append(a.refunds, w)
	return refund.Refund{ID: w.RefundID}, true, nil
}

func (a *appliedEvents) ApplyDispute(_ context.Context, w refund.DisputeWord) (refund.DisputeRecord, bool, error) {
	a.disputes = append(a.disputes, w)
	return refund.DisputeRecord{}, true, nil
}

func (a *appliedEvents) Settle(_ context.Context, id string, o topup.Outcome, _ time.Duration) (topup.Settled, error) {
	a.settled[id] = o
	return topup.Settled{Changed: true}, nil
}

func (a *appliedEvents) AddCard(_ context.Context, accountID string, c payment.Card) (topup.Card, error) {
	a.added[accountID] = c
	return topup.Card{Card: c, AccountID: accountID}, nil
}

func (a *appliedEvents) CardOwner(context.Context, string) (string, error) { return "", nil }

func (a *appliedEvents) RemoveCard(context.Context, string, string) (bool, error) { return false, nil }

// TestWebhookOfAnotherAPIVersion proves events rendered in API versions other
// than stripe-go's are verified, read and applied: objects carry fields of
// their own version (an expanded customer, fields stripe-go types
// differently), and only what Topup needs is read from them.
func TestWebhookOfAnotherAPIVersion(t *testing.T) {
	t.Parallel()
	_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/payment_methods/pm_saved":
			reply(w, 200, cardPM("pm_saved", "mastercard", "4444", "cus_1"))
		case "/v1/payment_intents/pi_1":
			reply(w, 200, intent("pi_1", "succeeded", "tu_1", nil))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	})
	for _, version := range []string{"2019-02-19", "2022-11-15", "2024-06-20", "2025-03-31.basil", "2099-01-01.future"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			w := versionedWebhooks{t: t, p: p, version: version,
				applied: &appliedEvents{settled: map[string]topup.Outcome{}, added: map[string]payment.Card{}}}
			ok := w.apply("evt_ok", "payment_intent.succeeded", w.odd(intent("pi_ok", "succeeded", "tu_ok", nil), nil))
			if o := w.applied.settled["tu_ok"]; o.Status != topup.Succeeded || o.ChargeID != "pi_ok" || o.EventID != "evt_ok" || ok.Customer != "cus_1" {
				t.Errorf("succeeded event %+v settled as %+v, want tu_ok succeeded by pi_ok", ok, o)
			}

			w.apply("evt_no", "payment_intent.payment_failed", w.odd(intent("pi_no", "requires_payment_method", "tu_no", nil), obj{
				"last_payment_error": obj{"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "charge": "ch_1"},
			}))
			if o := w.applied.settled["tu_no"]; o.Status != topup.Failed || o.FailureCode != "insufficient_funds" {
				t.Errorf("declined event settled as %+v, want tu_no failed insufficient_funds", o)
			}

			auth := w.apply("evt_3ds", "payment_intent.payment_failed", w.odd(intent("pi_3ds", "requires_payment_method", "tu_3ds", nil), obj{
				"payment_method": nil,
				"last_payment_error": obj{"type": "card_error", "code": "authentication_required", "decline_code": "authentication_required",
					"payment_method": cardPM("pm_card", "visa", "3155", "cus_1")},
			}))
			want := payment.Charge{ID: "pi_3ds", TopUpID: "tu_3ds", Status: payment.RequiresAction, DeclineCode: "authentication_required",
				ClientSecret: "pi_3ds_secret_abc", PaymentMethodID: "pm_card", Amount: 1250, Currency: "usd", Created: time.Unix(1767225600, 0).UTC()}
			if auth.Charge == nil || *auth.Charge != want {
				t.Errorf("authentication_required charge = %+v, want %+v", auth.Charge, want)
			}

			w.apply("evt_si", "setup_intent.succeeded", obj{
				"id": "seti_1", "object": "setup_intent", "status": "succeeded", "customer": obj{"id": "cus_1"},
				"payment_method": "pm_saved", "metadata": obj{"account_id": "acc_1"}, "automatic_payment_methods": "odd",
			})
			if c := w.applied.added["acc_1"]; c.ID != "pm_saved" || c.Last4 != "4444" {
				t.Errorf("setup event added %+v to acc_1, want pm_saved", c)
			}

			// Refund and dispute objects with fields of other versions
			// (an expanded charge, a balance transaction list in another
			// shape) are read for the same few fields.
			re := w.apply("evt_re", "refund.failed", refundObj("re_1", "failed", "rf_1", obj{
				"charge": obj{"id": "ch_1", "object": "charge"}, "failure_reason": "expired_or_canceled_card", "destination_details": "odd",
			}))
			if re.Refund == nil || re.Refund.RefundID != "rf_1" || re.Refund.Status != payment.RefundFailed || re.Refund.ChargeID != "pi_1" {
				t.Errorf("refund event = %+v, want rf_1 failed of pi_1", re.Refund)
			}
			wantRefund := refund.Word{RefundID: "rf_1", ProviderID: "re_1", ChargeID: "pi_1", AmountMinor: re.Refund.Amount, Status: refund.Failed,
				FailureReason: "expired_or_canceled_card"}
			if len(w.applied.refunds) != 1 || w.applied.refunds[0] != wantRefund {
				t.Errorf("applied refunds %+v, want %+v", w.applied.refunds, wantRefund)
			}
			dp := w.apply("evt_dp", "charge.dispute.closed", disputeObj("dp_1", "won", obj{
				"charge": obj{"id": "ch_1"}, "payment_intent": obj{"id": "pi_1"}, "evidence": "odd",
				"balance_transactions": []any{disputeTxn(-1250), disputeTxn(1250)},
			}))
			if d := dp.Dispute; d == nil || d.TopUpID != "tu_1" || d.Status != payment.DisputeWon || !d.FundsWithdrawn || !d.FundsReinstated {
				t.Errorf("dispute event = %+v, want tu_1 won, withdrawn and reinstated", d)
			}
			// A close heard first also withdraws and gives back what it
			// reports, in that order.
			var kinds []refund.DisputeEventKind
			for _, dw := range w.applied.disputes {
				kinds = append(kinds, dw.Kind)
				if dw.ProviderID != "dp_1" || dw.ChargeID != "pi_1" || dw.AmountMinor != 1250 || dw.Reason != "fraudulent" || dw.Won != (dw.Kind == refund.Closed) {
					t.Errorf("applied dispute word %+v, want dp_1 of pi_1, 1250, won only on the close", dw)
				}
			}
			if want := []refund.DisputeEventKind{refund.FundsWithdrawn, refund.FundsReinstated, refund.Closed}; !slices.Equal(kinds, want) {
				t.Errorf("applied dispute kinds %v, want %v", kinds, want)
			}
		})
	}
}

// versionedWebhooks signs events of one API version, parses them and applies
// them to a recording store.
type versionedWebhooks struct {
	t       *testing.T
	p       *Provider
	version string
	applied *appliedEvents
}

// odd adds to a PaymentIntent fields as older or newer versions render them:
// charges (gone since 2022-11-15), a customer expanded, and fields whose
// types stripe-go's own decoding would refuse; then extra.
func (w versionedWebhooks) odd(pi, extra obj) obj {
	oddities := obj{
		"customer":               obj{"id": "cus_1", "object": "customer", "email": "ada@example.com"},
		"charges":                obj{"object": "list", "data": []any{}, "has_more": false},
		"amount_details":         "unknown in this shape",
		"payment_method_options": []any{"also", "unexpected"},
	}
	for k, v := range oddities {
		pi[k] = v
	}
	for k, v := range extra {
		pi[k] = v
	}
	return pi
}

// apply parses a signed event of w's version around object and applies it.
func (w versionedWebhooks) apply(id, typ string, object obj) payment.Event {
	w.t.Helper()
	payload := versionedEventJSON(w.t, w.version, id, typ, object, nil)
	ev, err := w.p.ParseWebhook(payload, sign(payload, testWebhookSecret, time.Now()))
	if err != nil {
		w.t.Fatalf("ParseWebhook(%s): %v", id, err)
	}
	if err := topup.ApplyEvent(w.t.Context(), w.applied, ev, time.Hour, discardLogger()); err != nil {
		w.t.Fatalf("ApplyEvent(%s): %v", id, err)
	}
	return ev
}

// disputeObj is a Stripe-shaped Dispute of pi_1 (charge ch_1).
func disputeObj(id, status string, extra obj) obj {
	d := obj{
		"id": id, "object": "dispute", "amount": 1250, "currency": "usd", "status": status,
		"reason": "fraudulent", "created": 1767225600, "charge": "ch_1", "payment_intent": "pi_1",
		"balance_transactions": []any{}, "is_charge_refundable": false, "metadata": obj{},
		"evidence": obj{"customer_name": nil}, "evidence_details": obj{"due_by": 1768435200, "has_evidence": false},
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// disputeTxn is a dispute's balance transaction: a withdrawal (negative) or
// a reinstatement.
func disputeTxn(amount int64) obj {
	category := "dispute"
	if amount > 0 {
		category = "dispute_reversal"
	}
	return obj{"id": fmt.Sprintf("txn_%d", amount), "object": "balance_transaction", "amount": amount, "fee": 1500,
		"currency": "usd", "type": "adjustment", "reporting_category": category}
}

// TestParseWebhookRefunds proves refund.* events carry the refund, read as
// Refund reads it; one made in Stripe's Dashboard (no metadata of ours)
// gets its top-up id from its PaymentIntent.
func TestParseWebhookRefunds(t *testing.T) {
	t.Parallel()
	f, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/payment_intents/pi_1":
			reply(w, 200, intent("pi_1", "succeeded", "tu_1", nil))
		case "/v1/charges/ch_old":
			reply(w, 200, obj{"id": "ch_old", "object": "charge", "payment_intent": intent("pi_1", "succeeded", "tu_1", nil)})
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			reply(w, 404, stripeError("invalid_request_error", "resource_missing", "", "no such object", nil))
		}
	})
	at := time.Unix(1767225600, 0).UTC()
	ours := payment.Refund{ID: "re_1", RefundID: "rf_1", ChargeID: "pi_1", TopUpID: "tu_1", Amount: 500, Currency: "usd", Created: at}
	dashboard := ours
	dashboard.RefundID = ""
	tests := []struct {
		name, typ string
		object    obj
		want      payment.Refund
		wantStat  payment.RefundStatus
		lookups   int
	}{
		{"created, ours", "refund.created", refundObj("re_1", "succeeded", "rf_1", nil), ours, payment.RefundSucceeded, 0},
		{"created pending", "refund.created", refundObj("re_1", "pending", "rf_1", nil), ours, payment.RefundPending, 0},
		{"updated to succeeded", "refund.updated", refundObj("re_1", "succeeded", "rf_1", nil), ours, payment.RefundSucceeded, 0},
		{"updated to canceled", "refund.updated", refundObj("re_1", "canceled", "rf_1", nil), ours, payment.RefundCanceled, 0},
		{"failed", "refund.failed", refundObj("re_1", "failed", "rf_1", obj{"failure_reason": "lost_or_stolen_card"}), withReason(ours, "lost_or_stolen_card"), payment.RefundFailed, 0},
		{"failed, rendered before the failure", "refund.failed", refundObj("re_1", "succeeded", "rf_1", nil), ours, payment.RefundFailed, 0},
		{"made in the Dashboard", "refund.created", refundObj("re_1", "succeeded", "", nil), dashboard, payment.RefundSucceeded, 1},
		{"made in the Dashboard, named by its charge only", "refund.created",
			refundObj("re_1", "succeeded", "", obj{"payment_intent": nil, "charge": "ch_old"}), dashboard, payment.RefundSucceeded, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.Requests())
			payload := eventJSON(t, "evt_re", tt.typ, tt.object, nil)
			ev, err := p.ParseWebhook(payload, sign(payload, testWebhookSecret, time.Now()))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if ev.ID != "evt_re" || ev.Type != tt.typ || ev.Refund == nil || ev.Charge != nil || ev.Dispute != nil {
				t.Fatalf("event = %+v", ev)
			}
			tt.want.Status = tt.wantStat
			if *ev.Refund != tt.want {
				t.Errorf("refund =\n %+v\nwant\n %+v", *ev.Refund, tt.want)
			}
			if n := len(f.Requests()) - before; n != tt.lookups {
				t.Errorf("%d lookups, want %d", n, tt.lookups)
			}
		})
	}
}

func withReason(r payment.Refund, reason string) payment.Refund {
	r.FailureReason = reason
	return r
}

// TestParseWebhookDisputes proves charge.dispute.* events carry the
// dispute with the top-up id of its PaymentIntent, and say whether funds
// moved from the event's type or, for a close that arrives first, from the
// dispute's balance transactions.
func TestParseWebhookDisputes(t *testing.T) {
	t.Parallel()
	_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/payment_intents/pi_1":
			reply(w, 200, intent("pi_1", "succeeded", "tu_1", nil))
		case "/v1/charges/ch_1":
			if r.URL.Query().Get("expand[0]") != "payment_intent" {
				t.Errorf("charge lookup %v does not expand its PaymentIntent", r.URL.Query())
			}
			reply(w, 200, obj{"id": "ch_1", "object": "charge", "payment_intent": intent("pi_1", "succeeded", "tu_1", nil)})
		case "/v1/payment_intents/pi_gone":
			reply(w, 404, stripeError("invalid_request_error", "resource_missing", "", "No such payment_intent", nil))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			reply(w, 404, stripeError("invalid_request_error", "resource_missing", "", "no such object", nil))
		}
	})
	at := time.Unix(1767225600, 0).UTC()
	base := payment.Dispute{ID: "dp_1", ChargeID: "pi_1", TopUpID: "tu_1", Amount: 1250, Currency: "usd", Reason: "fraudulent", Created: at}
	dispute := func(status payment.DisputeStatus, withdrawn, reinstated bool) payment.Dispute {
		d := base
		d.Status, d.FundsWithdrawn, d.FundsReinstated = status, withdrawn, reinstated
		return d
	}
	tests := []struct {
		name, typ string
		object    obj
		want      payment.Dispute
	}{
		{"created", "charge.dispute.created", disputeObj("dp_1", "needs_response", nil), dispute(payment.DisputeNeedsResponse, false, false)},
		{"an inquiry", "charge.dispute.created", disputeObj("dp_1", "warning_needs_response", nil), dispute(payment.DisputeWarningNeedsResponse, false, false)},
		{"funds withdrawn", "charge.dispute.funds_withdrawn",
			disputeObj("dp_1", "needs_response", obj{"balance_transactions": []any{disputeTxn(-1250)}}), dispute(payment.DisputeNeedsResponse, true, false)},
		{"funds withdrawn, rendered without its transactions", "charge.dispute.funds_withdrawn",
			disputeObj("dp_1", "needs_response", nil), dispute(payment.DisputeNeedsResponse, true, false)},
		{"funds reinstated", "charge.dispute.funds_reinstated",
			disputeObj("dp_1", "won", obj{"balance_transactions": []any{disputeTxn(-1250), disputeTxn(1250)}}), dispute(payment.DisputeWon, true, true)},
		{"closed won, before any other event", "charge.dispute.closed",
			disputeObj("dp_1", "won", obj{"balance_transactions": []any{disputeTxn(-1250), disputeTxn(1250)}}), dispute(payment.DisputeWon, true, true)},
		{"closed lost", "charge.dispute.closed",
			disputeObj("dp_1", "lost", obj{"balance_transactions": []any{disputeTxn(-1250)}}), dispute(payment.DisputeLost, true, false)},
		{"an inquiry closed", "charge.dispute.closed", disputeObj("dp_1", "warning_closed", nil), dispute(payment.DisputeWarningClosed, false, false)},
		{"transactions in a shape this code cannot read", "charge.dispute.closed",
			disputeObj("dp_1", "lost", obj{"balance_transactions": "odd"}), dispute(payment.DisputeLost, false, false)},
		{"named by its charge only (an old API version)", "charge.dispute.created",
			disputeObj("dp_1", "needs_response", obj{"payment_intent": nil}), dispute(payment.DisputeNeedsResponse, false, false)},
		{"a PaymentIntent Stripe no longer knows", "charge.dispute.created",
			disputeObj("dp_1", "needs_response", obj{"payment_intent": "pi_gone"}),
			payment.Dispute{ID: "dp_1", ChargeID: "pi_gone", Amount: 1250, Currency: "usd", Reason: "fraudulent", Created: at, Status: payment.DisputeNeedsResponse}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			payload := eventJSON(t, "evt_dp", tt.typ, tt.object, nil)
			ev, err := p.ParseWebhook(payload, sign(payload, testWebhookSecret, time.Now()))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if ev.ID != "evt_dp" || ev.Type != tt.typ || ev.Dispute == nil || ev.Refund != nil || ev.Charge != nil {
				t.Fatalf("event = %+v", ev)
			}
			if *ev.Dispute != tt.want {
				t.Errorf("dispute =\n %+v\nwant\n %+v", *ev.Dispute, tt.want)
			}
		})
	}
}

// TestParseWebhookRefundDisputeLookupFailure proves a refund or dispute
// event whose PaymentIntent could not be read for want of an answer is an
// error Stripe retries, not an event without its top-up.
func TestParseWebhookRefundDisputeLookupFailure(t *testing.T) {
	t.Parallel()
	_, p := newFake(t, 0, func(w http.ResponseWriter, r *http.Request) {
		reply(w, 503, stripeError("api_error", "", "", "unavailable", nil))
	})
	for typ, object := range map[string]obj{
		"refund.created":         refundObj("re_1", "succeeded", "", nil),
		"charge.dispute.created": disputeObj("dp_1", "needs_response", nil),
	} {
		payload := eventJSON(t, "evt_1", typ, object, nil)
		_, err := p.ParseWebhook(payload, sign(payload, testWebhookSecret, time.Now()))
		if !errors.Is(err, payment.ErrUnknownOutcome) || errors.Is(err, payment.ErrBadSignature) {
			t.Errorf("%s: ParseWebhook error = %v, want a retryable error", typ, err)
		}
	}
}
