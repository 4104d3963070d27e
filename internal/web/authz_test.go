package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// The authorization matrix: every route of the API's route table, tried by
// every kind of caller, answers as the contract says, and a refused call
// writes nothing. The routes come from the table itself, so a new route
// without an entry in routeSpecs fails this test instead of going untested.

// caller is one column of the matrix.
type caller string

const (
	noKey          caller = "no key"
	malformedKey   caller = "malformed key"
	revokedKey     caller = "revoked key"
	otherKey       caller = "another account's key"
	closedKey      caller = "closed account's key"
	ownerKey       caller = "owner"
	adminCaller    caller = "admin"
	otherSession   caller = "another account's console session"
	everyoneCalled        = "public"
)

// routeSpec says what a route does, for the matrix: whether it is a write
// that a closed account is refused (409 account_closed), or one that winds
// an account down and stays allowed, and a valid body.
type routeSpec struct {
	write    bool
	windDown bool
	body     func(m *matrix) string
	// query is added to the path, for a route that needs one.
	query string
}

func noBody(*matrix) string { return "" }

// routeSpecs holds every route of the table.
var routeSpecs = map[string]routeSpec{
	"GET /healthz":         {body: noBody},
	"GET /metrics":         {body: noBody},
	"GET /v1/openapi.json": {body: noBody},

	"POST /v1/accounts":                          {write: true, body: func(m *matrix) string { return fmt.Sprintf(`{"email":"new%d@example.com"}`, m.next()) }},
	"GET /v1/accounts":                           {body: noBody},
	"GET /v1/accounts/{id}":                      {body: noBody},
	"PATCH /v1/accounts/{id}":                    {write: true, body: func(m *matrix) string { return fmt.Sprintf(`{"email":"changed%d@example.com"}`, m.next()) }},
	"GET /v1/accounts/{id}/spendable":            {body: noBody},
	"POST /v1/accounts/{id}/api_keys":            {write: true, body: func(m *matrix) string { return fmt.Sprintf(`{"name":"key %d"}`, m.next()) }},
	"GET /v1/accounts/{id}/api_keys":             {body: noBody},
	"DELETE /v1/accounts/{id}/api_keys/{key_id}": {write: true, windDown: true, body: noBody},

	"POST /v1/accounts/{id}/usage": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"amount":"0.01","idempotency_key":"u%d"}`, m.next())
	}},
	"POST /v1/usage/batch": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"events":[{"account_id":%q,"amount":"0.01","idempotency_key":"b%d"}]}`, m.target, m.next())
	}},
	"POST /v1/accounts/{id}/credits": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"amount":"1.00","idempotency_key":"c%d"}`, m.next())
	}},
	"GET /v1/accounts/{id}/transactions": {body: noBody},
	"GET /v1/accounts/{id}/grants":       {body: noBody},
	"POST /v1/accounts/{id}/holds": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"amount":"0.01","idempotency_key":"h%d"}`, m.next())
	}},
	"GET /v1/accounts/{id}/holds": {body: noBody},
	"POST /v1/accounts/{id}/holds/{hold_id}/capture": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"idempotency_key":"cap%d"}`, m.next())
	}},
	"POST /v1/accounts/{id}/holds/{hold_id}/release": {write: true, windDown: true, body: noBody},
	"POST /v1/accounts/{id}/grants/{grant_id}/void": {write: true, windDown: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"idempotency_key":"v%d"}`, m.next())
	}},

	"GET /v1/accounts/{id}/auto_top_up": {body: noBody},
	"PUT /v1/accounts/{id}/auto_top_up": {write: true, body: func(*matrix) string {
		return `{"enabled":true,"threshold":"5.00","target":"20.00"}`
	}},
	"GET /v1/accounts/{id}/auto_top_up/audit":             {body: noBody},
	"POST /v1/accounts/{id}/payment_methods":              {write: true, body: func(*matrix) string { return `{"payment_method":"pm_card_visa"}` }},
	"GET /v1/accounts/{id}/payment_methods":               {body: noBody},
	"POST /v1/accounts/{id}/payment_methods/setup":        {write: true, body: noBody},
	"GET /v1/accounts/{id}/payment_methods/setup/return":  {body: noBody},
	"DELETE /v1/accounts/{id}/payment_methods/{pm}":       {write: true, windDown: true, body: noBody},
	"POST /v1/accounts/{id}/payment_methods/{pm}/default": {write: true, body: noBody},
	"POST /v1/accounts/{id}/top_ups": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"amount":"10.00","idempotency_key":"t%d"}`, m.next())
	}},
	"GET /v1/accounts/{id}/top_ups":                     {body: noBody},
	"GET /v1/accounts/{id}/top_ups/{top_up_id}":         {body: noBody},
	"GET /v1/accounts/{id}/top_ups/{top_up_id}/receipt": {body: noBody},
	// A refund of 0.01 each time: the holder's top-up of 10.00 outlasts
	// the matrix (it is disputed only by a later route).
	"POST /v1/accounts/{id}/top_ups/{top_up_id}/refunds": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"amount":"0.01","idempotency_key":"rf%d"}`, m.next())
	}},
	"GET /v1/accounts/{id}/top_ups/{top_up_id}/refunds": {body: noBody},
	"GET /v1/accounts/{id}/disputes":                    {body: noBody},
	"GET /v1/accounts/{id}/statement":                   {body: noBody, query: "?month=2026-11&format=csv"},
	"GET /v1/accounts/{id}/notifications":               {body: noBody},
	"GET /v1/accounts/{id}/low_balance_alerts":          {body: noBody},
	"PUT /v1/accounts/{id}/low_balance_alerts":          {write: true, body: func(*matrix) string { return `{"thresholds":["5.00"]}` }},
	"GET /v1/accounts/{id}/budgets":                     {body: noBody},
	"POST /v1/accounts/{id}/budgets": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"subject":"s%d","kind":"unlimited"}`, m.next())
	}},
	"GET /v1/accounts/{id}/budgets/{budget_id}":    {body: noBody},
	"PUT /v1/accounts/{id}/budgets/{budget_id}":    {write: true, body: func(*matrix) string { return `{"kind":"unlimited"}` }},
	"DELETE /v1/accounts/{id}/budgets/{budget_id}": {write: true, windDown: true, body: noBody},
	"POST /v1/accounts/{id}/webhook_endpoints": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"url":"https://8.8.8.8/hooks/%d"}`, m.next())
	}},
	"GET /v1/accounts/{id}/webhook_endpoints":                              {body: noBody},
	"DELETE /v1/accounts/{id}/webhook_endpoints/{endpoint_id}":             {write: true, windDown: true, body: noBody},
	"GET /v1/accounts/{id}/webhook_endpoints/{endpoint_id}/deliveries":     {body: noBody},
	"POST /v1/accounts/{id}/webhook_endpoints/{endpoint_id}/rotate_secret": {write: true, body: noBody},
	"POST /v1/accounts/{id}/webhook_endpoints/{endpoint_id}/resend": {write: true, body: func(m *matrix) string {
		return fmt.Sprintf(`{"event_id":%q}`, m.events[m.target])
	}},
	"POST /v1/accounts/{id}/login_links": {write: true, body: noBody},
	"POST /v1/stripe/webhook":            {body: func(*matrix) string { return `{}` }},
	"GET /v1/sandbox/charges":            {body: noBody},
	// The holder's top-up's charge: disputed by the admin, then closed
	// won; both are idempotent, so each admin call answers 200.
	"POST /v1/sandbox/charges/{charge_id}/dispute":       {body: noBody},
	"POST /v1/sandbox/charges/{charge_id}/dispute/close": {body: func(*matrix) string { return `{"outcome":"won"}` }},
	"GET /sandbox/setup/{session}":                       {body: noBody},
	"POST /sandbox/setup/{session}":                      {body: noBody},
	"GET /pay/{top_up_id}":                               {body: noBody},
	"POST /pay/{top_up_id}":                              {body: noBody},
}

