package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestReadGatePrefersUserReads fills a one-slot gate, queues a background
// read and then a user read, and checks that the user read is admitted
// first, then the background one, and that a waiter giving up holds
// nothing.
func TestReadGatePrefersUserReads(t *testing.T) {
	g := newReadGate(1)
	ctx := context.Background()
	if err := g.acquire(ctx, true); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	queued := func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.high) + len(g.low)
	}
	waitQueued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); queued() != n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d reads queued, want %d", queued(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	go func() {
		if g.acquire(ctx, true) == nil {
			order <- "background"
			g.release()
		}
	}()
	waitQueued(1)
	go func() {
		if g.acquire(ctx, false) == nil {
			order <- "user"
			g.release()
		}
	}()
	waitQueued(2)
	// A third waiter gives up: it must not take a slot with it.
	gone, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- g.acquire(gone, false) }()
	waitQueued(3)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v, want context.Canceled", err)
	}
	g.release()
	if first, second := <-order, <-order; first != "user" || second != "background" {
		t.Fatalf("admitted %s then %s, want user then background", first, second)
	}
	if err := g.acquire(ctx, true); err != nil {
		t.Fatal(err)
	}
	if g.free != 0 {
		t.Fatalf("free slots %d after taking the only one, want 0", g.free)
	}
}
