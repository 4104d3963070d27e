package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/topup"
)

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

type openAPISchema struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
	AllOf      []openAPISchema            `json:"allOf"`
	Ref        string                     `json:"$ref"`
}

type openAPIOperation struct {
	Summary     string                     `json:"summary"`
	Description string                     `json:"description"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Parameters  []json.RawMessage          `json:"parameters"`
}

// httpMethods are the keys of an OpenAPI path item that are operations.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// routeSet returns the route table as {"/path": {"get", "post"}}.
func routeSet(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range New(Config{}, Deps{}).Routes() {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			t.Fatalf("route %q is not METHOD /path", r)
		}
		out[path] = append(out[path], strings.ToLower(method))
	}
	return out
}

// TestOpenAPIDocumentsEveryRoute keeps the published document and the route
// table the same surface: a route added without documentation, or
// documentation left behind after a route was removed, fails here.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf(`"openapi" = %q, want 3.1.x`, doc.OpenAPI)
	}
	routes := routeSet(t)
	if len(routes) == 0 {
		t.Fatal("the route table is empty")
	}
	for path, methods := range routes {
		for _, m := range methods {
			if _, ok := doc.Paths[path][m]; !ok {
				t.Errorf("route %s %s is missing from openapi.json", strings.ToUpper(m), path)
			}
		}
	}
	for path, item := range doc.Paths {
		for key := range item {
			if !slices.Contains(httpMethods, key) {
				continue // "parameters", "summary" and the like
			}
			if !slices.Contains(routes[path], key) {
				t.Errorf("openapi.json documents %s %s, which the route table does not serve", strings.ToUpper(key), path)
			}
		}
	}
}

// TestOpenAPIOperationsAreComplete checks what a client generator needs of
// every operation: a summary, responses, a declared parameter for each
// {name} in the path, and $refs that point at something.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	var raw any
	if err := json.Unmarshal(openAPI, &raw); err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths {
		var shared []json.RawMessage
		if p, ok := item["parameters"]; ok {
			if err := json.Unmarshal(p, &shared); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
		}
		for key, body := range item {
			if !slices.Contains(httpMethods, key) {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(body, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			name := strings.ToUpper(key) + " " + path
			if op.Summary == "" {
				t.Errorf("%s has no summary", name)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s has no responses", name)
			}
			declared := map[string]bool{}
			for _, p := range append(slices.Clone(shared), op.Parameters...) {
				declared[parameterName(t, raw, p)] = true
			}
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") && !declared[strings.Trim(seg, "{}")] {
					t.Errorf("%s does not declare the path parameter %s", name, seg)
				}
			}
		}
	}
	walkRefs(raw, func(ref string) {
		if resolveRef(raw, ref) == nil {
			t.Errorf("$ref %q points at nothing", ref)
		}
	})
}

func parameterName(t *testing.T, root any, p json.RawMessage) string {
	t.Helper()
	var v struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(p, &v); err != nil {
		t.Fatalf("parameter %s: %v", p, err)
	}
	if v.Ref == "" {
		return v.Name
	}
	m, _ := resolveRef(root, v.Ref).(map[string]any)
	name, _ := m["name"].(string)
	return name
}

func walkRefs(v any, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				fn(s)
				continue
			}
			walkRefs(x, fn)
		}
	case []any:
		for _, x := range v {
			walkRefs(x, fn)
		}
	}
}

// resolveRef follows a local "#/a/b/c" reference; nil when it leads nowhere.
func resolveRef(root any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	cur := root
	for _, part := range strings.Split(rest, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]; !ok {
			return nil
		}
	}
	return cur
}

// wireCase is a documented schema and the Go type the handlers put on the
// wire for it.
type wireCase struct {
	schema string
	wire   any
	skip   []string // wire fields the schema leaves out on purpose
}

// TestOpenAPISchemasMatchWire checks that each documented schema lists
// exactly the JSON fields the handlers read or write, so a field renamed or
// added in Go cannot drift from the published contract.
func TestOpenAPISchemasMatchWire(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	tests := []wireCase{
		{"Account", accountJSON{}, []string{"api_key"}},
		{"AccountCreated", accountJSON{}, nil},
		{"UsageResult", resultJSON{}, nil},
		{"Entry", entryJSON{}, nil},
		{"UsageRequest", input.Usage{}, []string{"account_id"}},
		{"BatchEvent", input.Usage{}, nil},
		{"AutoTopUp", settingsJSON{}, nil},
		{"PaymentMethod", cardJSON{}, nil},
		{"TopUp", topUpJSON{}, nil},
		{"LoginLink", loginLinkJSON{}, nil},
		{"LowBalanceAlerts", lowBalanceAlertsJSON{}, nil},
		{"BudgetRequest", input.Budget{}, nil},
		{"Budget", alert.BudgetView{}, nil},
		{"Spendable", spendableJSON{}, nil},
		{"APIKey", apiKeyJSON{}, nil},
		{"APIKeyCreated", createdKeyJSON{}, nil},
		{"WebhookEndpoint", endpointJSON{}, nil},
		{"Delivery", deliveryJSON{}, nil},
		{"AuditEntry", auditJSON{}, nil},
		{"AuditSettings", auditSettingsJSON{}, nil},
	}
	for _, name := range eventSchemas(t, doc) {
		tests = append(tests, wireCase{name, eventJSON{}, nil})
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			s, ok := doc.Components.Schemas[tt.schema]
			if !ok {
				t.Fatalf("components.schemas has no %s", tt.schema)
			}
			got := schemaFields(t, doc, s)
			var want []string
			for _, f := range jsonFields(reflect.TypeOf(tt.wire)) {
				if !slices.Contains(tt.skip, f) {
					want = append(want, f)
				}
			}
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("schema %s has fields %v; the handlers use %v", tt.schema, got, want)
			}
		})
	}
	for _, name := range []string{"Account", "AccountCreated", "UsageRequest", "UsageResult", "BatchRequest",
		"BatchResult", "CreditRequest", "Entry", "EntryList", "Error"} {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("components.schemas has no %s", name)
		}
	}
}

// schemaFields returns the sorted property names of s, following allOf and
// $refs to other component schemas.
func schemaFields(t *testing.T, doc openAPIDoc, s openAPISchema) []string {
	t.Helper()
	var out []string
	if s.Ref != "" {
		target, ok := doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		if !ok {
			t.Fatalf("unresolved $ref %s", s.Ref)
		}
		return schemaFields(t, doc, target)
	}
	for name := range s.Properties {
		out = append(out, name)
	}
	for _, part := range s.AllOf {
		out = append(out, schemaFields(t, doc, part)...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// eventSchemas returns the schema names the Event discriminator maps each
// event type to, in the mapping's order.
func eventSchemas(t *testing.T, doc openAPIDoc) []string {
	t.Helper()
	var out []string
	for _, typ := range eventTypes {
		ref, ok := eventMapping(t)[typ]
		if !ok {
			t.Fatalf("the Event discriminator maps no schema to %s", typ)
		}
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Fatalf("event %s maps to %s, which is not a schema", typ, ref)
		}
		out = append(out, name)
	}
	return out
}

// eventTypes are every event type Topup writes to the outbox.
var eventTypes = []string{alert.BalanceLow, topup.EventTopUpSucceeded, topup.EventTopUpFailed, topup.EventTopUpActionRequired,
	sqlstore.EventTopUpRefunded, sqlstore.EventTopUpDisputed,
	topup.EventAutoTopUpDisabled, topup.EventAutoTopUpLimitReached, alert.BudgetThresholdReached, alert.BudgetExhausted,
	ledger.EventCreditExpiring, ledger.EventCreditExpired}

func eventMapping(t *testing.T) map[string]string {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas struct {
				Event struct {
					OneOf []struct {
						Ref string `json:"$ref"`
					} `json:"oneOf"`
					Discriminator struct {
						PropertyName string            `json:"propertyName"`
						Mapping      map[string]string `json:"mapping"`
					} `json:"discriminator"`
				}
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	ev := doc.Components.Schemas.Event
	if ev.Discriminator.PropertyName != "type" || len(ev.OneOf) != len(ev.Discriminator.Mapping) {
		t.Fatalf("Event is not a oneOf under a discriminator on type: %+v", ev)
	}
	return ev.Discriminator.Mapping
}

// TestOpenAPIEventTypes checks that every event type Topup writes has its
// own schema, whose type property names it alone, and that the document
// lists no type Topup does not write.
func TestOpenAPIEventTypes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	names := eventSchemas(t, doc)
	if m := eventMapping(t); len(m) != len(eventTypes) {
		t.Errorf("the Event discriminator maps %d types; Topup writes %d: %v", len(m), len(eventTypes), m)
	}
	for i, name := range names {
		var typ struct {
			Enum []string `json:"enum"`
		}
		if err := json.Unmarshal(doc.Components.Schemas[name].Properties["type"], &typ); err != nil || !slices.Equal(typ.Enum, eventTypes[i:i+1]) {
			t.Errorf("%s.type = %s; want the one value %s", name, doc.Components.Schemas[name].Properties["type"], eventTypes[i])
		}
	}
}

// TestOpenAPIDeclaresEveryStatus checks each operation against what the
// layers in front of every handler can answer, whatever the handler does:
// 400 (a query holding U+0000 or invalid UTF-8), 413 (a body over
// TOPUP_MAX_BODY), 404 (a path id that cannot exist), 401 and 429 (no valid
// key, too many failures), 403 (an account key on an admin route) and 500.
// The validation test (TestOpenAPIValidatesTheMainFlows) checks what the
// handlers themselves answer.
func TestOpenAPIDeclaresEveryStatus(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	for _, r := range New(Config{}, Deps{}).RouteInfos() {
		var op openAPIOperation
		if err := json.Unmarshal(doc.Paths[r.Path][strings.ToLower(r.Method)], &op); err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.Path, err)
		}
		want := []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}
		if strings.Contains(r.Path, "{") {
			want = append(want, http.StatusNotFound)
		}
		if r.Access != "public" {
			want = append(want, http.StatusUnauthorized, http.StatusTooManyRequests)
		}
		if r.Access == "admin" {
			want = append(want, http.StatusForbidden)
		}
		if r.Path != "/healthz" && r.Path != "/v1/openapi.json" {
			want = append(want, http.StatusInternalServerError)
		}
		for _, code := range want {
			if _, ok := op.Responses[strconv.Itoa(code)]; !ok {
				t.Errorf("%s %s does not declare %d", r.Method, r.Path, code)
			}
		}
		if op.Description == "" {
			t.Errorf("%s %s has no description", r.Method, r.Path)
		}
	}
}

// TestOpenAPIInfoAndDefaults checks what client generators and catalogues
// read besides the operations: a license and a contact, and no schema
// "default" (openapi-typescript makes a field with a default required, so
// optional request fields must say their default in words).
func TestOpenAPIInfoAndDefaults(t *testing.T) {
	t.Parallel()
	var doc struct {
		Info struct {
			License struct{ Name string }      `json:"license"`
			Contact struct{ Name, URL string } `json:"contact"`
		} `json:"info"`
		Servers []struct{ URL string } `json:"servers"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info.License.Name == "" || doc.Info.Contact.URL == "" || len(doc.Servers) == 0 {
		t.Errorf("info has license %+v, contact %+v, servers %+v", doc.Info.License, doc.Info.Contact, doc.Servers)
	}
	var raw any
	if err := json.Unmarshal(openAPI, &raw); err != nil {
		t.Fatal(err)
	}
	walkSchemas(raw, "", func(at string, schema map[string]any) {
		if _, ok := schema["default"]; ok {
			t.Errorf("%s has a default: say it in the description instead", at)
		}
	})
}

