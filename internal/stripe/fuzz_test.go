package stripe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v85"

	"github.com/topup/topup/internal/payment"
)

// FuzzParseWebhook feeds ParseWebhook any payload, signed at any time or
// not at all (a fuzzed header). Properties: never a panic; a fuzzed header
// that does not carry our signature is always ErrBadSignature; a signature
// more than 300 s away from now, past or future, is ErrBadSignature; one
// well within it is never ErrBadSignature.
func FuzzParseWebhook(f *testing.F) {
	event := `{"id":"evt_1","object":"event","type":"payment_intent.succeeded","api_version":"` + stripego.APIVersion +
		`","created":1767225600,"data":{"object":{"id":"pi_1","object":"payment_intent","status":"succeeded","amount":1250,"metadata":{"top_up_id":"tu_1"}}}}`
	f.Add([]byte(event), int64(0), "", true)
	f.Add([]byte(event), int64(301), "", true)
	f.Add([]byte(event), int64(86400), "", true)
	f.Add([]byte(event), int64(-301), "", true)
	f.Add([]byte(event), int64(0), "t=1767225600,v1=00", false)
	f.Add([]byte(`{"id":"evt_2","type":"setup_intent.succeeded","api_version":"`+stripego.APIVersion+`","data":{"object":{"id":"seti_1","payment_method":"pm_1"}}}`), int64(5), "", true)
	f.Add([]byte(`{"id":"evt_3","type":"refund.failed","api_version":"`+stripego.APIVersion+`","data":{"object":{"id":"re_1","object":"refund","amount":500,"status":"failed","payment_intent":"pi_1","metadata":{}}}}`), int64(0), "", true)
	f.Add([]byte(`{"id":"evt_4","type":"refund.updated","api_version":"`+stripego.APIVersion+`","data":{"object":{"id":"re_2","status":"succeeded","payment_intent":null,"charge":{"id":"ch_1"},"metadata":{"refund_id":"rf_1","top_up_id":"tu_1"}}}}`), int64(0), "", true)
	f.Add([]byte(`{"id":"evt_5","type":"charge.dispute.closed","api_version":"`+stripego.APIVersion+`","data":{"object":{"id":"dp_1","object":"dispute","status":"won","charge":"ch_1","payment_intent":"pi_1","balance_transactions":[{"amount":-1250,"reporting_category":"dispute"},{"amount":1250}]}}}`), int64(0), "", true)
	f.Add([]byte(`{"id":"evt_6","type":"charge.dispute.funds_withdrawn","data":{"object":{"id":"dp_2","balance_transactions":{"odd":1},"payment_intent":{"id":"pi_2"}}}}`), int64(0), "", true)
	f.Add([]byte("{\"id\":\"evt_\x00\",\"type\":\"\xff\"}"), int64(0), "", true)
	f.Add([]byte(event), int64(0), "t=99999999999999999999,v1=zz", false)
	// Setup, refund and dispute events look their card or PaymentIntent
	// up: the fake answers 404 at once.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"type":"invalid_request_error","message":"No such object"}}`))
	}))
	f.Cleanup(srv.Close)
	p, err := New(Config{SecretKey: "sk_test_fuzz", WebhookSecret: testWebhookSecret, APIBase: srv.URL})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte, offset int64, header string, signed bool) {
		offset %= 1 << 32 // seconds, about 136 years either way
		now := time.Now()
		if signed {
			header = sign(payload, testWebhookSecret, now.Add(time.Duration(offset)*time.Second))
		}
		_, err := p.ParseWebhook(payload, header)
		bad := errors.Is(err, payment.ErrBadSignature)
		switch {
		case !signed && err == nil && !carriesSignature(header, payload):
			// A header the fuzzer wrote was taken: it must carry a real
			// signature, which it cannot guess.
			t.Fatalf("ParseWebhook accepted the fuzzed header %q", header)
		case signed && (offset > 300 || offset < -300) && !bad:
			t.Fatalf("signed %d s from now: %v; want ErrBadSignature", offset, err)
		case signed && offset >= -250 && offset <= 250 && bad:
			t.Fatalf("signed %d s from now: %v; want no ErrBadSignature", offset, err)
		}
	})
}

// carriesSignature reports whether header holds, for one of its t= values,
// the v1 HMAC-SHA256 of "t.payload" under the test secret: Stripe's scheme,
// computed here independently of stripe-go.
func carriesSignature(header string, payload []byte) bool {
	for _, part := range strings.Split(header, ",") {
		ts, ok := strings.CutPrefix(strings.TrimSpace(part), "t=")
		if !ok {
			continue
		}
		m := hmac.New(sha256.New, []byte(testWebhookSecret))
		m.Write([]byte(ts + "."))
		m.Write(payload)
		if strings.Contains(header, "v1="+hex.EncodeToString(m.Sum(nil))) {
			return true
		}
	}
	return false
}
