package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/topup/topup/internal/payment"
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
	settled map[string]topup.Outcome // top-up id → outcome
	added   map[string]payment.Card  // account id → card
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
		if r.URL.Path != "/v1/payment_methods/pm_saved" {
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
		reply(w, 200, cardPM("pm_saved", "mastercard", "4444", "cus_1"))
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
