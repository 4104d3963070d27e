package notify_test

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/topup/topup/internal/notify"
)

func newSecret(t *testing.T) string {
	t.Helper()
	key := make([]byte, notify.KeyBytes)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return notify.NewSecret(key)
}

// TestStandardWebhooksVerify: what SetHeaders signs verifies with the
// official Standard Webhooks library (timestamp tolerance included) and
// with Topup-Signature; during a rotation with either secret; never with
// another secret or another body.
func TestStandardWebhooksVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1","type":"balance.low"}`)
	current, previous, stranger := newSecret(t), newSecret(t), newSecret(t)
	if len(current) != len("whsec_")+44 || !strings.HasSuffix(current, "=") {
		t.Fatalf("secret %q: want whsec_ and 44 characters of padded standard base64", current)
	}
	for _, tc := range []struct {
		name     string
		previous string
		accepts  []string
		refuses  []string
	}{
		{"one secret", "", []string{current}, []string{previous, stranger}},
		{"rotation", previous, []string{current, previous}, []string{stranger}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			now := time.Now()
			notify.SetHeaders(h, "evt_1", now, body, current, tc.previous)
			if h.Get("webhook-id") != "evt_1" {
				t.Fatalf("webhook-id %q", h.Get("webhook-id"))
			}
			for _, s := range tc.accepts {
				wh, err := standardwebhooks.NewWebhook(s)
				if err != nil {
					t.Fatal(err)
				}
				if err := wh.Verify(body, h); err != nil {
					t.Errorf("standardwebhooks refused a delivery signed with its secret: %v", err)
				}
				if err := wh.Verify([]byte(`{"id":"evt_2"}`), h); err == nil {
					t.Errorf("standardwebhooks accepted another body")
				}
				if err := notify.VerifySignature(s, h.Get(notify.SignatureHeader), body, 5*time.Minute, now); err != nil {
					t.Errorf("Topup-Signature refused its secret: %v", err)
				}
			}
			for _, s := range tc.refuses {
				wh, _ := standardwebhooks.NewWebhook(s)
				if err := wh.Verify(body, h); err == nil {
					t.Errorf("standardwebhooks accepted another secret")
				}
				if err := notify.VerifySignature(s, h.Get(notify.SignatureHeader), body, 5*time.Minute, now); err == nil {
					t.Errorf("Topup-Signature accepted another secret")
				}
			}
		})
	}
}
