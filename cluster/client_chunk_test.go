package cluster

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"shoal/chunkstore"
)

// idleChunkStreams returns the client's idle chunk streams.
func idleChunkStreams(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.chunks)
}

// TestClientReusesChunkStreams checks that one transfer after another runs
// on one chunk stream, and that a stream whose transfer failed is not
// reused.
func TestClientReusesChunkStreams(t *testing.T) {
	c := dialTestNode(t, startTestNode(t, t.TempDir()))
	ctx := context.Background()
	data := []byte("reused stream")
	id := chunkstore.Sum(data)
	for i := range 3 {
		if err := c.Put(ctx, id, data); err != nil { // stored, then present
			t.Fatalf("put %d: %v", i, err)
		}
		if got, err := c.Get(ctx, id); err != nil || string(got) != string(data) {
			t.Fatalf("get %d: got %q, %v, want %q", i, got, err, data)
		}
		if _, err := c.Get(ctx, chunkstore.Sum([]byte("absent"))); !errors.Is(err, chunkstore.ErrNotFound) {
			t.Fatalf("get absent %d: got %v, want ErrNotFound", i, err)
		}
		if has, err := c.Has(ctx, id); err != nil || !has {
			t.Fatalf("has %d: got %v, %v, want true", i, has, err)
		}
		if got := idleChunkStreams(c); got != 1 {
			t.Fatalf("after round %d: got %d idle chunk streams, want 1", i, got)
		}
	}
	// A chunk that does not match its id is aborted by the node: that
	// stream is closed, not kept.
	if err := c.Put(ctx, chunkstore.Sum([]byte("other")), data); !errors.Is(err, syscall.EBADMSG) {
		t.Fatalf("put with a wrong id: got %v, want EBADMSG", err)
	}
	if got := idleChunkStreams(c); got != 0 {
		t.Fatalf("after an aborted put: got %d idle chunk streams, want 0", got)
	}
	if got, err := c.Get(ctx, id); err != nil || string(got) != string(data) {
		t.Fatalf("get after the abort: got %q, %v, want %q", got, err, data)
	}
	if got := idleChunkStreams(c); got != 1 {
		t.Fatalf("after a get on a new stream: got %d idle chunk streams, want 1", got)
	}
}

// TestClientAcknowledgesLowestWaiting checks the Acked a client sends: the
// lowest sequence number still awaiting an answer, its own included.
func TestClientAcknowledgesLowestWaiting(t *testing.T) {
	var c Client
	check := func(wantSeq, wantAcked uint64) uint64 {
		t.Helper()
		seq, acked := c.number()
		if seq != wantSeq || acked != wantAcked {
			t.Fatalf("number() = %d, %d; want %d, %d", seq, acked, wantSeq, wantAcked)
		}
		return seq
	}
	one := check(1, 1)
	two := check(2, 1)
	c.answered(one)
	check(3, 2)
	c.answered(two)
	c.answered(3)
	check(4, 4)
}
