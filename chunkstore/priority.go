package chunkstore

import "context"

// backgroundKey marks a context whose reads no user waits on.
type backgroundKey struct{}

// Background returns a copy of ctx that marks the reads made with it as
// ones no user is waiting on: read-ahead, repair, scrub. A store that
// schedules reads serves them after those a user waits on (in shoal's
// wire, a chunk REQUEST without casync's HIGH_PRIORITY flag).
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// IsBackground reports whether ctx was marked by Background.
func IsBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}
