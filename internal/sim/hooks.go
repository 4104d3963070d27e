package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/expiry"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// engineStore is the store as the engine sees it, with crash points
// around every call: each call is a transaction, so a process that dies
// inside one leaves the database as if it died just before it.
type engineStore struct {
	s *Sim
	p *process
}

var (
	_ topup.Store      = engineStore{}
	_ topup.EventStore = engineStore{}
)

func (h engineStore) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	h.s.crashPoint("before a claim")
	ids, err := h.p.store.Claim(ctx, now, lease, limit)
	if err == nil && len(ids) > 0 {
		h.s.step.tracef("claimed %v", ids)
		h.s.crashPoint("after a claim")
	}
	return ids, err
}

// Renew passes through without a crash point of its own: a crash just
// before or after it is one just after the claim or before Begin.
func (h engineStore) Renew(ctx context.Context, id string, held, until time.Time) (bool, error) {
	return h.p.store.Renew(ctx, id, held, until)
}

func (h engineStore) Begin(ctx context.Context, id string) (topup.TopUp, bool, error) {
	h.s.crashPoint("before Begin")
	t, ok, err := h.p.store.Begin(ctx, id)
	if err != nil {
		return t, ok, err
	}
	if ok {
		h.s.step.tracef("begin %s attempt %d amount %v card %s", id, t.Attempts, fmtAmount(t.Amount, t.Currency), t.PaymentMethod)
		if t.Attempts == 1 && t.Trigger != topup.TriggerManual {
			h.s.fixed(h.p, t)
		}
	} else {
		h.s.step.tracef("begin %s: nothing to charge (%s %s)", id, t.Status, t.FailureCode)
	}
	h.s.crashPoint("after Begin, before the charge")
	return t, ok, err
}

func (h engineStore) Settle(ctx context.Context, id string, o topup.Outcome, backoff time.Duration) (topup.Settled, error) {
	h.s.crashPoint("before Settle")
	var before topup.Status
	if t, err := h.p.store.TopUpByID(ctx, id); err == nil {
		before = t.Status
	} else if apperr.CodeOf(err) != apperr.NotFound {
		return topup.Settled{}, err
	}
	res, err := h.p.store.Settle(ctx, id, o, backoff)
	if err != nil {
		return res, err
	}
	if res.Changed {
		h.s.step.tracef("settle %s %s%s → %s %s", id, o.Status, eventNote(o), res.TopUp.Status, res.TopUp.FailureCode)
		if res.Credited && before != "" && !before.Open() {
			h.s.revived(res.TopUp, before)
		}
	}
	h.s.crashPoint("after Settle")
	return res, err
}

func eventNote(o topup.Outcome) string {
	if o.EventID == "" {
		return ""
	}
	return " (" + o.EventID + ")"
}

func (h engineStore) ExpiredActions(ctx context.Context) ([]string, error) {
	h.s.crashPoint("before a sweep")
	ids, err := h.p.store.ExpiredActions(ctx)
	for _, id := range ids {
		h.s.step.tracef("sweep expires %s (3-D Secure unanswered for 24 h)", id)
	}
	return ids, err
}

func (h engineStore) TopUpByID(ctx context.Context, id string) (topup.TopUp, error) {
	return h.p.store.TopUpByID(ctx, id)
}

func (h engineStore) Sweep(ctx context.Context, backoff time.Duration) ([]string, error) {
	h.s.crashPoint("before the due-account sweep")
	ids, err := h.p.store.Sweep(ctx, backoff)
	if err == nil && len(ids) > 0 {
		h.s.step.tracef("sweep created %v", ids)
	}
	h.s.crashPoint("after a sweep")
	return ids, err
}

func (h engineStore) NextDue(ctx context.Context, after time.Time) (time.Time, bool, error) {
	return h.p.store.NextDue(ctx, after)
}

func (h engineStore) CustomerID(ctx context.Context, accountID string) (string, error) {
	return h.p.store.CustomerID(ctx, accountID)
}

func (h engineStore) ReleaseLeases(ctx context.Context) error {
	return h.p.store.ReleaseLeases(ctx)
}

