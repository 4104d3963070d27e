package sandbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/topup/topup/internal/payment"
)

// Op names a call of the payment interface that can fail at Stripe, for a
// Hook to decide its fault.
type Op string

// The calls a Hook is asked about.
const (
	OpCharge     Op = "charge"
	OpGet        Op = "get"
	OpCancel     Op = "cancel"
	OpFind       Op = "find"
	OpRefund     Op = "refund"
	OpFindRefund Op = "find_refund"
)

// Call is one call a Hook is asked about, before it does anything.
type Call struct {
	Op Op
	// Request is the request of OpCharge.
	Request payment.ChargeRequest
	// Refund is the request of OpRefund.
	Refund payment.RefundRequest
	// Replay is set for a charge or refund request whose idempotency key
	// the sandbox still remembers: it will answer with that key's charge
	// or refund, not make one.
	Replay bool
	// ID is the charge of OpGet, OpCancel, OpRefund and OpFindRefund, the
	// top-up of OpFind.
	ID string
}

// Fault is how one call misbehaves; the zero Fault is a call that behaves.
// What Stripe and the network do to Topup, each a case the engine must
// survive.
type Fault struct {
	// Refuse answers the call with this error before anything is charged
	// or read: wrap payment.ErrUnknownOutcome for a 503 or a timeout before
	// the request arrived, leave it plain for a request refused outright
	// (a 400, retrying cannot help).
	Refuse error
	// Late (charges, refunds) makes the request reach Stripe only after the caller
	// gave up: nothing is charged now and the caller gets an error wrapping
	// payment.ErrUnknownOutcome; the hook's owner makes it land later by
	// sending the same request again.
	Late bool
	// Status, when set, is the outcome of a new charge instead of its
	// card's: Succeeded, Declined (with DeclineCode), RequiresAction
	// (authentication_required off-session) or Processing, which stays
	// undecided until Decide. A replayed key answers with its charge as it
	// stands, whatever Status says.
	Status      payment.ChargeStatus
	DeclineCode string
	// RefundStatus, when set, is the outcome of a new refund instead of
	// its card's: RefundPending (until SettleRefund), RefundSucceeded, or
	// RefundFailed: created pending, then failed at once with
	// FailureReason ("declined" when empty), its events sent before the
	// answer, which says pending. A replayed key answers with its refund
	// as it stands.
	RefundStatus  payment.RefundStatus
	FailureReason string
	// Delay is waited before the answer, after the call did its work, on
	// top of the Latency of charges; a caller whose context ends first gets
	// an unknown outcome.
	Delay time.Duration
	// During runs while the call is in flight: after its work (a charge
	// recorded, or the refusal decided) and before the answer. Heavy usage
	// during a charge, a card removed, a crash of the caller…
	During func()
	// Lose makes the call do its work and then lose the answer: the caller
	// gets an error wrapping payment.ErrUnknownOutcome, as after a timeout
	// or a 5xx once Stripe has charged. A request the sandbox refuses is
	// answered with its refusal all the same.
	Lose bool
}

// Hook injects faults into the sandbox, for the engine's tests (scripted,
// call by call) and the simulator (decided by its seed); Config.Hook is nil
// otherwise, and the sandbox then asks nothing and costs nothing more. A
// Hook is called on the caller's goroutine, and must be safe for
// concurrent use when the sandbox is used concurrently.
type Hook interface {
	// Fault decides how one call misbehaves. It is asked once per Charge
	// and Refund (after the request is validated), GetCharge,
	// CancelCharge, FindCharge and FindRefund call.
	Fault(c Call) Fault
	// Changed is told of every charge the sandbox makes and of every later
	// change of its status, once stored: what Stripe sends webhooks about.
	Changed(c Charge)
}

// ErrKeyReused is wrapped by the error of a charge or refund request whose
// idempotency key made a charge or refund with other parameters, as Stripe
// answers 400: a caller that changed a retry.
var ErrKeyReused = errors.New("idempotency key reused with other parameters")

// fault asks the hook about a call; without a hook every call behaves.
func (p *Provider) fault(c Call) Fault {
	if p.hook == nil {
		return Fault{}
	}
	return p.hook.Fault(c)
}

// changed tells the hook of a new or changed charge.
func (p *Provider) changed(c Charge) {
	if p.hook != nil {
		p.hook.Changed(c)
	}
}

// refused is the answer of a call the fault stops before it does
// anything, or nil: Refuse's error, or a timeout for a Late request.
func (f Fault) refused(op string) error {
	var err error
	switch {
	case f.Refuse != nil:
		err = fmt.Errorf("%s: %w", op, f.Refuse)
	case f.Late:
		err = fmt.Errorf("%s: %w: context deadline exceeded", op, payment.ErrUnknownOutcome)
	default:
		return nil
	}
	if f.During != nil {
		f.During()
	}
	return err
}

// outcome gives a new charge the fault's Status instead of its card's.
func (p *Provider) outcome(c *Charge, f Fault) {
	if f.Status == "" {
		return
	}
	c.Status, c.DeclineCode, c.ClientSecret = f.Status, f.DeclineCode, ""
	if f.Status == payment.RequiresAction {
		c.ClientSecret = p.clientSecret(c.ID)
		if c.OffSession && c.DeclineCode == "" {
			c.DeclineCode = codeAuthenticationRequired
		}
	}
}
