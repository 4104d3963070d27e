package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/notify"
)

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, time.March, 4, 5, 6, 7, 0, time.UTC)
	body := []byte(`{"id":"evt_1","type":"balance.low"}`)
	header := notify.Sign("whsec_a", now, body)
	if !strings.HasPrefix(header, fmt.Sprintf("t=%d,v1=", now.Unix())) {
		t.Fatalf("header %q", header)
	}
	for _, tc := range []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"as sent", "whsec_a", header, body, now, nil},
		{"a rotated secret listed second", "whsec_a", notify.Sign("whsec_old", now, body) + "," + strings.Split(header, ",")[1], body, now, nil},
		{"another secret", "whsec_b", header, body, now, notify.ErrBadSignature},
		{"a changed body", "whsec_a", header, []byte(`{"id":"evt_2","type":"balance.low"}`), now, notify.ErrBadSignature},
		{"a changed timestamp", "whsec_a", strings.Replace(header, "t=", "t=1", 1), body, now, notify.ErrBadSignature},
		{"replayed an hour later", "whsec_a", header, body, now.Add(time.Hour), notify.ErrTooOld},
		{"no header", "whsec_a", "", body, now, notify.ErrNoSignature},
		{"no v1", "whsec_a", strings.Split(header, ",")[0], body, now, notify.ErrNoSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := notify.VerifySignature(tc.secret, tc.header, tc.body, 5*time.Minute, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("VerifySignature: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://93.184.215.14/topup/hooks?x=1", false, true},
		{"HTTP://93.184.215.14:8443/", false, true},
		{"ftp://93.184.215.14/", false, false},
		{"not a url at all", false, false},
		{"https:///no-host", false, false},
		{"https://user:pass@93.184.215.14/", false, false},
		{"https://93.184.215.14/#frag", false, false},
		{"http://127.0.0.1:8080/hook", false, false},
		{"http://localhost/hook", false, false},
		{"http://[::1]/hook", false, false},
		{"http://10.1.2.3/hook", false, false},
		{"http://192.168.0.10/hook", false, false},
		{"http://172.16.5.4/hook", false, false},
		{"http://169.254.169.254/latest/meta-data", false, false},
		{"http://100.64.0.1/", false, false},
		{"http://[::ffff:10.0.0.1]/", false, false},
		{"http://[fd00::1]/", false, false},
		{"http://0.0.0.0/", false, false},
		{"http://127.0.0.1:8080/hook", true, true},
		{"http://10.1.2.3/hook", true, true},
		{"ftp://127.0.0.1/", true, false},
	} {
		_, err := notify.CheckURL(context.Background(), tc.url, tc.allowPrivate, nil)
		if tc.ok != (err == nil) {
			t.Errorf("CheckURL(%q, allowPrivate=%v) = %v, want ok=%v", tc.url, tc.allowPrivate, err, tc.ok)
		}
		if e := apperr.As(err); err != nil && (e == nil || e.Field != "url") {
			t.Errorf("CheckURL(%q): %v, want invalid naming url", tc.url, err)
		}
	}
}

// ExampleVerifySignature is a webhook receiver: it checks Topup-Signature
// over the raw body before trusting the event (see docs/webhooks.md).
func ExampleVerifySignature() {
	secret := "whsec_example" // shown once, when the endpoint was created
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable", http.StatusBadRequest)
			return
		}
		if err := notify.VerifySignature(secret, r.Header.Get("Topup-Signature"), body, 5*time.Minute, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		// Handle the event; answer 2xx quickly, and drop an id seen before.
		fmt.Println("verified:", string(body))
		w.WriteHeader(http.StatusOK)
	})

	// What Topup sends:
	body := []byte(`{"id":"evt_1","type":"balance.low","created_at":"2026-03-04T05:06:07.000000Z","account_id":"acct_1","data":{"threshold":"20.00","balance":"19.50"}}`)
	req := httptest.NewRequest(http.MethodPost, "/topup/webhooks", strings.NewReader(string(body)))
	req.Header.Set("Topup-Signature", notify.Sign(secret, time.Now(), body))
	rec := httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// verified: {"id":"evt_1","type":"balance.low","created_at":"2026-03-04T05:06:07.000000Z","account_id":"acct_1","data":{"threshold":"20.00","balance":"19.50"}}
	// 200
}

func TestConfigRefused(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]notify.Config{
		"negative retry base":    {RetryBase: -time.Second},
		"http as SMTP":           {SMTPURL: "http://mail.example.com"},
		"SMTP without host":      {SMTPURL: "smtp://"},
		"a bad sender":           {SMTPURL: "smtp://mail.example.com?from=nobody"},
		"a lease under a second": {Lease: 500 * time.Millisecond},
	} {
		if _, err := notify.New(nil, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := notify.New(nil, notify.Config{SMTPURL: "smtps://u:p@mail.example.com?from=billing@example.com"}); err != nil {
		t.Errorf("a good config refused: %v", err)
	}
}
