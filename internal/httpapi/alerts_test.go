package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestLowBalanceAlertsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct, key := b.funded(t, "30")
	path := "/v1/accounts/" + acct + "/low_balance_alerts"
	if got := b.must(t, http.StatusOK, "GET", path, key, nil); len(got["thresholds"].([]any)) != 0 {
		t.Fatalf("before any save: %v", got)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"thresholds": ["0.99"]}`, "thresholds[0]"},
		{`{"thresholds": ["20.00", "1000.01"]}`, "thresholds[1]"},
		{`{"thresholds": ["20.00", "24.99"]}`, "thresholds[1]"},
		{`{"thresholds": ["20", "5", "20.00"]}`, "thresholds[2]"},
		{`{"thresholds": ["1", "10", "20", "30", "40", "50"]}`, "thresholds"},
		{`{"thresholds": ["20.005"]}`, "thresholds[0]"},
		{`{"thresholds": [20]}`, "thresholds[0]"},
		{`{"thresholds": ["-20"]}`, "thresholds[0]"},
		{`{"thresholds": "20"}`, "thresholds"},
		{`{}`, "thresholds"},
	} {
		status, body, _ := b.do(t, "PUT", path, key, tc.body)
		wantError(t, status, body, http.StatusBadRequest, "invalid", tc.field)
	}
	if got := b.must(t, http.StatusOK, "GET", path, key, nil); len(got["thresholds"].([]any)) != 0 {
		t.Fatalf("refused thresholds were saved: %v", got)
	}
	saved := b.must(t, http.StatusOK, "PUT", path, key, `{"thresholds": ["5", "20.00"]}`)
	if got := b.must(t, http.StatusOK, "GET", path, b.adminKey, nil); fmt.Sprint(saved) != fmt.Sprint(got) || fmt.Sprint(got["thresholds"]) != "[20.00 5.00]" {
		t.Fatalf("saved %v, read back %v; want [20.00 5.00]", saved, got)
	}
	b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/usage", b.adminKey, map[string]any{"amount": "11", "idempotency_key": "u1"})
	page := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/notifications?limit=1", key, nil)
	evs := objects(t, page["data"])
	if len(evs) != 1 || evs[0]["type"] != "balance.low" || page["has_more"] != false {
		t.Fatalf("notifications after falling below 20.00: %v", page)
	}
	if d := evs[0]["data"].(map[string]any); d["threshold"] != "20.00" || d["balance"] != "19.00" {
		t.Fatalf("balance.low data %v", d)
	}
	status, body, _ := b.do(t, "GET", "/v1/accounts/"+acct+"/notifications?starting_after=evt_unknown", key, nil)
	wantError(t, status, body, http.StatusBadRequest, "invalid", "starting_after")
}

func TestBudgetsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct, key := b.funded(t, "100")
	path := "/v1/accounts/" + acct + "/budgets"
	for _, tc := range []struct{ body, field string }{
		{`{"kind": "weekly", "limit": "10"}`, "kind"},
		{`{"limit": "10"}`, "kind"},
		{`{"kind": "unlimited", "limit": "10"}`, "limit"},
		{`{"kind": "monthly"}`, "limit"},
		{`{"kind": "one_time", "limit": "0"}`, "limit"},
		{`{"kind": "one_time", "limit": "10.001"}`, "limit"},
		{`{"kind": "one_time", "limit": 10}`, "limit"},
		{`{"kind": "monthly", "limit": "10", "subject": ""}`, "subject"},
		{`{"kind": "monthly", "limit": "10", "subject": "` + strings.Repeat("k", 256) + `"}`, "subject"},
		{`{"kind": "monthly", "limit": "10", "cap": "5"}`, "cap"},
	} {
		status, body, _ := b.do(t, "POST", path, key, tc.body)
		wantError(t, status, body, http.StatusBadRequest, "invalid", tc.field)
	}
	if got := objects(t, b.must(t, http.StatusOK, "GET", path, key, nil)["data"]); len(got) != 0 {
		t.Fatalf("refused budgets were saved: %v", got)
	}
	wide := b.must(t, http.StatusCreated, "POST", path, key, `{"kind": "monthly", "limit": "50"}`)
	if wide["subject"] != nil || wide["limit"] != "50.00" || wide["spent"] != "0.00" || wide["period_end"] == nil {
		t.Fatalf("created %v", wide)
	}
	status, body, _ := b.do(t, "POST", path, key, `{"kind": "unlimited"}`)
	wantError(t, status, body, http.StatusConflict, "conflict", "")
	keyA := b.must(t, http.StatusCreated, "POST", path, b.adminKey, `{"subject": "key_a", "kind": "one_time", "limit": "5"}`)
	status, body, _ = b.do(t, "POST", path, key, `{"subject": "key_a", "kind": "unlimited"}`)
	wantError(t, status, body, http.StatusConflict, "conflict", "subject")

	// key_a's budget is spent; key_b and the account go on.
	batch := b.must(t, http.StatusOK, "POST", "/v1/usage/batch", b.adminKey, map[string]any{"events": []map[string]any{
		{"account_id": acct, "amount": "6", "idempotency_key": "a1", "subject": "key_a"},
		{"account_id": acct, "amount": "1", "idempotency_key": "b1", "subject": "key_b"},
	}})
	res := objects(t, batch["results"])
	if res[0]["spendable"] != false || res[0]["reason"] != "budget_exhausted" || res[1]["spendable"] != true || res[1]["reason"] != nil {
		t.Fatalf("batch results %v", res)
	}
	one := b.must(t, http.StatusCreated, "POST", "/v1/accounts/"+acct+"/usage", b.adminKey, `{"amount": "1", "idempotency_key": "a2", "subject": "key_a"}`)
	if one["spendable"] != false || one["reason"] != "budget_exhausted" {
		t.Fatalf("usage of a spent subject: %v", one)
	}
	for subject, want := range map[string]bool{"?subject=key_a": false, "?subject=key_b": true, "": true} {
		got := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/spendable"+subject, key, nil)
		if got["spendable"] != want || (!want && (got["reason"] != "budget_exhausted" || got["budget_id"] != keyA["id"])) {
			t.Errorf("spendable%s = %v, want %v", subject, got, want)
		}
	}
	// Lowering the account-wide limit below the spend stops the account.
	lowered := b.must(t, http.StatusOK, "PUT", path+"/"+str(t, wide, "id"), key, `{"limit": "7"}`)
	if lowered["exhausted"] != true || lowered["spent"] != "8.00" {
		t.Fatalf("lowered %v", lowered)
	}
	if got := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct, key, nil); got["spendable"] != false {
		t.Fatalf("account with its budget spent: %v", got)
	}
	status, body, _ = b.do(t, "PUT", path+"/"+str(t, wide, "id"), key, `{"kind": "one_time", "limit": "7"}`)
	wantError(t, status, body, http.StatusBadRequest, "invalid", "kind")
	del := b.must(t, http.StatusOK, "DELETE", path+"/"+str(t, wide, "id"), key, nil)
	if del["deleted"] != true || del["id"] != wide["id"] {
		t.Fatalf("delete %v", del)
	}
	b.must(t, http.StatusNotFound, "GET", path+"/"+str(t, wide, "id"), key, nil)
	if got := b.must(t, http.StatusOK, "GET", "/v1/accounts/"+acct+"/spendable", key, nil); got["spendable"] != true {
		t.Fatalf("spendable after deleting the spent budget: %v", got)
	}
}

func TestWebhookEndpointsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct, key := b.account(t, "")
	path := "/v1/accounts/" + acct + "/webhook_endpoints"
	for _, body := range []string{`{"url": "ftp://93.184.215.14/hook"}`, `{"url": "http://127.0.0.1:9/hook"}`, `{"url": "http://10.0.0.7/hook"}`,
		`{"url": "http://localhost/hook"}`, `{"url": "https://93.184.215.14/#x"}`, `{}`} {
		status, out, _ := b.do(t, "POST", path, key, body)
		wantError(t, status, out, http.StatusBadRequest, "invalid", "url")
	}
	if got := objects(t, b.must(t, http.StatusOK, "GET", path, key, nil)["data"]); len(got) != 0 {
		t.Fatalf("refused endpoints were saved: %v", got)
	}
	ep := b.must(t, http.StatusCreated, "POST", path, key, `{"url": "https://93.184.215.14/topup"}`)
	if secret := str(t, ep, "secret"); !strings.HasPrefix(secret, "whsec_") || len(secret) < 40 || ep["url"] != "https://93.184.215.14/topup" {
		t.Fatalf("created %v", ep)
	}
	listed := objects(t, b.must(t, http.StatusOK, "GET", path, b.adminKey, nil)["data"])
	if len(listed) != 1 || listed[0]["secret"] != nil || !strings.HasPrefix(str(t, ep, "secret"), str(t, listed[0], "secret_prefix")) {
		t.Fatalf("listed %v; want the endpoint without its secret", listed)
	}
	deliveries := path + "/" + str(t, ep, "id") + "/deliveries"
	if got := b.must(t, http.StatusOK, "GET", deliveries, key, nil); len(objects(t, got["data"])) != 0 || got["has_more"] != false {
		t.Fatalf("deliveries of a new endpoint: %v", got)
	}
	b.must(t, http.StatusOK, "DELETE", path+"/"+str(t, ep, "id"), key, nil)
	b.must(t, http.StatusNotFound, "GET", deliveries, key, nil)
	b.must(t, http.StatusNotFound, "DELETE", path+"/"+str(t, ep, "id"), key, nil)
}

func TestAlertRoutesOfAnotherAccountAre404(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct, _ := b.account(t, "")
	_, otherKey := b.account(t, "")
	base := "/v1/accounts/" + acct
	budget := b.must(t, http.StatusCreated, "POST", base+"/budgets", b.adminKey, `{"kind": "unlimited"}`)
	ep := b.must(t, http.StatusCreated, "POST", base+"/webhook_endpoints", b.adminKey, `{"url": "https://93.184.215.14/x"}`)
	for _, r := range []struct{ method, path, body string }{
		{"GET", base + "/low_balance_alerts", ""},
		{"PUT", base + "/low_balance_alerts", `{"thresholds": ["20"]}`},
		{"GET", base + "/budgets", ""},
		{"POST", base + "/budgets", `{"kind": "unlimited", "subject": "x"}`},
		{"GET", base + "/budgets/" + str(t, budget, "id"), ""},
		{"PUT", base + "/budgets/" + str(t, budget, "id"), `{}`},
		{"DELETE", base + "/budgets/" + str(t, budget, "id"), ""},
		{"GET", base + "/spendable", ""},
		{"GET", base + "/notifications", ""},
		{"POST", base + "/webhook_endpoints", `{"url": "https://93.184.215.14/y"}`},
		{"GET", base + "/webhook_endpoints", ""},
		{"DELETE", base + "/webhook_endpoints/" + str(t, ep, "id"), ""},
		{"GET", base + "/webhook_endpoints/" + str(t, ep, "id") + "/deliveries", ""},
	} {
		var body any
		if r.body != "" {
			body = r.body
		}
		status, out, _ := b.do(t, r.method, r.path, otherKey, body)
		if status != http.StatusNotFound {
			t.Errorf("%s %s with another account's key = %d %v, want 404", r.method, r.path, status, out)
		}
	}
	// Nothing changed, and another account's ids are unknown under one's own.
	if got := objects(t, b.must(t, http.StatusOK, "GET", base+"/budgets", b.adminKey, nil)["data"]); len(got) != 1 {
		t.Fatalf("budgets after foreign calls: %v", got)
	}
	mine, _ := b.account(t, "")
	b.must(t, http.StatusNotFound, "GET", "/v1/accounts/"+mine+"/budgets/"+str(t, budget, "id"), b.adminKey, nil)
	b.must(t, http.StatusNotFound, "GET", "/v1/accounts/"+mine+"/webhook_endpoints/"+str(t, ep, "id")+"/deliveries", b.adminKey, nil)
}
