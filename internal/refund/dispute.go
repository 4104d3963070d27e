package refund

import (
	"time"

	"github.com/topup/topup/internal/money"
)

// DisputeStatus is where a dispute is: open until the card network
// decides, then won (the money comes back) or lost.
type DisputeStatus string

// Dispute statuses of the public contract.
const (
	DisputeOpen DisputeStatus = "open"
	DisputeWon  DisputeStatus = "won"
	DisputeLost DisputeStatus = "lost"
)

// Dispute is a cardholder's dispute of a top-up's charge, as Topup keeps
// it: what the provider said of it so far, and what Topup did.
type Dispute struct {
	ID         string
	AccountID  string
	TopUpID    string
	ProviderID string // dp_…: each provider dispute is one Dispute
	Amount     money.Amount
	Status     DisputeStatus
	Reason     string
	// Withdrawn is what the dispute's entry took from the balance (zero
	// until the funds were withdrawn, and for an inquiry, which withdraws
	// nothing); Reinstated is true once a won dispute gave it back.
	Withdrawn  money.Amount
	WasDrawn   bool
	Reinstated bool
	CreatedAt  time.Time
	ClosedAt   time.Time
}

// DisputeEvent is one thing the provider said of a dispute. Each event
// carries the dispute as the provider then saw it; events may come in any
// order, more than once.
type DisputeEvent struct {
	// Kind is what happened: Opened, FundsWithdrawn, FundsReinstated or
	// Closed.
	Kind DisputeEventKind
	// Amount is the disputed amount.
	Amount money.Amount
	// Won is set on Closed: the merchant won.
	Won    bool
	Reason string
	// At is when Topup heard it.
	At time.Time
}

// DisputeEventKind names the provider's dispute events (Stripe's
// charge.dispute.created, .funds_withdrawn, .funds_reinstated, .closed).
type DisputeEventKind string

// The dispute events.
const (
	Opened          DisputeEventKind = "created"
	FundsWithdrawn  DisputeEventKind = "funds_withdrawn"
	FundsReinstated DisputeEventKind = "funds_reinstated"
	Closed          DisputeEventKind = "closed"
)

// DisputeEffect is what one dispute event does.
type DisputeEffect struct {
	// Opened is true the first time Topup hears of the dispute, whichever
	// event that is: Automatic Top-Up switches off (reason dispute), the
	// account's automatic top-ups not yet attempted are canceled, the
	// customer is told (top_up.disputed) and the operator sees it.
	Opened bool
	// Withdraw is the amount the dispute's entry takes now (through
	// ledger.Wallet.Claw): never more than what the top-up's refunds and
	// earlier disputes left.
	Withdraw money.Amount
	// Reinstate is true when a won dispute's withdrawal comes back now
	// (a dispute_reversal entry and grant of what the dispute's entry
	// took).
	Reinstate bool
	// Closed is true when this event closed the dispute (the first close
	// heard: a copy of it changes neither the outcome nor when it closed).
	Closed bool
}

// Apply is what ev does to d (the zero Dispute for one Topup has not heard
// of), given the top-up's tally before it, and returns the dispute
// afterwards. Any order of events gives the same end: hearing that funds
// were reinstated implies they had been withdrawn, so a withdrawal not yet
// applied is applied first; a withdrawal heard of after the dispute closed
// won is given back at once (its reinstatement is certain); each of
// opening, withdrawal and reinstatement happens at most once; an inquiry
// that closes without a withdrawal moves nothing, and a lost dispute keeps
// what it withdrew.
func (d Dispute) Apply(ev DisputeEvent, t Tally) (Dispute, DisputeEffect) {
	var eff DisputeEffect
	if d.Status == "" {
		d.Status, d.Amount, d.Reason = DisputeOpen, ev.Amount, ev.Reason
		eff.Opened = true
	}
	if ev.Amount > 0 {
		d.Amount = ev.Amount
	}
	if (ev.Kind == FundsWithdrawn || ev.Kind == FundsReinstated) && !d.WasDrawn {
		d.WasDrawn = true
		eff.Withdraw = min(d.Amount, t.Refundable())
		d.Withdrawn = eff.Withdraw
	}
	if ev.Kind == Closed && d.Status == DisputeOpen {
		d.Status, d.ClosedAt, eff.Closed = DisputeLost, ev.At, true
		if ev.Won {
			d.Status = DisputeWon
		}
	}
	if (ev.Kind == FundsReinstated || d.Status == DisputeWon) && d.WasDrawn && !d.Reinstated {
		d.Reinstated = true
		eff.Reinstate = d.Withdrawn > 0
	}
	return d, eff
}

// DisputeRecord is a dispute as the store keeps it and answers one event
// of it with: the dispute, what its entry took, and what that event did.
type DisputeRecord struct {
	Dispute
	// Taken is what the dispute's entry took from the balance (less than
	// Withdrawn by what had expired or been voided).
	Taken money.Amount
	// Opened is set on the answer of the event that first recorded the
	// dispute (Effect.Opened).
	Opened bool
	// Effect is what the event answered did; a copy of an event already
	// applied does nothing.
	Effect DisputeEffect
}

// DisputeWord is one thing the provider said of a dispute: which dispute
// (ProviderID), the charge it disputes (a top-up keeps its charge's id),
// and the event.
type DisputeWord struct {
	ProviderID string
	ChargeID   string
	// AmountMinor is the disputed amount in the currency's minor units.
	AmountMinor int64
	Kind        DisputeEventKind
	Won         bool
	Reason      string
}