// holder is an account with its key and the resources the matrix's paths
// name.
type holder struct {
	account
	card, budget, endpoint, topUp, charge string
}

type matrix struct {
	e      *env
	n      int
	target string            // the account the current call names
	events map[string]string // an event of each holder, by account
}

func (m *matrix) next() int { m.n++; return m.n }

// TestAuthorizationMatrix tries every route with every kind of caller.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuthLimit: true})
	m := &matrix{e: e, events: map[string]string{}}
	owner := m.holder("owner@example.com")
	other := m.holder("other@example.com")
	closed := m.holder("closed@example.com")
	// What the closed account's wind-down calls remove, made while it was open.
	closedPool := map[string][]string{}
	for range 2 {
		closedPool["key_id"] = append(closedPool["key_id"], m.fresh(closed, "key_id"))
		closedPool["pm"] = append(closedPool["pm"], m.fresh(closed, "pm"))
		closedPool["budget_id"] = append(closedPool["budget_id"], m.fresh(closed, "budget_id"))
		closedPool["endpoint_id"] = append(closedPool["endpoint_id"], m.fresh(closed, "endpoint_id"))
		closedPool["grant_id"] = append(closedPool["grant_id"], m.fresh(closed, "grant_id"))
	}
	closedPool["hold_id"] = []string{m.fresh(closed, "hold_id")}
	e.mustAPI("PATCH", "/v1/accounts/"+closed.ID, adminKey, `{"status":"closed"}`, 200, nil)
	revoked := m.newKey(owner)
	var revokeID struct {
		ID string `json:"id"`
	}
	keys := m.keysOf(owner)
	for _, k := range keys {
		if strings.HasPrefix(revoked, k.Prefix) && k.Prefix != "" && len(k.Prefix) == 12 {
			revokeID.ID = k.ID
		}
	}
	if revokeID.ID == "" {
		t.Fatalf("the new key is not listed: %+v", keys)
	}
	e.mustAPI("DELETE", "/v1/accounts/"+owner.ID+"/api_keys/"+revokeID.ID, adminKey, "", 200, nil)
	session, _ := e.signedIn(other.account)

	routes := e.server.RouteInfos()
	seen := map[string]bool{}
	for _, r := range routes {
		name := r.Method + " " + r.Path
		seen[name] = true
		spec, ok := routeSpecs[name]
		if !ok {
			t.Errorf("route %s has no entry in routeSpecs: say what it does, so the matrix covers it", name)
			continue
		}
		if r.Access == "public" {
			status, body := m.call(r.Method, m.path(r.Path, owner, nil), spec.body(m), "", nil)
			if status == 401 || status == 403 || status == 429 || status >= 500 {
				t.Errorf("%s, public, no key: %d %s", name, status, body)
			}
			continue
		}
		for _, c := range []caller{noKey, malformedKey, revokedKey, otherKey, otherSession, closedKey, ownerKey, adminCaller} {
			target, key := owner, ""
			var cookies *browser
			switch c {
			case malformedKey:
				key = "not-a-key"
			case revokedKey:
				key = revoked
			case otherKey:
				key = other.Key
			case otherSession:
				cookies = session
			case closedKey:
				target, key = closed, closed.Key
			case ownerKey:
				key = owner.Key
			case adminCaller:
				key = adminKey
			}
			want := expect(r.Access, r.Path, spec, c)
			var pool map[string][]string
			if c == closedKey {
				pool = closedPool
			}
			m.target = target.ID
			path := m.path(r.Path, target, pool) + spec.query
			body := spec.body(m)
			before := m.snapshot()
			status, raw := m.call(r.Method, path, body, key, cookies)
			if !want.ok(status, raw) {
				t.Errorf("%s as %s: %d %s; want %s", name, c, status, raw, want)
			}
			if want.refused() {
				if after := m.snapshot(); after != before {
					t.Errorf("%s as %s was refused (%d) but wrote:\n%s", name, c, status, diffLines(before, after))
				}
			}
		}
	}
	for name := range routeSpecs {
		if !seen[name] {
			t.Errorf("routeSpecs has %s, which the route table does not", name)
		}
	}
}

