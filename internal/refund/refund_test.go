package refund_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/refund"
)

func units(n int64) money.Amount { return money.Amount(n * money.MicrosPerUnit) }

func code(err error) string {
	var e *apperr.Error
	if errors.As(err, &e) {
		return string(e.Code) + ":" + e.Field
	}
	return fmt.Sprint(err)
}

// TestCheck: a refund is the whole refundable amount by default, at most
// what is left of the top-up, and refused while a dispute is open.
func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		tally    refund.Tally
		amount   int64
		explicit bool
		want     int64
		err      string
	}{
		{"whole by default", refund.Tally{Amount: units(50)}, 0, false, 50, ""},
		{"the rest after a partial refund", refund.Tally{Amount: units(50), Refunded: units(20)}, 0, false, 30, ""},
		{"the rest after a dispute withdrew some", refund.Tally{Amount: units(50), Disputed: units(45)}, 0, false, 5, ""},
		{"part", refund.Tally{Amount: units(50)}, 20, true, 20, ""},
		{"exactly what is left", refund.Tally{Amount: units(50), Refunded: units(20)}, 30, true, 30, ""},
		{"more than is left", refund.Tally{Amount: units(50), Refunded: units(20)}, 31, true, 0, "invalid:amount"},
		{"zero", refund.Tally{Amount: units(50)}, 0, true, 0, "invalid:amount"},
		{"negative", refund.Tally{Amount: units(50)}, -1, true, 0, "invalid:amount"},
		{"nothing left", refund.Tally{Amount: units(50), Refunded: units(50)}, 0, false, 0, "invalid:amount"},
		{"open dispute", refund.Tally{Amount: units(50), OpenDispute: true}, 10, true, 0, "conflict:"},
	} {
		got, err := refund.Check(tc.tally, units(tc.amount), tc.explicit)
		if tc.err != "" {
			if code(err) != tc.err {
				t.Errorf("%s: error %v, want %s", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != units(tc.want) {
			t.Errorf("%s: %v, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

// TestObserve: the provider's word on a refund writes its entry once when
// it succeeds, gives the money back once when it fails after that, and a
// late copy of an older word changes nothing.
func TestObserve(t *testing.T) {
	t.Parallel()
	P, S, F := refund.Pending, refund.Succeeded, refund.Failed
	for _, tc := range []struct {
		from, word refund.Status
		want       refund.Effect
	}{
		{P, P, refund.Effect{Status: P}},
		{P, S, refund.Effect{Status: S, Claw: true, Notify: true}},
		{P, F, refund.Effect{Status: F}},
		{S, S, refund.Effect{Status: S}},
		{S, P, refund.Effect{Status: S}},
		{S, F, refund.Effect{Status: F, Reverse: true}},
		{F, F, refund.Effect{Status: F}},
		{F, S, refund.Effect{Status: F}},
		{F, P, refund.Effect{Status: F}},
	} {
		if got := (refund.Refund{Status: tc.from}).Observe(tc.word); got != tc.want {
			t.Errorf("%s then %s: %+v, want %+v", tc.from, tc.word, got, tc.want)
		}
	}
	// Every order of the words of a refund that succeeded and then failed
	// nets to nothing: a claw is matched by a reversal, or neither happens.
	for _, order := range [][]refund.Status{{S, F}, {F, S}, {P, S, F}, {S, P, F}, {F, P, S}, {S, S, F, F}} {
		r := refund.Refund{Status: P}
		claws, reversals := 0, 0
		for _, w := range order {
			e := r.Observe(w)
			if e.Claw {
				claws++
			}
			if e.Reverse {
				reversals++
			}
			r.Status = e.Status
		}
		if r.Status != F || claws != reversals || claws > 1 {
			t.Errorf("%v: ends %s with %d claws and %d reversals", order, r.Status, claws, reversals)
		}
	}
}

// permutations returns every order of evs.
func permutations(evs []refund.DisputeEvent) [][]refund.DisputeEvent {
	if len(evs) <= 1 {
		return [][]refund.DisputeEvent{evs}
	}
	var out [][]refund.DisputeEvent
	for i := range evs {
		rest := append(append([]refund.DisputeEvent(nil), evs[:i]...), evs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]refund.DisputeEvent{evs[i]}, p...))
		}
	}
	return out
}

// TestDisputeAnyOrder: whatever order (and however often) the provider's
// dispute events come, the dispute is opened once, withdraws once (capped
// at what refunds left), gives back once when won, closes once (a copy of
// the close keeps the time it first closed), and ends in the status the
// close said.
func TestDisputeAnyOrder(t *testing.T) {
	t.Parallel()
	opened := refund.DisputeEvent{Kind: refund.Opened, Amount: units(40), Reason: "fraudulent"}
	drawn := refund.DisputeEvent{Kind: refund.FundsWithdrawn, Amount: units(40)}
	back := refund.DisputeEvent{Kind: refund.FundsReinstated, Amount: units(40)}
	won := refund.DisputeEvent{Kind: refund.Closed, Amount: units(40), Won: true}
	lost := refund.DisputeEvent{Kind: refund.Closed, Amount: units(40)}
	for _, tc := range []struct {
		name      string
		events    []refund.DisputeEvent
		tally     refund.Tally
		status    refund.DisputeStatus
		withdrawn int64
		reinstate bool
	}{
		{"won", []refund.DisputeEvent{opened, drawn, back, won}, refund.Tally{Amount: units(50)}, refund.DisputeWon, 40, true},
		{"lost", []refund.DisputeEvent{opened, drawn, lost}, refund.Tally{Amount: units(50)}, refund.DisputeLost, 40, false},
		{"inquiry closed", []refund.DisputeEvent{opened, won}, refund.Tally{Amount: units(50)}, refund.DisputeWon, 0, false},
		{"after a partial refund: capped", []refund.DisputeEvent{opened, drawn, lost}, refund.Tally{Amount: units(50), Refunded: units(25)}, refund.DisputeLost, 25, false},
		{"refunded in full: nothing to take", []refund.DisputeEvent{opened, drawn, back, won}, refund.Tally{Amount: units(50), Refunded: units(50)}, refund.DisputeWon, 0, false},
	} {
		for _, order := range permutations(tc.events) {
			// Each event also comes twice, the copy right after it.
			var twice []refund.DisputeEvent
			for _, ev := range order {
				twice = append(twice, ev, ev)
			}
			for _, evs := range [][]refund.DisputeEvent{order, twice} {
				var d refund.Dispute
				opens, withdrawals, reinstated, closes := 0, money.Amount(0), 0, 0
				for i, ev := range evs {
					ev.At = time.Unix(int64(i), 0)
					var eff refund.DisputeEffect
					tally := tc.tally
					tally.Disputed = d.Withdrawn
					if d.Reinstated {
						tally.Disputed = 0
					}
					d, eff = d.Apply(ev, tally)
					if eff.Opened {
						opens++
					}
					withdrawals += eff.Withdraw
					if eff.Reinstate {
						reinstated++
					}
					if eff.Closed {
						closes++
						if d.ClosedAt != ev.At {
							t.Errorf("%s: closed at %v, want the close's %v", tc.name, d.ClosedAt, ev.At)
						}
					}
				}
				kinds := fmt.Sprint(evs)
				if opens != 1 {
					t.Errorf("%s %s: opened %d times", tc.name, kinds, opens)
				}
				if closes != 1 {
					t.Errorf("%s %s: closed %d times, want once (a copy of the close changes nothing)", tc.name, kinds, closes)
				}
				if withdrawals != units(tc.withdrawn) || d.Withdrawn != units(tc.withdrawn) {
					t.Errorf("%s %s: withdrew %v (dispute says %v), want %d", tc.name, kinds, withdrawals, d.Withdrawn, tc.withdrawn)
				}
				if want := map[bool]int{true: 1}[tc.reinstate]; reinstated != want {
					t.Errorf("%s %s: gave back %d times, want %d", tc.name, kinds, reinstated, want)
				}
				if d.Status != tc.status {
					t.Errorf("%s %s: ends %s, want %s", tc.name, kinds, d.Status, tc.status)
				}
			}
		}
	}
}