func (h engineStore) AddCard(ctx context.Context, accountID string, c payment.Card) (topup.Card, error) {
	return h.p.store.AddCard(ctx, accountID, c)
}

func (h engineStore) CardOwner(ctx context.Context, cardID string) (string, error) {
	return h.p.store.CardOwner(ctx, cardID)
}

func (h engineStore) RemoveCard(ctx context.Context, accountID, cardID string) (bool, error) {
	return h.p.store.RemoveCard(ctx, accountID, cardID)
}

// ApplyRefund and ApplyDispute are the provider's refund and dispute
// events as topup.ApplyEvent applies them; each is one transaction.
func (h engineStore) ApplyRefund(ctx context.Context, w refund.Word) (refund.Refund, bool, error) {
	h.s.crashPoint("before ApplyRefund")
	r, ok, err := h.p.store.ApplyRefund(ctx, w)
	if err == nil {
		h.s.crashPoint("after ApplyRefund")
	}
	return r, ok, err
}

func (h engineStore) ApplyDispute(ctx context.Context, w refund.DisputeWord) (refund.DisputeRecord, bool, error) {
	h.s.crashPoint("before ApplyDispute")
	d, ok, err := h.p.store.ApplyDispute(ctx, w)
	if err == nil {
		h.s.crashPoint("after ApplyDispute")
	}
	return d, ok, err
}

// fixed checks an automatic top-up whose amount Begin just fixed, before
// its first charge (check.go: monthly-limit, charges-the-card-in-use):
// against the monthly limit in force and what automatic top-ups fixed
// earlier in the same calendar month (UTC) add up to among those that
// succeeded or are still open — Topup's own record at that moment — and
// against the card Automatic Top-Up uses.
func (s *Sim) fixed(p *process, t topup.TopUp) {
	now := s.clock.Now()
	st, _, err := p.store.Settings(s.ctx, t.AccountID)
	if err != nil {
		panic(simError{fmt.Errorf("settings of %s: %w", t.AccountID, err)})
	}
	prior, err := p.store.AutomaticTopUpTotal(s.ctx, t.AccountID, now, t.ID, topup.Succeeded, topup.Pending, topup.Processing, topup.RequiresAction)
	if err != nil {
		panic(simError{err})
	}
	if l := st.MonthlyLimit; l != nil && prior+*t.Amount > *l {
		s.step.fail("monthly-limit", "automatic top-up %s of %s fixed at %s: with %s already charged or in flight in %s it exceeds the monthly limit %s",
			t.ID, t.Amount.Format(t.Currency), now.Format(time.RFC3339), prior.Format(t.Currency), topup.Month(now), l.Format(t.Currency))
	}
	// The first charge goes to the card Automatic Top-Up uses now: it is
	// on, and the card is its named one or else the account's default.
	want := st.PaymentMethod
	if want == "" {
		want = s.defaultCardID(p, t.AccountID)
	}
	if !st.Enabled || t.PaymentMethod != want {
		s.step.fail("charges-the-card-in-use", "automatic top-up %s is charged on card %q, but Automatic Top-Up is enabled=%v with card %q", t.ID, t.PaymentMethod, st.Enabled, want)
	}
}

// defaultCardID returns the id of the account's default card, "" if none.
func (s *Sim) defaultCardID(p *process, accountID string) string {
	cards, err := p.store.Cards(s.ctx, accountID)
	if err != nil {
		panic(simError{err})
	}
	for _, c := range cards {
		if c.Default {
			return c.ID
		}
	}
	return ""
}

func fmtAmount(a *money.Amount, c money.Currency) string {
	if a == nil {
		return "-"
	}
	return a.Format(c)
}

