package topup_test

import (
	"testing"
	"time"

	"github.com/topup/topup/internal/topup"
)

// TestAfterCardRemoved: what removing a card does to Automatic Top-Up, the
// rule behind DELETE …/payment_methods/{pm} and the provider's
// payment_method.detached event.
func TestAfterCardRemoved(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name              string
		enabled           bool
		named             string // the settings' payment_method
		cardsLeft         bool
		changed, disabled bool
	}{
		{"on, named card removed: off", true, "pm_1", true, true, true},
		{"on, default used, another card left: follows it", true, "", true, false, false},
		{"on, default used, last card removed: off", true, "", false, true, true},
		{"on, another card named: unchanged", true, "pm_2", true, false, false},
		{"off, named card removed: the name goes, still off", false, "pm_1", true, true, false},
		{"off, default used: unchanged", false, "", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := topup.Settings{Enabled: tc.enabled, PaymentMethod: tc.named}
			next, changed, disabled := st.AfterCardRemoved("pm_1", tc.cardsLeft, now)
			if changed != tc.changed || disabled != tc.disabled {
				t.Fatalf("changed %v disabled %v; want %v %v", changed, disabled, tc.changed, tc.disabled)
			}
			if next.PaymentMethod == "pm_1" {
				t.Fatal("the settings still name the removed card")
			}
			if disabled && (next.Enabled || next.DisabledReason != topup.PaymentMethodRemoved) {
				t.Fatalf("switched off as %+v", next)
			}
			if !disabled && next.Enabled != tc.enabled {
				t.Fatalf("enabled changed to %v without being switched off", next.Enabled)
			}
			if changed && !next.UpdatedAt.Equal(now) {
				t.Fatalf("updated_at %s, want %s", next.UpdatedAt, now)
			}
		})
	}
}