// expectation is what one cell of the matrix must answer.
type expectation struct {
	status int    // exact status, or 0 for any 2xx
	code   string // error code, when status is an error
}

func (x expectation) ok(status int, raw string) bool {
	if x.status == 0 {
		return status >= 200 && status < 300
	}
	if status != x.status {
		return false
	}
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	return x.code == "" || (json.Unmarshal([]byte(raw), &body) == nil && body.Error.Code == x.code)
}

func (x expectation) refused() bool { return x.status != 0 }

func (x expectation) String() string {
	if x.status == 0 {
		return "2xx"
	}
	return fmt.Sprintf("%d %s", x.status, x.code)
}

// expect is the contract, cell by cell.
func expect(access, path string, spec routeSpec, c caller) expectation {
	namesAccount := strings.Contains(path, "{id}")
	switch c {
	case noKey, malformedKey, revokedKey, otherSession:
		return expectation{401, "unauthenticated"}
	case otherKey:
		if namesAccount {
			return expectation{404, "not_found"}
		}
		return expectation{403, "forbidden"}
	case closedKey, ownerKey:
		if access == "admin" {
			return expectation{403, "forbidden"}
		}
		if c == closedKey && spec.write && !spec.windDown {
			return expectation{409, "account_closed"}
		}
	}
	return expectation{}
}

