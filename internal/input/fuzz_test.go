package input

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// requestTypes are the bodies of every API request that has one, each with
// what the API does with it after decoding, returning the text it would
// store (to check) or an error.
var requestTypes = []struct {
	name     string
	new      func() any
	validate func(v any) ([]string, error)
}{
	{"Usage", func() any { return new(Usage) }, func(v any) ([]string, error) {
		p, err := v.(*Usage).Posting("acct_1", "", testMax)
		return postingText(p), checkPosting(p, err, -1)
	}},
	{"Credit", func() any { return new(Credit) }, func(v any) ([]string, error) {
		p, err := v.(*Credit).Posting("acct_1", testMax, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		return postingText(p), checkPosting(p, err, 1)
	}},
	{"TopUp", func() any { return new(TopUp) }, func(v any) ([]string, error) {
		a, key, card, err := v.(*TopUp).Check(testMax)
		if err == nil && (a <= 0 || a > testMax) {
			return nil, errorf("TopUp accepted amount %d", a)
		}
		return []string{key, card}, err
	}},
	{"Batch", func() any { return new(Batch) }, func(v any) ([]string, error) {
		var text []string
		for i, raw := range v.(*Batch).Events {
			p, err := Event(raw, i, testMax)
			if err := checkPosting(p, err, -1); err != nil {
				return nil, err
			}
			text = append(text, postingText(p)...)
		}
		return text, nil
	}},
	{"CreateAccount", func() any { return new(CreateAccount) }, func(any) ([]string, error) { return nil, nil }},
	{"UpdateAccount", func() any { return new(UpdateAccount) }, func(v any) ([]string, error) {
		u, err := v.(*UpdateAccount).Update()
		var text []string
		if u.Email != nil {
			text = append(text, *u.Email)
		}
		return text, err
	}},
	{"AutoTopUp", func() any { return new(AutoTopUp) }, func(v any) ([]string, error) {
		in, err := v.(*AutoTopUp).Input()
		if in.PaymentMethod != nil {
			return []string{*in.PaymentMethod}, err
		}
		return nil, err
	}},
	{"Thresholds", func() any { return new(Thresholds) }, func(v any) ([]string, error) {
		_, err := v.(*Thresholds).Amounts()
		return nil, err
	}},
	{"Budget", func() any { return new(Budget) }, func(v any) ([]string, error) {
		_, err := v.(*Budget).LimitAmount()
		return nil, err
	}},
	{"Endpoint", func() any { return new(Endpoint) }, func(any) ([]string, error) { return nil, nil }},
	{"AttachCard", func() any { return new(AttachCard) }, func(v any) ([]string, error) {
		pm, err := v.(*AttachCard).Check()
		return []string{pm}, err
	}},
}

const testMax = DefaultMaxAmount

// fuzzError is a broken property, as opposed to a refusal.
type fuzzError struct{ error }

func errorf(format string, args ...any) error { return fuzzError{fmt.Errorf(format, args...)} }

func postingText(p ledger.Posting) []string {
	return []string{p.Description, p.Subject, p.IdempotencyKey}
}

// checkPosting is what an accepted posting must satisfy: an amount of the
// right sign within TOPUP_MAX_AMOUNT, a key of 1–255 characters, text within
// its lengths.
func checkPosting(p ledger.Posting, err error, sign money.Amount) error {
	if err != nil {
		return nil
	}
	a := p.Amount * sign
	switch {
	case a <= 0 || a > testMax:
		return errorf("posting accepted amount %d", p.Amount)
	case p.IdempotencyKey == "" || utf8.RuneCountInString(p.IdempotencyKey) > MaxIdempotencyKey:
		return errorf("posting accepted key %q", p.IdempotencyKey)
	case utf8.RuneCountInString(p.Description) > MaxDescription || utf8.RuneCountInString(p.Subject) > MaxSubject:
		return errorf("posting accepted text over its length")
	}
	return nil
}

// FuzzDecodeRequests decodes every request type from the same body and
// checks that nothing accepted holds U+0000 or invalid UTF-8 (anywhere in
// the decoded value, raw JSON included) and that what validation accepts
// meets the contract's rules; and never a panic.
func FuzzDecodeRequests(f *testing.F) {
	f.Add([]byte(`{"amount": "1.50", "idempotency_key": "k1", "description": "GPU minutes", "subject": "model-a"}`))
	f.Add([]byte(`{"events": [{"account_id": "acct_1", "amount": "0.000001", "idempotency_key": "e1"}]}`))
	f.Add([]byte(`{"enabled": true, "threshold": "5.00", "target": "20.00", "payment_method": "pm_1", "monthly_limit": null}`))
	f.Add([]byte(`{"thresholds": ["20.00", "5.00"]}`))
	f.Add([]byte(`{"subject": "gpu", "kind": "monthly", "limit": "100.00"}`))
	f.Add([]byte(`{"email": "ada@example.com", "status": "closed", "currency": "jpy"}`))
	f.Add([]byte(`{"url": "https://example.com/hook", "payment_method": "pm_card_visa"}`))
	f.Add([]byte(`{"amount": "1", "idempotency_key": "k\u0000"}`))
	f.Add([]byte("{\"amount\": \"1\", \"idempotency_key\": \"k\", \"description\": \"caf\xe9\"}"))
	f.Add([]byte(`{"amount": "1", "idempotency_key": "\ud800"}`))
	f.Add([]byte(`{"amount": "99999999999999999999999", "idempotency_key": "k"}`))
	f.Add([]byte(`{"events": [{"account_id": "a", "amount": "1", "idempotency_key": "k", "subject": "\u0000"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, rt := range requestTypes {
			v := rt.new()
			var err error
			if b, ok := v.(*Batch); ok {
				err = DecodeBatch(body, b)
			} else {
				err = Decode(body, v)
			}
			if err != nil {
				continue
			}
			if _, ok := v.(*Batch); !ok {
				if bad := uncleanIn(reflect.ValueOf(v)); bad != "" {
					t.Fatalf("%s: Decode(%q) accepted %q", rt.name, body, bad)
				}
			}
			text, err := rt.validate(v)
			if fe, ok := err.(fuzzError); ok {
				t.Fatalf("%s: %q: %v", rt.name, body, fe)
			}
			if err != nil {
				continue
			}
			for _, s := range text {
				if !Clean(s) {
					t.Fatalf("%s: validation of %q accepted %q", rt.name, body, s)
				}
			}
		}
	})
}

// uncleanIn returns the first string in v (strings, and the strings inside
// json.RawMessage values) that is not Clean.
func uncleanIn(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return uncleanIn(v.Elem())
	case reflect.String:
		if !Clean(v.String()) {
			return v.String()
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if s := uncleanIn(v.Field(i)); s != "" {
				return s
			}
		}
	case reflect.Slice:
		if raw, ok := v.Interface().(json.RawMessage); ok {
			return uncleanJSON(raw)
		}
		for i := range v.Len() {
			if s := uncleanIn(v.Index(i)); s != "" {
				return s
			}
		}
	}
	return ""
}

// uncleanJSON decodes raw as encoding/json would and returns a string in it
// holding U+0000, or U+FFFD that raw did not spell out (encoding/json puts
// it in place of invalid UTF-8 and lone surrogates).
func uncleanJSON(raw []byte) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	spelled := strings.Contains(string(raw), "\uFFFD") || strings.Contains(strings.ToLower(string(raw)), `\ufffd`)
	var walk func(any) string
	walk = func(x any) string {
		switch x := x.(type) {
		case string:
			if strings.IndexByte(x, 0) >= 0 || (!spelled && strings.ContainsRune(x, utf8.RuneError)) {
				return x
			}
		case []any:
			for _, e := range x {
				if s := walk(e); s != "" {
					return s
				}
			}
		case map[string]any:
			for k, e := range x {
				if s := walk(k); s != "" {
					return s
				}
				if s := walk(e); s != "" {
					return s
				}
			}
		}
		return ""
	}
	return walk(v)
}

// FuzzCheckJSON: on any valid JSON, CheckJSON accepts exactly the
// documents whose strings encoding/json decodes without U+0000 and without
// a U+FFFD it had to invent.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": "b"}`, `["\u0000"]`, "[\"\xff\"]", `{"k\u0000": 1}`, `"\ud800\udc00"`, `"\udc00\ud800"`,
		`"\\u0000"`, `{"a": [1, {"b": "\ufffd"}]}`, `"\uD83D\uDE00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		err := CheckJSON(doc, "")
		if strings.Contains(string(doc), "\uFFFD") || strings.Contains(strings.ToLower(string(doc)), `\ufffd`) {
			return // U+FFFD spelled out: the reference cannot tell it from an invented one
		}
		bad := uncleanJSON(doc)
		if (err == nil) != (bad == "") {
			t.Fatalf("CheckJSON(%q) = %v; encoding/json decodes a bad string: %q", doc, err, bad)
		}
	})
}

// FuzzQuery: a query accepted by Query holds only Clean names and values.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"starting_after=tx_1&limit=10", "starting_after=%00", "subject=%ff", "%00=x", "subject=%C3%A9", "a=1&a=%c3%28"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if Query(q) != nil {
			return
		}
		for k, vs := range q {
			for _, v := range append(vs, k) {
				if !Clean(v) {
					t.Fatalf("Query(%q) accepted %q", raw, v)
				}
			}
		}
	})
}
