package cluster

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
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

// TestClientRetriesPushTheNodeCannotPlaceYet pushes a chunk while the
// node leads but has not caught up with earlier terms (the Raft barrier
// after an election): the node takes the bytes but cannot record their
// placement, and aborts with EAGAIN. The client must retry rather than
// fail the write; once the node serves, the push goes through.
func TestClientRetriesPushTheNodeCannotPlaceYet(t *testing.T) {
	n := startTestNode(t, t.TempDir())
	c := dialTestNode(t, n)
	ctx := context.Background()
	data := []byte("pushed during an election")
	id := chunkstore.Sum(data)
	// A node has a leader (WaitLeader) before it passes its barrier and
	// serves; take readiness away only once it has been given.
	waitUntil(t, "the node serving as leader", n.ready.Load)
	n.ready.Store(false)
	done := make(chan error, 1)
	go func() { done <- c.Put(ctx, id, data) }()
	select {
	case err := <-done:
		n.ready.Store(true)
		t.Fatalf("put to a node not serving yet returned %v at once; want it retried", err)
	case <-time.After(500 * time.Millisecond):
	}
	n.ready.Store(true)
	if err := <-done; err != nil {
		t.Fatalf("put once the node serves: %v", err)
	}
	if _, ok := placedOn(n, id); !ok {
		t.Fatal("the chunk is not placed after the retried push")
	}
	if got, err := c.Get(ctx, id); err != nil || string(got) != string(data) {
		t.Fatalf("get: %q, %v", got, err)
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

// TestNodeServesUserReadsFirst fills a node's chunk read slots, then asks
// for a chunk in the background (no HIGH_PRIORITY) and, after it, as a
// user read: the user read must be admitted first, which shows that the
// flag crosses the wire and the node's gate honours it.
func TestNodeServesUserReadsFirst(t *testing.T) {
	n := startTestNode(t, t.TempDir())
	bgClient, userClient := dialTestNode(t, n), dialTestNode(t, n)
	ctx := context.Background()
	data := []byte("wanted by two readers")
	id := chunkstore.Sum(data)
	if err := userClient.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	g := n.chunkGate
	for range readsAtOnce {
		if err := g.acquire(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	waitQueued := func(high, low int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			g.mu.Lock()
			h, l := len(g.high), len(g.low)
			g.mu.Unlock()
			if h == high && l == low {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queued: %d user and %d background reads, want %d and %d", h, l, high, low)
			}
			time.Sleep(time.Millisecond)
		}
	}
	answered := make(chan string, 2)
	get := func(c *Client, ctx context.Context, who string) {
		if got, err := c.Get(ctx, id); err != nil || string(got) != string(data) {
			t.Errorf("%s get: %q, %v", who, got, err)
		}
		answered <- who
	}
	go get(bgClient, chunkstore.Background(ctx), "background")
	waitQueued(0, 1)
	go get(userClient, ctx, "user")
	waitQueued(1, 1)
	// The test queues a user read of its own behind the client's, to
	// take the slot back when that read is done.
	held := make(chan struct{})
	go func() {
		if g.acquire(ctx, false) == nil {
			close(held)
		}
	}()
	waitQueued(2, 1)
	g.release()
	if first := <-answered; first != "user" {
		t.Fatalf("first answered: %s, want the user read", first)
	}
	<-held
	select {
	case who := <-answered:
		t.Fatalf("%s read answered while every slot is taken", who)
	default:
	}
	waitQueued(0, 1)
	for range readsAtOnce {
		g.release()
	}
	if second := <-answered; second != "background" {
		t.Fatalf("second answered: %s", second)
	}
}

// TestClientRetriesChunkDamagedOnTheWay serves a chunk whose first CHUNK
// arrives with a flipped data bit under a CRC-32C of the sent bytes: Get
// must not return the damaged bytes (it is not hashed again, so the
// checksum is all that catches it) but ask again and return the intact
// second copy.
func TestClientRetriesChunkDamagedOnTheWay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	data := []byte("damaged on the way, then intact")
	id := chunkstore.Sum(data)
	var served, unchecked atomic.Int32
	serve := func(st *wire.Stream) {
		defer st.Close()
		if _, err := wire.ReadCasync(st); err != nil { // HELLO
			return
		}
		wire.WriteCasync(st, &wire.Hello{Features: wire.CasyncReadableStore})
		for {
			m, err := wire.ReadCasync(st)
			if err != nil {
				return
			}
			req, ok := m.(*wire.Request)
			if !ok {
				return
			}
			if req.Flags&wire.CasyncRequestChecksum == 0 {
				unchecked.Add(1)
			}
			var msg bytes.Buffer
			wire.WriteCasync(&msg, &wire.Chunk{Flags: wire.CasyncChunkCRC32C, ID: id, Data: data})
			b := msg.Bytes()
			if served.Add(1) == 1 {
				b[len(b)-1] ^= 0x20
			}
			if _, err := st.Write(b); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s := wire.NewSession(conn, wire.SessionConfig{Services: []string{wire.ServiceChunks}})
			go func() {
				defer s.Close()
				for {
					st, err := s.Accept()
					if err != nil {
						return
					}
					go serve(st)
				}
			}()
		}
	}()
	c, err := Dial(context.Background(), ln.Addr().String(), ClientConfig{Pin: true, RetryFor: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got, err := c.Get(context.Background(), id)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: got %q, %v; want %q", got, err, data)
	}
	if n := served.Load(); n != 2 {
		t.Errorf("the chunk was served %d times, want 2 (damaged, then intact)", n)
	}
	if n := unchecked.Load(); n != 0 {
		t.Errorf("%d requests did not ask for a checksum", n)
	}
}

// TestClientGetsChunksIntoBuffers reads chunks of several sizes from a
// node, large ones going straight into memory from ClientConfig.Buffers
// (wire.ReadCasyncReply): each must come back intact, in a buffer of its
// own size's class whatever the size of the chunk read before it.
func TestClientGetsChunksIntoBuffers(t *testing.T) {
	n := startTestNode(t, t.TempDir())
	c, err := Dial(context.Background(), n.Addr(), ClientConfig{RetryFor: 10 * time.Second, Buffers: chunkstore.NewBuffers(64 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	for i, size := range []int{4 << 20, 4 << 20, 2<<20 + 100, 10 << 10, 4 << 20, 5 << 20} {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(j*7 + i + j>>10)
		}
		id := chunkstore.Sum(data)
		if err := c.Put(ctx, id, data); err != nil {
			t.Fatalf("put %d (%d bytes): %v", i, size, err)
		}
		got, err := c.Get(ctx, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %d (%d bytes): got %d bytes, %v; want the bytes put", i, size, len(got), err)
		}
		want := size
		if size >= 1<<20 {
			want = (size + 1<<20 - 1) &^ (1<<20 - 1)
		}
		if cap(got) != want {
			t.Errorf("get %d (%d bytes): a %d-byte buffer, want %d", i, size, cap(got), want)
		}
	}
}
