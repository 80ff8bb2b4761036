package cluster

import (
	"context"
	"slices"
	"sync"
)

// readsAtOnce is how many chunk reads, and how many shard reads, a node
// serves at once; more wait in its readGate.
const readsAtOnce = 8

// nodeBufferBytes bounds the chunk buffers a node keeps for reuse
// (Node.bufs): room for the chunk and shard reads it serves at once, at
// the default block size, and as many chunks pushed to it.
const nodeBufferBytes = 3 * readsAtOnce * DefaultBlockSize

// readGate bounds how many chunk or shard reads a node serves at once and,
// while reads queue, admits those a user waits on (REQUEST with casync's
// HIGH_PRIORITY flag) before background ones (read-ahead, repair, scrub),
// each class in arrival order. A big background transfer therefore cannot
// hold up a read that a program is blocked on for longer than one read
// already running.
type readGate struct {
	mu   sync.Mutex
	free int
	high []chan struct{} // waiting reads a user waits on
	low  []chan struct{} // waiting background reads
}

// newReadGate returns a gate admitting n reads at once.
func newReadGate(n int) *readGate { return &readGate{free: n} }

// acquire waits for a slot, or for ctx to end (then it returns ctx's
// error and holds nothing). Background reads wait behind every queued read
// a user waits on.
func (g *readGate) acquire(ctx context.Context, background bool) error {
	g.mu.Lock()
	if g.free > 0 && len(g.high) == 0 && (!background || len(g.low) == 0) {
		g.free--
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	queue := &g.high
	if background {
		queue = &g.low
	}
	*queue = append(*queue, ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		i := slices.Index(*queue, ch)
		if i >= 0 {
			*queue = slices.Delete(*queue, i, i+1)
		}
		g.mu.Unlock()
		if i < 0 { // granted meanwhile: pass the slot on
			g.release()
		}
		return ctx.Err()
	}
}

// release gives a slot back: to the first waiting user read, else to the
// first waiting background read, else to the pool.
func (g *readGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case len(g.high) > 0:
		close(g.high[0])
		g.high = g.high[1:]
	case len(g.low) > 0:
		close(g.low[0])
		g.low = g.low[1:]
	default:
		g.free++
	}
}