// holder makes a funded account with a card, a budget, an endpoint and a
// succeeded top-up.
func (m *matrix) holder(email string) holder {
	e := m.e
	h := holder{account: e.account(email, "100.00")}
	var card struct {
		ID string `json:"id"`
	}
	e.mustAPI("POST", "/v1/accounts/"+h.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_visa"}`, 201, &card)
	h.card = card.ID
	var b struct {
		ID string `json:"id"`
	}
	e.mustAPI("POST", "/v1/accounts/"+h.ID+"/budgets", adminKey, `{"subject":"base","kind":"unlimited"}`, 201, &b)
	h.budget = b.ID
	h.endpoint = m.fresh(h, "endpoint_id")
	var tu struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	e.mustAPI("POST", "/v1/accounts/"+h.ID+"/top_ups", adminKey, `{"amount":"10.00","idempotency_key":"first"}`, 201, &tu)
	h.topUp = tu.ID
	var charges struct {
		Data []struct {
			ID      string `json:"id"`
			TopUpID string `json:"top_up_id"`
		} `json:"data"`
	}
	e.mustAPI("GET", "/v1/sandbox/charges?limit=100", adminKey, "", 200, &charges)
	for _, c := range charges.Data {
		if c.TopUpID == tu.ID {
			h.charge = c.ID
		}
	}
	var ns struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	e.mustAPI("GET", "/v1/accounts/"+h.ID+"/notifications", adminKey, "", 200, &ns)
	if len(ns.Data) == 0 {
		e.t.Fatalf("%s was told nothing of its top-up", email)
	}
	m.events[h.ID] = ns.Data[0].ID
	return h
}

// fresh makes a new resource of the kind a path parameter names, for a
// call that removes one.
func (m *matrix) fresh(h holder, param string) string {
	e := m.e
	var out struct {
		ID string `json:"id"`
	}
	base := "/v1/accounts/" + h.ID
	switch param {
	case "key_id":
		e.mustAPI("POST", base+"/api_keys", adminKey, `{}`, 201, &out)
	case "pm":
		e.mustAPI("POST", base+"/payment_methods", adminKey, `{"payment_method":"pm_card_mastercard"}`, 201, &out)
	case "budget_id":
		e.mustAPI("POST", base+"/budgets", adminKey, fmt.Sprintf(`{"subject":"fresh%d","kind":"unlimited"}`, m.next()), 201, &out)
	case "endpoint_id":
		e.mustAPI("POST", base+"/webhook_endpoints", adminKey, fmt.Sprintf(`{"url":"https://8.8.8.8/fresh/%d"}`, m.next()), 201, &out)
	case "hold_id":
		e.mustAPI("POST", base+"/holds", adminKey, fmt.Sprintf(`{"amount":"0.01","idempotency_key":"fresh%d"}`, m.next()), 201, &out)
	case "grant_id":
		var c struct {
			GrantID string `json:"grant_id"`
		}
		e.mustAPI("POST", base+"/credits", adminKey, fmt.Sprintf(`{"amount":"1.00","idempotency_key":"fresh%d"}`, m.next()), 201, &c)
		out.ID = c.GrantID
	default:
		e.t.Fatalf("no fresh %s", param)
	}
	return out.ID
}

func (m *matrix) newKey(h holder) string {
	var out struct {
		Key string `json:"key"`
	}
	m.e.mustAPI("POST", "/v1/accounts/"+h.ID+"/api_keys", adminKey, `{"name":"to revoke"}`, 201, &out)
	return out.Key
}

type keyRow struct {
	ID     string `json:"id"`
	Prefix string `json:"prefix"`
}

func (m *matrix) keysOf(h holder) []keyRow {
	var out struct {
		Data []keyRow `json:"data"`
	}
	m.e.mustAPI("GET", "/v1/accounts/"+h.ID+"/api_keys?limit=100", adminKey, "", 200, &out)
	return out.Data
}

// path fills a route pattern: the holder's own resources, or fresh ones
// for a DELETE (taken from pool when given: a closed account cannot get
// new ones).
func (m *matrix) path(pattern string, h holder, pool map[string][]string) string {
	var b strings.Builder
	rest := pattern
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		j := strings.IndexByte(rest, '}')
		b.WriteString(rest[:i])
		param := rest[i+1 : j]
		rest = rest[j+1:]
		removes := strings.HasPrefix(pattern, "/v1/") && slices.Contains([]string{"key_id", "pm", "budget_id", "endpoint_id"}, param) &&
			!strings.Contains(rest, "/")
		var v string
		switch {
		case param == "id":
			v = h.ID
		case param == "session":
			v = "cs_unknown"
		case param == "top_up_id":
			v = h.topUp
		case param == "hold_id" && pool != nil:
			// A capture or release takes a hold made before the
			// account closed (it cannot make new ones).
			v = pool[param][0]
		case param == "hold_id":
			// Each call gets an active hold of its own.
			v = m.fresh(h, param)
		case param == "grant_id" && pool != nil && len(pool[param]) > 0:
			// A void needs an active grant each time.
			v, pool[param] = pool[param][0], pool[param][1:]
		case param == "grant_id":
			v = m.fresh(h, param)
		case param == "charge_id":
			v = h.charge
		case removes && pool != nil && len(pool[param]) > 0:
			v, pool[param] = pool[param][0], pool[param][1:]
		case removes && pool == nil:
			v = m.fresh(h, param)
		case param == "pm":
			v = h.card
		case param == "budget_id":
			v = h.budget
		case param == "endpoint_id":
			v = h.endpoint
		default:
			m.e.t.Fatalf("no value for {%s} in %s", param, pattern)
		}
		b.WriteString(v)
	}
	return b.String()
}

