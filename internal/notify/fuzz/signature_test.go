package fuzz

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/notify"
)

// FuzzSignature: what Sign makes, VerifySignature takes (same secret,
// body and time); any other body, secret or a time outside the tolerance
// is refused; never a panic.
func FuzzSignature(f *testing.F) {
	f.Add("whsec_1", []byte(`{"id":"evt_1","type":"balance.low"}`), int64(1767225600), int64(0), []byte("x"))
	f.Add("", []byte{}, int64(0), int64(301), []byte{})
	f.Add("s\x00", []byte("\xff\xfe"), int64(-1), int64(-301), []byte("\x00"))
	f.Add("whsec_1", []byte("body"), int64(253402300799), int64(86400), []byte("body "))
	f.Fuzz(func(t *testing.T, secret string, body []byte, unix, offset int64, other []byte) {
		unix %= 1 << 40
		offset %= 1 << 32
		at := time.Unix(unix, 0)
		header := notify.Sign(secret, at, body)
		if err := notify.VerifySignature(secret, header, body, 0, time.Time{}); err != nil {
			t.Fatalf("VerifySignature(Sign(%q, %d, %q)) = %v", secret, unix, body, err)
		}
		if string(other) != string(body) {
			if err := notify.VerifySignature(secret, header, other, 0, time.Time{}); !errors.Is(err, notify.ErrBadSignature) {
				t.Fatalf("a signature of %q verified %q: %v", body, other, err)
			}
		}
		if err := notify.VerifySignature(secret+"x", header, body, 0, time.Time{}); !errors.Is(err, notify.ErrBadSignature) {
			t.Fatalf("another secret verified: %v", err)
		}
		const tolerance = 5 * time.Minute
		err := notify.VerifySignature(secret, header, body, tolerance, at.Add(time.Duration(offset)*time.Second))
		if late := offset > 300 || offset < -300; late != errors.Is(err, notify.ErrTooOld) {
			t.Fatalf("verified %d s after signing with a 5 m tolerance: %v", offset, err)
		}
	})
}

// FuzzVerifySignature: a header the fuzzer writes is accepted only when it
// carries the real HMAC-SHA256 of "t.body" for one of its t= values,
// computed here independently; never a panic.
func FuzzVerifySignature(f *testing.F) {
	f.Add("t=1767225600,v1=00", []byte("{}"))
	f.Add("t=,v1=", []byte{})
	f.Add("v1=abc,t=1", []byte("x"))
	f.Add("t=1\x00,v1=\xff", []byte("\x00"))
	f.Add("t=99999999999999999999,v1="+strings.Repeat("a", 64), []byte("b"))
	f.Add(notify.Sign("whsec_fuzz", time.Unix(1767225600, 0), []byte("{}")), []byte("{}"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if notify.VerifySignature("whsec_fuzz", header, body, 0, time.Time{}) != nil {
			return
		}
		for _, part := range strings.Split(header, ",") {
			ts, ok := strings.CutPrefix(strings.TrimSpace(part), "t=")
			if !ok {
				continue
			}
			m := hmac.New(sha256.New, []byte("whsec_fuzz"))
			m.Write([]byte(ts + "."))
			m.Write(body)
			if strings.Contains(strings.ToLower(header), hex.EncodeToString(m.Sum(nil))) {
				return
			}
		}
		t.Fatalf("VerifySignature accepted %q for %q without its signature", header, body)
	})
}
