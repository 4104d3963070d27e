package topup

import (
	"context"
	"time"
)

// AttemptClaimed is the worker's attempt of a top-up it claimed, the claim
// ending at held.
func (e *Engine) AttemptClaimed(ctx context.Context, id string, held time.Time) (Settled, error) {
	return e.attempt(ctx, id, held)
}

// AttemptBegun is the worker's attempt of a top-up it claimed and began
// together, the claim ending at held.
func (e *Engine) AttemptBegun(ctx context.Context, b Begun, held time.Time) (Settled, error) {
	return e.attemptBegun(ctx, b, held)
}
