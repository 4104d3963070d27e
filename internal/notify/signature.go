package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header every webhook POST carries:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>".
const SignatureHeader = "Topup-Signature"

// Errors of VerifySignature; a receiver answers 400 to any of them.
var (
	ErrNoSignature  = errors.New("notify: no valid signature in the header")
	ErrBadSignature = errors.New("notify: no signature matches the body")
	ErrTooOld       = errors.New("notify: timestamp outside the tolerance")
)

// The Standard Webhooks headers (standardwebhooks.com) every webhook POST
// also carries, so that a receiver using a Standard Webhooks library (or
// Svix's) verifies Topup's deliveries with the endpoint's secret as it is.
const (
	WebhookIDHeader        = "webhook-id"
	WebhookTimestampHeader = "webhook-timestamp"
	WebhookSignatureHeader = "webhook-signature"
)

// SecretPrefix starts every endpoint secret.
const SecretPrefix = "whsec_"

// KeyBytes is the size of an endpoint's signing key.
const KeyBytes = 32

// NewSecret spells a signing key as Standard Webhooks does: whsec_ and the
// key in padded standard base64.
func NewSecret(key []byte) string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// SecretKey is the key a Standard Webhooks signature is keyed with: the
// bytes the secret's base64 spells. Secrets made before Topup spoke Standard
// Webhooks are not standard base64; their key is the text after whsec_
// itself, which no Standard Webhooks library accepts — rotating the secret
// gives a standard one.
func SecretKey(secret string) []byte {
	rest := strings.TrimPrefix(secret, SecretPrefix)
	if key, err := base64.StdEncoding.DecodeString(rest); err == nil && len(key) > 0 {
		return key
	}
	return []byte(rest)
}

// Sign returns the Topup-Signature header value for body sent at t, with one
// v1 per secret (two while a rotated secret is still honoured). It is keyed
// with each whole secret string.
func Sign(secret string, t time.Time, body []byte, more ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	out := "t=" + ts
	for _, s := range append([]string{secret}, more...) {
		out += ",v1=" + hex.EncodeToString(mac([]byte(s), ts, body))
	}
	return out
}

// SignStandard returns the webhook-signature header value: "v1,<base64
// HMAC-SHA256(key, "<id>.<unix t>.<body>")>" per secret, space-separated.
func SignStandard(id string, t time.Time, body []byte, secrets ...string) string {
	content := id + "." + strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	for i, s := range secrets {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(SecretKey(s), content, body)))
	}
	return b.String()
}

// SetHeaders signs a webhook request for event id at t with the endpoint's
// secret and, during a rotation, its previous one: Topup-Signature and the
// three Standard Webhooks headers, both timestamps the time of this attempt.
func SetHeaders(h interface{ Set(string, string) }, id string, t time.Time, body []byte, secret, previous string) {
	secrets := []string{secret}
	if previous != "" {
		secrets = append(secrets, previous)
	}
	h.Set(SignatureHeader, Sign(secret, t, body, secrets[1:]...))
	h.Set(WebhookIDHeader, id)
	h.Set(WebhookTimestampHeader, strconv.FormatInt(t.Unix(), 10))
	h.Set(WebhookSignatureHeader, SignStandard(id, t, body, secrets...))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a Topup-Signature header against the raw body a
// webhook receiver read, with the endpoint's secret: one v1 signature must
// be HMAC-SHA256(secret, "<t>.<body>"), compared in constant time, and t
// must be within tolerance of now (0 skips that check), so that a captured
// request cannot be replayed later. Verify the raw bytes, before parsing
// the JSON.
func VerifySignature(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	want := mac([]byte(secret), ts, body)
	ok := false
	for _, s := range sigs {
		ok = hmac.Equal(s, want) || ok
	}
	if !ok {
		return ErrBadSignature
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: signed %s ago", ErrTooOld, d.Round(time.Second))
		}
	}
	return nil
}
