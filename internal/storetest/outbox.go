package storetest

import (
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/topup"
)

// The outbox: events written with the change they announce, fanned out to
// the account's e-mail and webhook endpoints, claimed under leases and
// finished only by the holder of the lease.

// succeededTopUp makes a manual top-up succeed, which writes its events.
func (f *fixture) succeededTopUp(acct, key string) topup.TopUp {
	f.t.Helper()
	if _, err := f.card(acct, "pm_"+key); err != nil {
		f.t.Fatal(err)
	}
	tu := f.manual(acct, "10.00", key)
	if _, _, err := f.s.Begin(ctx(f.t), tu.ID); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.s.Settle(ctx(f.t), tu.ID, topup.Outcome{Status: topup.Succeeded, ChargeID: "ch_" + key}, time.Minute); err != nil {
		f.t.Fatal(err)
	}
	return tu
}

// testEndpoints: endpoints are created with a secret, listed newest first,
// read and deleted by their account only.
func testEndpoints(t *testing.T, f *fixture) {
	a := f.account("hooks@example.com")
	e1, err := f.s.CreateEndpoint(ctx(t), a.ID, "https://93.184.215.14/one")
	if err != nil || e1.Secret == "" || e1.AccountID != a.ID {
		t.Fatalf("create: %+v, %v", e1, err)
	}
	e2, err := f.s.CreateEndpoint(ctx(t), a.ID, "https://93.184.215.14/two")
	if err != nil || e2.Secret == e1.Secret {
		t.Fatalf("a second endpoint: %+v, %v; want its own secret", e2, err)
	}
	list, more, err := f.s.Endpoints(ctx(t), a.ID, ledger.Page{Limit: 1})
	if err != nil || !more || len(list) != 1 || list[0].ID != e2.ID {
		t.Errorf("first page %+v, more %v, %v; want the newest", list, more, err)
	}
	other := f.account("other@example.com")
	if _, err := f.s.Endpoint(ctx(t), other.ID, e1.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("another account reads the endpoint: %v; want not_found", err)
	}
	if err := f.s.DeleteEndpoint(ctx(t), other.ID, e1.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("another account deletes the endpoint: %v; want not_found", err)
	}
	if err := f.s.DeleteEndpoint(ctx(t), a.ID, e1.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.Endpoint(ctx(t), a.ID, e1.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a deleted endpoint reads %+v, %v", got, err)
	}
}

// testOutboxDelivery: an event reaches the account's e-mail and each of
// its endpoints once; a claim holds a delivery until its lease ends, and
// only the holder's outcome counts.
func testOutboxDelivery(t *testing.T, f *fixture) {
	a := f.account("outbox@example.com")
	ep, err := f.s.CreateEndpoint(ctx(t), a.ID, "https://93.184.215.14/hook")
	if err != nil {
		t.Fatal(err)
	}
	f.succeededTopUp(a.ID, "k1")
	events, _, err := f.s.NotificationPage(ctx(t), a.ID, ledger.Page{Limit: 50})
	if err != nil || len(events) == 0 {
		t.Fatalf("events after a top-up: %d, %v; want some", len(events), err)
	}
	now := Epoch.Add(time.Second)
	claimed := f.dispatchAndClaim(now, len(events))
	// The lease ran out and another worker took one delivery over: the
	// first holder's late outcome does not overwrite the new one.
	var hook notify.Delivery
	for _, d := range claimed {
		if d.Channel == notify.Webhook && d.EndpointID == ep.ID {
			hook = d
		}
	}
	if hook.ID == "" {
		t.Fatalf("no webhook delivery among %+v", claimed)
	}
	f.finishAfterTakeover(a.ID, ep.ID, hook, now.Add(2*time.Minute), len(events))
}

// testDeliveryRenew: a claim on a delivery is renewed by its holder only
// (fenced on the end it set), keeps other workers away past its first
// end, is lost to a worker that claims after it ran out, and ends when the
// delivery is finished under it.
func testDeliveryRenew(t *testing.T, f *fixture) {
	a := f.account("renew-outbox@example.com")
	if _, err := f.s.CreateEndpoint(ctx(t), a.ID, "https://93.184.215.14/hook"); err != nil {
		t.Fatal(err)
	}
	f.succeededTopUp(a.ID, "k1")
	events, _, err := f.s.NotificationPage(ctx(t), a.ID, ledger.Page{Limit: 50})
	if err != nil || len(events) == 0 {
		t.Fatalf("events after a top-up: %d, %v; want some", len(events), err)
	}
	now := Epoch.Add(time.Second)
	d := f.dispatchAndClaim(now, len(events))[0] // claimed for a minute
	renew := func(held, until time.Time, want bool, what string) {
		t.Helper()
		if ok, err := f.s.RenewDelivery(ctx(t), d.ID, held, until); err != nil || ok != want {
			t.Errorf("%s: renewed %v, %v; want %v", what, ok, err, want)
		}
	}
	renew(d.Lease.Add(time.Microsecond), now.Add(3*time.Minute), false, "renew with another end than the claim's")
	renew(d.Lease, now.Add(3*time.Minute), true, "renew by the holder")
	held := now.Add(3 * time.Minute)
	if got, err := f.s.ClaimDeliveries(ctx(t), now.Add(2*time.Minute), time.Minute, 100); err != nil {
		t.Fatal(err)
	} else {
		for _, c := range got {
			if c.ID == d.ID {
				t.Errorf("delivery %s claimed again after its first end, while renewed", d.ID)
			}
		}
	}
	// The holder stalls past its renewed end; another worker claims.
	later := held.Add(time.Second)
	var taken notify.Delivery
	got, err := f.s.ClaimDeliveries(ctx(t), later, time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got {
		if c.ID == d.ID {
			taken = c
		}
	}
	if taken.ID == "" {
		t.Fatalf("delivery %s not claimed after its renewed claim ran out", d.ID)
	}
	renew(held, later.Add(2*time.Minute), false, "renew by the stalled holder")
	attempt := notify.Attempt{DeliveryID: d.ID, EndpointID: d.EndpointID, EventID: d.Event.ID, Type: d.Event.Type,
		Lease: taken.Lease, AttemptedAt: later, Delivered: true}
	if err := f.s.FinishDelivery(ctx(t), attempt); err != nil {
		t.Fatal(err)
	}
	renew(taken.Lease, later.Add(2*time.Minute), false, "renew a finished delivery")
}

// dispatchAndClaim fans the waiting events out and claims every delivery:
// an e-mail and a webhook for each of the events; a second claim under the
// lease gets none.
func (f *fixture) dispatchAndClaim(now time.Time, events int) []notify.Delivery {
	t := f.t
	t.Helper()
	if work, err := f.s.PendingWork(ctx(t), now); err != nil || !work {
		t.Errorf("pending work before dispatch: %v, %v; want true", work, err)
	}
	n, err := f.s.Dispatch(ctx(t), now, 24*time.Hour, 100)
	if err != nil || n != events {
		t.Fatalf("dispatched %d, %v; want %d", n, err, events)
	}
	claimed, err := f.s.ClaimDeliveries(ctx(t), now, time.Minute, 100)
	if err != nil || len(claimed) != 2*events {
		t.Fatalf("claimed %d, %v; want e-mail and webhook of %d events", len(claimed), err, events)
	}
	if again, err := f.s.ClaimDeliveries(ctx(t), now, time.Minute, 100); err != nil || len(again) != 0 {
		t.Errorf("claimed %d again under the lease (%v); want none", len(again), err)
	}
	return claimed
}

// finishAfterTakeover claims every delivery again after the first lease
// ran out and finishes them all, hook's with the first holder's stale
// lease: that outcome is recorded as an attempt but leaves hook pending.
func (f *fixture) finishAfterTakeover(acct, endpoint string, hook notify.Delivery, later time.Time, events int) {
	t := f.t
	t.Helper()
	taken, err := f.s.ClaimDeliveries(ctx(t), later, time.Minute, 100)
	if err != nil || len(taken) != 2*events {
		t.Fatalf("after the lease %d claimed, %v; want all %d again", len(taken), err, 2*events)
	}
	for _, d := range taken {
		lease := d.Lease
		if d.ID == hook.ID {
			lease = hook.Lease // the first holder, too late
		}
		attempt := notify.Attempt{DeliveryID: d.ID, EndpointID: d.EndpointID, EventID: d.Event.ID, Type: d.Event.Type,
			Lease: lease, StatusCode: 200, AttemptedAt: later, Delivered: true}
		if err := f.s.FinishDelivery(ctx(t), attempt); err != nil {
			t.Fatal(err)
		}
	}
	attempts, _, err := f.s.DeliveryAttempts(ctx(t), acct, endpoint, ledger.Page{Limit: 50})
	if err != nil || len(attempts) != events {
		t.Errorf("%d attempts recorded (%v); want %d", len(attempts), err, events)
	}
	// Only the late holder's delivery is still pending; a release lets it
	// be claimed at once.
	if err := f.s.ReleaseDeliveryLeases(ctx(t)); err != nil {
		t.Fatal(err)
	}
	left, err := f.s.ClaimDeliveries(ctx(t), later, time.Minute, 100)
	if err != nil || len(left) != 1 || left[0].ID != hook.ID {
		t.Errorf("left after finishing: %+v, %v; want only %s", left, err, hook.ID)
	}
}
