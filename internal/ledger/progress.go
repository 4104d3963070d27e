package ledger

import "context"

type progressKey struct{}

// WithProgress returns ctx carrying fn, which long operations such as
// Store.Verify call with the steps done and the steps in all, so that a
// command can show how far they came without the store knowing of
// terminals.
func WithProgress(ctx context.Context, fn func(done, total int)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress tells ctx's progress function, if any, that done of total
// steps are done.
func ReportProgress(ctx context.Context, done, total int) {
	if fn, ok := ctx.Value(progressKey{}).(func(done, total int)); ok {
		fn(done, total)
	}
}
