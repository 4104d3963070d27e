package httpapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/input"
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
	Summary    string                     `json:"summary"`
	Responses  map[string]json.RawMessage `json:"responses"`
	Parameters []json.RawMessage          `json:"parameters"`
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

// TestOpenAPISchemasMatchWire checks that each documented schema lists
// exactly the JSON fields the handlers read or write, so a field renamed or
// added in Go cannot drift from the published contract.
func TestOpenAPISchemasMatchWire(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	tests := []struct {
		schema string
		wire   any
		skip   []string // wire fields the schema leaves out on purpose
	}{
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
		{"Event", eventJSON{}, nil},
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
