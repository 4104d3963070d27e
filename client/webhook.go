package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers a Topup webhook POST carries: Standard Webhooks'
// (standardwebhooks.com) and Topup's own.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
	HeaderTopupSignature   = "Topup-Signature"
)

// DefaultWebhookTolerance is how far a delivery's timestamp may be from
// now, either way, as Standard Webhooks libraries allow.
const DefaultWebhookTolerance = 5 * time.Minute

// Errors of VerifyWebhook; a receiver answers 400 to each.
var (
	ErrWebhookNoSignature  = errors.New("topup: webhook: no signature headers")
	ErrWebhookBadSignature = errors.New("topup: webhook: no signature matches the body")
	ErrWebhookTooOld       = errors.New("topup: webhook: timestamp outside the tolerance")
)

// WebhookVerifier checks deliveries to one endpoint. During a rotation,
// give both the new and the previous secret: a delivery signed with either
// is accepted.
type WebhookVerifier struct {
	// Secrets are the endpoint's secrets (whsec_…), newest first.
	Secrets []string
	// Tolerance is the largest clock difference accepted (zero:
	// DefaultWebhookTolerance).
	Tolerance time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Verify checks a delivery's headers against the raw body, before it is
// parsed, and returns the event. It checks the Standard Webhooks signature
// when the delivery has one, else Topup-Signature; either way the
// timestamp must be within the tolerance, so a captured request cannot be
// replayed later.
func (v WebhookVerifier) Verify(h http.Header, body []byte) (*Event, error) {
	ts, ok := "", false
	if sig := h.Get(HeaderWebhookSignature); sig != "" {
		ts = h.Get(HeaderWebhookTimestamp)
		ok = v.standard(h.Get(HeaderWebhookID), ts, sig, body)
	} else if sig := h.Get(HeaderTopupSignature); sig != "" {
		ts, ok = v.topup(sig, body)
	} else {
		return nil, ErrWebhookNoSignature
	}
	if !ok {
		return nil, ErrWebhookBadSignature
	}
	if err := v.fresh(ts); err != nil {
		return nil, err
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// VerifyWebhook checks a delivery with one secret and the default
// tolerance; see WebhookVerifier.Verify.
func VerifyWebhook(secret string, h http.Header, body []byte) (*Event, error) {
	return WebhookVerifier{Secrets: []string{secret}}.Verify(h, body)
}

// standard checks "v1,<base64 HMAC-SHA256(key, id.ts.body)>" items, keyed
// with the bytes the secret's base64 spells.
func (v WebhookVerifier) standard(id, ts, header string, body []byte) bool {
	content := id + "." + ts
	ok := false
	for _, item := range strings.Fields(header) {
		got, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(item, "v1,"))
		if !strings.HasPrefix(item, "v1,") || err != nil {
			continue
		}
		for _, s := range v.Secrets {
			ok = hmac.Equal(got, mac(secretKey(s), content, body)) || ok
		}
	}
	return ok
}

// topup checks "t=<ts>,v1=<hex HMAC-SHA256(secret, ts.body)>", keyed with
// the whole secret string, and returns t.
func (v WebhookVerifier) topup(header string, body []byte) (string, bool) {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		if k == "t" {
			ts = val
		} else if b, err := hex.DecodeString(val); k == "v1" && err == nil {
			sigs = append(sigs, b)
		}
	}
	ok := false
	for _, got := range sigs {
		for _, s := range v.Secrets {
			ok = hmac.Equal(got, mac([]byte(s), ts, body)) || ok
		}
	}
	return ts, ok
}

func (v WebhookVerifier) fresh(ts string) error {
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrWebhookBadSignature
	}
	now, tol := time.Now(), v.Tolerance
	if v.Now != nil {
		now = v.Now()
	}
	if tol == 0 {
		tol = DefaultWebhookTolerance
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tol || d < -tol {
		return ErrWebhookTooOld
	}
	return nil
}

// secretKey is the signing key a whsec_ secret spells in standard base64
// (the text itself for secrets older than Standard Webhooks support).
func secretKey(secret string) []byte {
	rest := strings.TrimPrefix(secret, "whsec_")
	if key, err := base64.StdEncoding.DecodeString(rest); err == nil && len(key) > 0 {
		return key
	}
	return []byte(rest)
}

func mac(key []byte, prefix string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(prefix))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}