// walkSchemas calls fn on every object that is a schema: under a "schema"
// key, a components.schemas entry, or inside another schema.
func walkSchemas(v any, at string, fn func(string, map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["type"]; ok {
			fn(at, v)
		}
		for k, x := range v {
			if k == "properties" {
				// Property names are not keywords: a property may be
				// called "default".
				if props, ok := x.(map[string]any); ok {
					for name, p := range props {
						walkSchemas(p, at+"/properties/"+name, fn)
					}
				}
				continue
			}
			walkSchemas(x, at+"/"+k, fn)
		}
	case []any:
		for i, x := range v {
			walkSchemas(x, at+"/"+strconv.Itoa(i), fn)
		}
	}
}

// TestOpenAPIServedNamesPublicURL checks that the served document names
// TOPUP_PUBLIC_URL as its server, so a client generated from it calls this
// service rather than a fixed local address.
func TestOpenAPIServedNamesPublicURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ public, want string }{
		{"https://billing.example.com/", "https://billing.example.com"},
		{"", "http://127.0.0.1:8080"},
	} {
		body, err := openAPIFor(tt.public)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			OpenAPI string
			Servers []struct{ URL string } `json:"servers"`
			Paths   map[string]any         `json:"paths"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Servers) == 0 || doc.Servers[0].URL != tt.want || len(doc.Paths) == 0 {
			t.Errorf("served with TOPUP_PUBLIC_URL=%q: servers %+v, %d paths; want %s first", tt.public, doc.Servers, len(doc.Paths), tt.want)
		}
	}
}
