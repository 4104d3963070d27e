package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind is what one step of the schedule does.
type Kind uint8

// Step kinds. Every step is one call of a step function of the real system
// (one group commit, one worker pass, one webhook…) or one move of the world
// around it (the clock, the customer, a crash).
const (
	KindUsage       Kind = iota // a usage event submitted to the committer
	KindBatch                   // a batch of usage events, several accounts
	KindRetry                   // the metering client re-sends a request (lost, answered, or changed)
	KindCommit                  // the committer commits what is queued: one store.Post
	KindCredit                  // an operator credit
	KindSettings                // a save of Automatic Top-Up settings
	KindCardAdd                 // a card attached
	KindCardRemove              // a card removed (also the one in use)
	KindCardDefault             // a card made the default
	KindManual                  // a manual top-up: CreateManual, then Attempt
	KindRunOnce                 // one engine pass: Engine.RunOnce
	KindSweep                   // Engine.Sweep
	KindWebhook                 // one provider webhook delivered (any queued one, maybe again)
	KindCustomer                // the customer answers (or not) a 3-D Secure challenge
	KindClock                   // the clock moves
	KindCrash                   // the process dies between steps and starts again
	KindQuiet                   // a quiet period: faults stop until every top-up is decided
	KindSetup                   // the world of the seed, made before the schedule (never generated)
	KindHold                    // a hold created (CreateHold, as POST …/holds), or its key sent again
	KindCapture                 // a hold's capture submitted to the committer (a usage posting with HoldID)
	KindRelease                 // a hold released (ReleaseHold)
	KindExpiry                  // one pass of the expiry worker (expiry.Worker.RunOnce), its sweeps through the committer
	KindVoid                    // the operator's void of a grant submitted to the committer
	KindRefund                  // a refund of a succeeded top-up: CreateRefund, then the worker's Attempt (refunds.go)
	KindRefundPass              // one pass of the refund worker (refund.Worker.RunOnce)
	KindDispute                 // a dispute of a credited top-up's charge opened, or closed won or lost, at the provider
	numKinds
)

var kindNames = [numKinds]string{"usage", "batch", "retry", "commit", "credit", "settings", "card+", "card-", "default",
	"manual", "run", "sweep", "webhook", "3ds", "clock", "crash", "quiet", "setup", "hold", "capture", "release", "expiry", "void", "refund", "refunds", "dispute"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// weights of the kinds in a generated schedule.
var weights = [numKinds]int{
	KindUsage: 180, KindBatch: 35, KindRetry: 40, KindCommit: 45, KindCredit: 15, KindSettings: 50, KindCardAdd: 18,
	KindCardRemove: 16, KindCardDefault: 8, KindManual: 25, KindRunOnce: 170, KindSweep: 25, KindWebhook: 110,
	KindCustomer: 45, KindClock: 110, KindCrash: 18, KindQuiet: 3,
	KindHold: 40, KindCapture: 30, KindRelease: 12, KindExpiry: 25, KindVoid: 14,
	KindRefund: 14, KindRefundPass: 10, KindDispute: 9,
}

// Step is one step of a schedule. Its parameters are fixed when the
// schedule is generated; the choices it makes while it runs (which card,
// which fault, where to crash) come from its own Seed, so that a step
// removed from a schedule changes nothing inside the others.
type Step struct {
	N    int   // position in the generated schedule
	Kind Kind  // what it does
	Acct int   // the account it acts on (index into the world's accounts)
	Arg  int64 // kind-specific: an amount in micros, a clock move in nanoseconds, a batch size
	Seed uint64
}

// String describes the step as the schedule prints it.
func (s Step) String() string {
	b := fmt.Sprintf("#%-4d %-8s", s.N, s.Kind)
	switch s.Kind {
	case KindUsage, KindCredit, KindHold:
		b += " " + micros(s.Arg)
	case KindBatch:
		b += fmt.Sprintf(" %d events", s.Arg)
	case KindClock:
		if s.Arg < 0 {
			b += " to the next month"
		} else {
			b += " +" + time.Duration(s.Arg).String()
		}
	}
	return strings.TrimRight(b, " ")
}

// micros formats an amount of micros of a unit as a decimal.
func micros(a int64) string {
	sign := ""
	if a < 0 {
		sign, a = "-", -a
	}
	return fmt.Sprintf("%s%d.%06d", sign, a/1_000_000, a%1_000_000)
}

// Generate returns the schedule of steps for seed: the same seed always
// gives the same schedule.
func Generate(seed uint64, steps int) []Step {
	r := rand.New(rand.NewPCG(seed, 0x5eed5eed5eed5eed))
	total := 0
	for _, w := range weights {
		total += w
	}
	out := make([]Step, steps)
	for i := range out {
		n := r.IntN(total)
		var k Kind
		for k = 0; k < numKinds; k++ {
			if n < weights[k] {
				break
			}
			n -= weights[k]
		}
		st := Step{N: i, Kind: k, Acct: r.IntN(1 << 16), Seed: r.Uint64()}
		switch k {
		case KindUsage:
			st.Arg = usageAmount(r)
		case KindCredit:
			st.Arg = int64(1+r.IntN(15)) * 1_000_000
		case KindHold:
			st.Arg = holdAmount(r)
		case KindBatch:
			st.Arg = int64(2 + r.IntN(11))
		case KindClock:
			st.Arg = int64(clockMove(r))
		}
		out[i] = st
	}
	return out
}

// usageAmount is a usage event's size in micros of a unit: mostly tiny
// (metered API calls), sometimes large.
func usageAmount(r *rand.Rand) int64 {
	switch n := r.IntN(100); {
	case n < 35:
		return 1 + r.Int64N(50_000)
	case n < 80:
		return 50_000 + r.Int64N(5_000_000)
	default:
		return 5_000_000 + r.Int64N(35_000_000)
	}
}

// holdAmount is a hold's size in micros of a unit: what a long request
// may cost, from cents to more than most accounts have (402).
func holdAmount(r *rand.Rand) int64 {
	switch n := r.IntN(100); {
	case n < 40:
		return 10_000 + r.Int64N(2_000_000)
	case n < 85:
		return 2_000_000 + r.Int64N(20_000_000)
	default:
		return 20_000_000 + r.Int64N(80_000_000)
	}
}

// clockMove is how far a clock step moves time: mostly seconds and minutes
// (back-offs, retries, leases), sometimes hours, sometimes past the 24 hours
// after which the provider forgets keys and 3-D Secure expires. Moves to a
// month boundary are decided when the step runs (they depend on the time).
func clockMove(r *rand.Rand) time.Duration {
	switch n := r.IntN(100); {
	case n < 45:
		return time.Duration(1+r.IntN(30)) * time.Second
	case n < 72:
		return time.Duration(30+r.IntN(570)) * time.Second
	case n < 86:
		return time.Duration(10+r.IntN(170)) * time.Minute
	case n < 94:
		return 24*time.Hour + time.Duration(r.IntN(6*3600))*time.Second
	default:
		return -1 // to the next month boundary, give or take a minute
	}
}

// Only keeps the steps whose N is listed.
func Only(steps []Step, ns []int) []Step {
	keep := map[int]bool{}
	for _, n := range ns {
		keep[n] = true
	}
	var out []Step
	for _, s := range steps {
		if keep[s.N] {
			out = append(out, s)
		}
	}
	return out
}