// call sends one request: with key as a Bearer key when not "", and with
// the cookies of a signed-in console browser when b is not nil.
func (m *matrix) call(method, path, body, key string, b *browser) (int, string) {
	t := m.e.t
	t.Helper()
	req, err := http.NewRequest(method, m.e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch key {
	case "":
	case "not-a-key":
		req.Header.Set("Authorization", "Basic bm90OmEta2V5")
	default:
		req.Header.Set("Authorization", "Bearer "+key)
	}
	client := http.DefaultClient
	if b != nil {
		client = b.http
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// volatile are columns a refused call may still change: when a valid key
// was last used.
var volatile = map[string]bool{"last_used_at": true}

// snapshot is every row of every table, as text.
func (m *matrix) snapshot() string {
	t := m.e.t
	t.Helper()
	ctx := context.Background()
	db := m.e.store.DB()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var line strings.Builder
			for i, c := range cols {
				if !volatile[c] {
					fmt.Fprintf(&line, "%s=%v ", c, vals[i])
				}
			}
			lines = append(lines, table+": "+line.String())
		}
		rows.Close()
		slices.Sort(lines)
		out.WriteString(strings.Join(lines, "\n") + "\n")
	}
	return out.String()
}

func diffLines(before, after string) string {
	old := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		old[l] = true
	}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		if !old[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
