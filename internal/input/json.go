package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/topup/topup/internal/apperr"
)

// Decode reads body, a single JSON object, into v: unknown fields, trailing
// data and JSON of the wrong type (a number where a money string belongs)
// are refused, and so is any string (value or key) that holds U+0000,
// invalid UTF-8 or a lone UTF-16 surrogate escape — encoding/json would
// quietly turn the last two into U+FFFD. Refusals name the field as the
// contract writes it ("events[3].amount").
func Decode(body []byte, v any) error {
	return decodeAt(body, v, "")
}

// decodeAt is Decode for a value at path prefix ("events[3]") of a larger
// body, so that refusals name the field where the client sent it.
func decodeAt(body []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return withPrefix(prefix, decodeError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return withPrefix(prefix, apperr.Invalidf("", "the body must hold a single JSON object"))
	}
	return CheckJSON(body, prefix)
}

func withPrefix(prefix string, err error) error {
	e := apperr.As(err)
	if prefix == "" || e == nil {
		return err
	}
	if e.Field == "" {
		return e.WithField(prefix)
	}
	return e.WithField(prefix + "." + e.Field)
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return apperr.Invalidf("", "the body must be a JSON object")
		}
		return apperr.Invalidf(wireField(field), "must be a %s, not a JSON %s", kindName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apperr.Invalidf("", "malformed JSON body: %v", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Invalidf(printable(name), "unknown field")
	}
	return apperr.Invalidf("", "malformed JSON body: %v", err)
}

// printable is s without U+0000 and invalid UTF-8, for echoing a name the
// client sent back in an error.
func printable(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

// wireField turns encoding/json's "events.3.amount" path into the
// contract's "events[3].amount".
func wireField(path string) string {
	parts := strings.Split(path, ".")
	var b strings.Builder
	for i, p := range parts {
		if _, err := strconv.Atoi(p); err == nil && i > 0 {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func kindName(k string) string {
	switch k {
	case "ptr", "string":
		return "string"
	case "slice":
		return "list"
	case "struct", "map":
		return "object"
	}
	return k
}

// CheckJSON refuses, naming its field, the first string in the valid JSON
// document doc that holds U+0000, invalid UTF-8 or a lone surrogate escape
// (\ud800); prefix is the document's own path in a larger body. A document
// without a suspicious byte or escape is passed over in one scan.
func CheckJSON(doc []byte, prefix string) error {
	if utf8.Valid(doc) && !suspectEscape(doc) {
		return nil
	}
	w := walker{doc: doc}
	w.value(prefix)
	return w.err
}

// suspectEscape reports whether doc holds \u0000 or a \uD800–\uDFFF escape
// (possibly a false alarm, such as an escaped backslash before "u0000").
func suspectEscape(doc []byte) bool {
	for i := 0; ; {
		j := bytes.Index(doc[i:], []byte(`\u`))
		if j < 0 || i+j+6 > len(doc) {
			return false
		}
		h := doc[i+j+2 : i+j+6]
		if string(h) == "0000" || (h[0] == 'd' || h[0] == 'D') && bytes.IndexByte([]byte("89abcdefABCDEF"), h[1]) >= 0 {
			return true
		}
		i += j + 2
	}
}

// walker goes through a document encoding/json has already accepted, so
// it need not report syntax errors: it stops at the first bad string.
type walker struct {
	doc []byte
	i   int
	err error
}

func (w *walker) skipSpace() {
	for w.i < len(w.doc) && (w.doc[w.i] == ' ' || w.doc[w.i] == '\t' || w.doc[w.i] == '\n' || w.doc[w.i] == '\r') {
		w.i++
	}
}

func (w *walker) value(path string) {
	w.skipSpace()
	if w.i >= len(w.doc) || w.err != nil {
		return
	}
	switch w.doc[w.i] {
	case '{':
		w.object(path)
	case '[':
		w.array(path)
	case '"':
		if _, ok := w.str(); !ok {
			w.err = apperr.Invalidf(path, "must be UTF-8 text without U+0000")
		}
	default: // number, true, false, null
		for w.i < len(w.doc) && bytes.IndexByte([]byte(",]} \t\r\n"), w.doc[w.i]) < 0 {
			w.i++
		}
	}
}

// next moves past separators to the next member or element and reports
// whether there is one: false at the closing byte (consumed) or the end.
func (w *walker) next(closing byte) bool {
	for w.err == nil {
		w.skipSpace()
		if w.i >= len(w.doc) {
			return false
		}
		switch w.doc[w.i] {
		case closing:
			w.i++
			return false
		case ',':
			w.i++
			continue
		}
		return true
	}
	return false
}

// object walks the members of the object at w.i, naming each by its path.
func (w *walker) object(path string) {
	w.i++ // '{'
	for w.next('}') {
		key, ok := w.str()
		if !ok {
			w.err = apperr.Invalidf(path, "holds a name that is not UTF-8 text without U+0000")
			return
		}
		w.skipSpace()
		w.i++ // ':'
		w.value(join(path, key))
	}
}

// array walks the elements of the array at w.i, naming each path[n].
func (w *walker) array(path string) {
	w.i++ // '['
	for n := 0; w.next(']'); n++ {
		w.value(path + "[" + strconv.Itoa(n) + "]")
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// str reads the string literal at w.i and returns its text and whether it
// is clean: valid UTF-8 without U+0000 or a lone surrogate.
func (w *walker) str() (string, bool) {
	w.i++ // opening quote
	var b strings.Builder
	ok := true
	for w.i < len(w.doc) {
		c := w.doc[w.i]
		switch {
		case c == '"':
			w.i++
			return b.String(), ok
		case c == '\\' && w.i+1 < len(w.doc):
			if w.doc[w.i+1] != 'u' {
				b.WriteByte(unescape(w.doc[w.i+1]))
				w.i += 2
				continue
			}
			r, n := w.escapedRune(w.i)
			if r == 0 || r == utf8.RuneError {
				ok = false
			}
			b.WriteRune(r)
			w.i += n
		default:
			r, n := utf8.DecodeRune(w.doc[w.i:])
			if r == utf8.RuneError && n <= 1 {
				ok = false
			}
			b.WriteRune(r)
			w.i += n
		}
	}
	return b.String(), ok
}

// escapedRune decodes the \uXXXX escape at i (and the low surrogate after
// a high one): utf8.RuneError for a lone surrogate.
func (w *walker) escapedRune(i int) (rune, int) {
	if i+6 > len(w.doc) {
		return utf8.RuneError, len(w.doc) - i
	}
	r1 := hex4(w.doc[i+2 : i+6])
	if !utf16.IsSurrogate(r1) {
		return r1, 6
	}
	if r1 < 0xDC00 && i+12 <= len(w.doc) && w.doc[i+6] == '\\' && w.doc[i+7] == 'u' {
		if r := utf16.DecodeRune(r1, hex4(w.doc[i+8:i+12])); r != utf8.RuneError {
			return r, 12
		}
	}
	return utf8.RuneError, 6
}

func hex4(h []byte) rune {
	n, err := strconv.ParseUint(string(h), 16, 32)
	if err != nil {
		return utf8.RuneError
	}
	return rune(n)
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	}
	return c // " \ /
}

// DecodeBatch reads a usage batch like Decode, but leaves the events'
// strings to Event, so that a bad string in one event spoils only that
// event; it refuses a batch without events or with more than MaxBatch.
func DecodeBatch(body []byte, b *Batch) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(b); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.Invalidf("", "the body must hold a single JSON object")
	}
	return b.Check()
}
