package topuptest

import (
	"errors"
	"fmt"
	"sync"

	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
)

// Faults is the sandbox's fault hook as the engine tests script it: each
// Charge call takes the next Fault of the script (the card behaves as its
// test token says once the script is used up), and the calls are counted.
// It is safe for concurrent use.
type Faults struct {
	mu       sync.Mutex
	script   []sandbox.Fault
	requests []payment.ChargeRequest
	finds    int
	gets     int
}

var _ sandbox.Hook = (*Faults)(nil)

// Script appends faults, each for one later Charge call.
func (f *Faults) Script(steps ...sandbox.Fault) {
	f.mu.Lock()
	f.script = append(f.script, steps...)
	f.mu.Unlock()
}

// Fault takes the next scripted fault of a Charge call and counts the
// calls.
func (f *Faults) Fault(c sandbox.Call) sandbox.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch c.Op {
	case sandbox.OpCharge:
		f.requests = append(f.requests, c.Request)
		if len(f.script) > 0 {
			step := f.script[0]
			f.script = f.script[1:]
			return step
		}
	case sandbox.OpFind:
		f.finds++
	case sandbox.OpGet:
		f.gets++
	}
	return sandbox.Fault{}
}

// Changed ignores the sandbox's news: the tests read its charge log.
func (f *Faults) Changed(sandbox.Charge) {}

// Requests returns every Charge request received, replays included.
func (f *Faults) Requests() []payment.ChargeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]payment.ChargeRequest(nil), f.requests...)
}

// Finds counts FindCharge calls.
func (f *Faults) Finds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finds
}

// Gets counts GetCharge calls.
func (f *Faults) Gets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

// Succeed is a charge that succeeds.
func Succeed() sandbox.Fault { return sandbox.Fault{Status: payment.Succeeded} }

// Decline is a charge declined with code.
func Decline(code string) sandbox.Fault {
	return sandbox.Fault{Status: payment.Declined, DeclineCode: code}
}

// RequireAction is a charge the bank wants the customer present for.
func RequireAction() sandbox.Fault { return sandbox.Fault{Status: payment.RequiresAction} }

// Pending is a charge the provider has not decided yet (processing); the
// test decides it later with Env.Decide.
func Pending() sandbox.Fault { return sandbox.Fault{Status: payment.Processing} }

// LoseResponse is a charge that succeeds but whose answer never arrives.
func LoseResponse() sandbox.Fault { return sandbox.Fault{Status: payment.Succeeded, Lose: true} }

// FailBeforeCharge is a call that fails before the provider charged, in a
// way the caller cannot tell from a lost answer (a 503, a timeout before the
// request reached the provider): an error wrapping payment.ErrUnknownOutcome
// with no charge made.
func FailBeforeCharge() sandbox.Fault {
	return sandbox.Fault{Refuse: fmt.Errorf("%w: 503 Service Unavailable", payment.ErrUnknownOutcome)}
}

// Refuse is a request the provider refuses outright, charging nothing (an
// invalid request, a payment method detached): a plain error.
func Refuse() sandbox.Fault {
	return sandbox.Fault{Refuse: errors.New("400 invalid_request_error: the PaymentMethod was detached")}
}
