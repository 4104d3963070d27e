package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
)

// TestCreditTermsAndGrants: a credit makes a grant on the terms it names
// (category, priority, expires_at) and answers its id; usage lists the
// grants that funded it, in spending order, with overdraft as a null grant;
// the account shows its credit by category, held and available; the
// grants list pages newest first and keeps one status.
func TestCreditTermsAndGrants(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, key := b.account(t, "")
	base := "/v1/accounts/" + id
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	paid := b.must(t, http.StatusCreated, "POST", base+"/credits", b.adminKey, map[string]any{"amount": "3", "idempotency_key": "paid",
		"category": "paid", "expires_at": expires})
	promo := b.must(t, http.StatusCreated, "POST", base+"/credits", b.adminKey, map[string]any{"amount": "2", "idempotency_key": "promo"})
	// The same key again replays the grant; other terms conflict.
	again := b.must(t, http.StatusOK, "POST", base+"/credits", b.adminKey, map[string]any{"amount": "2", "idempotency_key": "promo"})
	if str(t, again, "grant_id") != str(t, promo, "grant_id") || str(t, promo, "grant_id") == "" {
		t.Errorf("replayed credit answers grant %v, first %v", again["grant_id"], promo["grant_id"])
	}
	status, body, _ := b.do(t, "POST", base+"/credits", b.adminKey, map[string]any{"amount": "2", "idempotency_key": "promo", "category": "paid"})
	wantError(t, status, body, http.StatusConflict, string(apperr.IdempotencyConflict), "idempotency_key")
	creditRefusals(t, b, base)

	// 6.00 of usage: the promotional 2.00 (priority 10), the paid 3.00
	// (priority 50), then 1.00 of overdraft.
	use := b.must(t, http.StatusCreated, "POST", base+"/usage", b.adminKey, map[string]any{"amount": "6", "idempotency_key": "u1"})
	entries := b.allEntries(t, id)
	if str(t, entries[0], "id") != str(t, use, "entry_id") {
		t.Fatalf("newest entry %v, want the usage", entries[0])
	}
	wantFunding(t, entries[0], []any{promo["grant_id"], paid["grant_id"], nil}, []string{"promotional", "paid", "overdraft"},
		[]string{"2.00", "3.00", "1.00"})
	credit := entries[1]
	if credit["funding"] != nil || credit["grant_id"] != promo["grant_id"] || credit["hold_id"] != nil {
		t.Errorf("a credit entry: %v, want its grant, no funding, no hold", credit)
	}

	// A new grant pays the overdraft first.
	b.must(t, http.StatusCreated, "POST", base+"/credits", b.adminKey, map[string]any{"amount": "5", "idempotency_key": "more", "kind": "adjustment"})
	acct := b.must(t, http.StatusOK, "GET", base, key, nil)
	c, _ := acct["credit"].(map[string]any)
	if acct["balance"] != "4.00" || c["paid"] != "0.00" || c["promotional"] != "4.00" || acct["held"] != "0.00" || acct["available"] != "4.00" {
		t.Errorf("account %v, want balance 4.00: promotional 4.00, nothing held", acct)
	}

	grantPages(t, b, base, key, paid)
	status, body, _ = b.do(t, "GET", base+"/grants?status=gone", key, nil)
	wantError(t, status, body, http.StatusBadRequest, string(apperr.Invalid), "status")
}

// creditRefusals: each bad term of a credit is refused on its field.
func creditRefusals(t *testing.T, b *bundle, base string) {
	t.Helper()
	for _, bad := range []map[string]any{
		{"category": "free"}, {"priority": -1}, {"priority": 101}, {"expires_at": "tomorrow"},
		{"expires_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)},
		{"expires_at": time.Now().AddDate(11, 0, 0).UTC().Format(time.RFC3339)},
	} {
		req := map[string]any{"amount": "1", "idempotency_key": "bad"}
		var field string
		for k, v := range bad {
			req[k], field = v, k
		}
		status, body, _ := b.do(t, "POST", base+"/credits", b.adminKey, req)
		wantError(t, status, body, http.StatusBadRequest, string(apperr.Invalid), field)
	}

}

// wantFunding checks an entry's funding lines: grant (nil for overdraft),
// category and amount each.
func wantFunding(t *testing.T, entry map[string]any, grants []any, categories, amounts []string) {
	t.Helper()
	funding := objects(t, entry["funding"])
	if len(funding) != len(grants) {
		t.Fatalf("funding %v, want %d lines", funding, len(grants))
	}
	for i, f := range funding {
		if f["grant_id"] != grants[i] || f["amount"] != amounts[i] || f["category"] != categories[i] {
			t.Errorf("funding line %d = %v, want %v %s %s", i, f, grants[i], categories[i], amounts[i])
		}
	}
}

// grantPages: the grants list pages newest first and keeps one status.
func grantPages(t *testing.T, b *bundle, base, key string, paid map[string]any) {
	t.Helper()
	page := b.must(t, http.StatusOK, "GET", base+"/grants?limit=2", key, nil)
	grants := objects(t, page["data"])
	if len(grants) != 2 || page["has_more"] != true || grants[0]["source"] != "adjustment" || grants[0]["remaining"] != "4.00" ||
		grants[0]["amount"] != "5.00" || grants[0]["priority"] != float64(10) || grants[0]["expires_at"] != nil {
		t.Errorf("first page of grants %v", page)
	}
	used := b.must(t, http.StatusOK, "GET", base+"/grants?status=used", key, nil)
	if g := objects(t, used["data"]); len(g) != 2 || g[1]["id"] != paid["grant_id"] || g[1]["category"] != "paid" ||
		g[1]["priority"] != float64(50) || g[1]["expires_at"] == nil || g[1]["source"] != "credit" || g[1]["source_id"] != paid["entry_id"] {
		t.Errorf("used grants %v, want the two spent, oldest last", used)
	}
}