// revived counts a top-up Topup had given up on (failed, canceled) that a
// late success of its charge credited after all ("a success always
// wins"), and whether that took its month's automatic charges past the
// monthly limit: the limit was applied to later top-ups without it.
func (s *Sim) revived(t topup.TopUp, was topup.Status) {
	s.stats.Revived++
	s.step.tracef("top-up %s revived: credited after it was %s", t.ID, was)
	if t.Trigger == topup.TriggerManual || t.FirstAttemptAt.IsZero() {
		return
	}
	st, _, err := s.proc.store.Settings(s.ctx, t.AccountID)
	if err != nil || st.MonthlyLimit == nil {
		return
	}
	limit := *st.MonthlyLimit
	sum, err := s.proc.store.AutomaticTopUpTotal(s.ctx, t.AccountID, t.FirstAttemptAt, "", topup.Succeeded)
	if err == nil && sum > limit {
		s.stats.RevivedOverLimit++
		s.step.tracef("revived top-up %s takes %s past its monthly limit: %s charged", t.ID, topup.Month(t.FirstAttemptAt), sum.Format(t.Currency))
		if s.cfg.StrictLimit {
			s.step.fail("monthly-limit-charged", "top-up %s, given up on and then credited for a charge that succeeded after all, takes %s's automatic charges to %s, past the monthly limit %s",
				t.ID, topup.Month(t.FirstAttemptAt), sum.Format(t.Currency), limit.Format(t.Currency))
		}
	}
}

// simDetach is the provider as billing sees it when it removes a card: the
// process may die after the card left Topup and before the provider
// detached it.
type simDetach struct {
	payment.Provider
	s *Sim
}

func (d simDetach) DetachPaymentMethod(ctx context.Context, id string) error {
	d.s.crashPoint("after a card removal, before the provider detached it")
	err := d.Provider.DetachPaymentMethod(ctx, id)
	if err != nil {
		d.s.step.tracef("detach %s: %v", id, err)
	}
	return err
}

// holdStore is the store as the holds handlers see it, with crash points
// around the calls that write: a hold made or released whose answer never
// left the process.
type holdStore struct {
	s *Sim
	p *process
}

var _ ledger.HoldStore = holdStore{}

func (h holdStore) CreateHold(ctx context.Context, r ledger.HoldRequest) (ledger.Hold, bool, error) {
	h.s.crashPoint("before CreateHold")
	out, replayed, err := h.p.store.CreateHold(ctx, r)
	h.s.crashPoint("after CreateHold, before the answer")
	return out, replayed, err
}

func (h holdStore) Hold(ctx context.Context, accountID, holdID string) (ledger.Hold, error) {
	return h.p.store.Hold(ctx, accountID, holdID)
}

func (h holdStore) Holds(ctx context.Context, accountID string, status ledger.HoldStatus, p ledger.Page) ([]ledger.Hold, bool, error) {
	return h.p.store.Holds(ctx, accountID, status, p)
}

func (h holdStore) ReleaseHold(ctx context.Context, accountID, holdID string) (ledger.Hold, error) {
	h.s.crashPoint("before ReleaseHold")
	out, err := h.p.store.ReleaseHold(ctx, accountID, holdID)
	h.s.crashPoint("after ReleaseHold, before the answer")
	return out, err
}

// expiryStore is the store as the expiry worker sees it, with crash points
// around its calls (its sweeps go through the committer, flush's crash
// points; AfterFind has one between finding and writing).
type expiryStore struct {
	s *Sim
	p *process
}

var _ expiry.Store = expiryStore{}

func (h expiryStore) ExpiryDue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	h.s.crashPoint("before the expiry worker looked for due accounts")
	return h.p.store.ExpiryDue(ctx, now, limit)
}

func (h expiryStore) WarnExpiring(ctx context.Context, now time.Time, limit int) (int, error) {
	h.s.crashPoint("before credit.expiring warnings")
	n, err := h.p.store.WarnExpiring(ctx, now, limit)
	if n > 0 {
		h.s.crashPoint("after credit.expiring warnings")
	}
	return n, err
}

func (h expiryStore) TakeLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	h.s.crashPoint("before the expiry lease")
	return h.p.store.TakeLease(ctx, name, owner, now, ttl)
}

func (h expiryStore) ReleaseLease(ctx context.Context, name, owner string) error {
	return h.p.store.ReleaseLease(ctx, name, owner)
}
