package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/notify"
)

// TestE2EServeDeliversNotifications wires the whole serve: a debit below a
// low balance alert writes balance.low, the worker records the mail (no
// TOPUP_SMTP_URL) and POSTs the signed event to the endpoint on loopback
// (TOPUP_WEBHOOKS_ALLOW_PRIVATE), retrying after a 500 on
// TOPUP_WEBHOOK_RETRY_BASE.
func TestE2EServeDeliversNotifications(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var secret string
	var seen []string
	got := make(chan string, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := notify.VerifySignature(secret, r.Header.Get("Topup-Signature"), body, time.Minute, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ev struct{ ID, Type string }
		json.Unmarshal(body, &ev)
		seen = append(seen, ev.ID)
		if len(seen) == 1 {
			http.Error(w, "later", http.StatusInternalServerError)
			return
		}
		got <- ev.Type
	}))
	t.Cleanup(rcv.Close)
	srv := startRun(t, testEnv{"TOPUP_ADMIN_KEY": testAdminKey, "TOPUP_WEBHOOKS_ALLOW_PRIVATE": "true", "TOPUP_WEBHOOK_RETRY_BASE": "50ms"},
		"serve", "--addr", "127.0.0.1:0", "--db", tempDB(t))
	var acct struct{ ID string }
	mustCall(t, srv.url, "POST", "/v1/accounts", testAdminKey, `{"email":"ada@example.com"}`, 201, &acct)
	base := "/v1/accounts/" + acct.ID
	var ep struct{ Secret string }
	mustCall(t, srv.url, "POST", base+"/webhook_endpoints", testAdminKey, `{"url":"`+rcv.URL+`/hook"}`, 201, &ep)
	mu.Lock()
	secret = ep.Secret
	mu.Unlock()
	mustCall(t, srv.url, "PUT", base+"/low_balance_alerts", testAdminKey, `{"thresholds":["20"]}`, 200, nil)
	mustCall(t, srv.url, "POST", base+"/credits", testAdminKey, `{"amount":"30","idempotency_key":"g"}`, 201, nil)
	mustCall(t, srv.url, "POST", base+"/usage", testAdminKey, `{"amount":"15","idempotency_key":"u"}`, 201, nil)
	select {
	case typ := <-got:
		if typ != "balance.low" {
			t.Fatalf("the endpoint got %s, want balance.low", typ)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no verified webhook within 15 s:\n%s", srv.out.String())
	}
	mu.Lock()
	if len(seen) != 2 || seen[0] != seen[1] {
		t.Errorf("attempts %v, want the same event twice (a 500, then a 200)", seen)
	}
	mu.Unlock()
	if out := srv.out.String(); !strings.Contains(out, "mail recorded") || !strings.Contains(out, "ada@example.com") {
		t.Errorf("no recorded mail to ada@example.com in the log:\n%s", out)
	}
}

// TestServeRefusesBadNotifySettings: a bad notification setting stops serve
// before it opens anything.
func TestServeRefusesBadNotifySettings(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"TOPUP_SMTP_URL":               "http://mail.example.com",
		"TOPUP_WEBHOOK_RETRY_BASE":     "soon",
		"TOPUP_WEBHOOKS_ALLOW_PRIVATE": "sometimes",
	} {
		_, err := runCmd(t, testEnv{name: value}, "serve", "--addr", "127.0.0.1:0", "--db", tempDB(t))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("serve with %s=%q: %v, want an error naming it", name, value, err)
		}
	}
}
