// Package input holds the rules every value from outside meets before
// Topup acts on it: JSON bodies decoded strictly, text that is UTF-8
// without U+0000 and measured in characters, amounts within
// TOPUP_MAX_AMOUNT. The API (internal/httpapi) and the console
// (internal/web) both judge their input here, so a rule means one thing
// whichever door a value came through. It imports no database and no HTTP
// server, so its fuzz targets build quickly.
package input

import (
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/topup/topup/internal/apperr"
)

// Lengths of the free-text fields, in characters (PRODUCT.md, Conventions).
const (
	MaxIdempotencyKey = 255
	MaxSubject        = 255
	MaxDescription    = 1000
	MaxName           = 100
)

// Clean reports whether s is text Topup can store: valid UTF-8 without
// U+0000, which PostgreSQL refuses in text columns.
func Clean(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// CheckText refuses s, naming field, when it is not Clean.
func CheckText(field, s string) error {
	if !Clean(s) {
		return apperr.Invalidf(field, "must be UTF-8 text without U+0000")
	}
	return nil
}

// Text reads a free-text field of at most max characters; a nil v is "".
func Text(field string, v *string, max int) (string, error) {
	if v == nil {
		return "", nil
	}
	if err := CheckText(field, *v); err != nil {
		return "", err
	}
	if utf8.RuneCountInString(*v) > max {
		return "", apperr.Invalidf(field, "must be at most %d characters", max)
	}
	return *v, nil
}

// IdempotencyKey reads the required key: 1 to 255 characters.
func IdempotencyKey(field string, v *string) (string, error) {
	if v == nil || *v == "" {
		return "", apperr.Invalidf(field, "is required on every call that moves money")
	}
	return Text(field, v, MaxIdempotencyKey)
}

// Query refuses the first query parameter (name or value) that is not
// Clean, naming it; parameters are judged in name order so the answer does
// not depend on map order.
func Query(q url.Values) error {
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !Clean(k) {
			return apperr.Invalidf(strings.ToValidUTF8(strings.ReplaceAll(k, "\x00", ""), ""), "the query parameter's name must be UTF-8 text without U+0000")
		}
		for _, v := range q[k] {
			if err := CheckText(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}
