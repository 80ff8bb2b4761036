package fs

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"shoal/chunkstore"
)

// pooledStore serves chunks from memory in buffers taken from bufs, as
// cluster.Client does with ClientConfig.Buffers, and can hold its Gets
// until release is closed.
type pooledStore struct {
	chunks  map[chunkstore.ID][]byte
	bufs    *chunkstore.Buffers
	release chan struct{}
}

func (s *pooledStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	s.chunks[id] = bytes.Clone(data)
	return nil
}

func (s *pooledStore) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	if s.release != nil {
		<-s.release
	}
	b := s.bufs.Get(len(s.chunks[id]))
	copy(b, s.chunks[id])
	return b, nil
}

// testChunk returns a 1 MiB chunk (the smallest size a free list keeps)
// filled with fill.
func testChunk(fill byte) ([]byte, chunkstore.ID) {
	data := bytes.Repeat([]byte{fill}, 1<<20)
	return data, chunkstore.Sum(data)
}

// TestCacheRecyclesChunks checks that an evicted chunk's memory is reused
// by the next fetch, but only once no reader holds it: a held chunk keeps
// its bytes after eviction, until released.
func TestCacheRecyclesChunks(t *testing.T) {
	bufs := chunkstore.NewBuffers(8 << 20)
	store := &pooledStore{chunks: map[chunkstore.ID][]byte{}, bufs: bufs}
	var ids []chunkstore.ID
	for i := range 4 {
		data, id := testChunk(byte('a' + i))
		store.Put(context.Background(), id, data)
		ids = append(ids, id)
	}
	bg := func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	c := newChunkCache(store, bufs, 2<<20, slog.New(slog.NewTextHandler(io.Discard, nil)), bg)
	ctx := context.Background()

	held, err := c.get(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	e1, err := c.get(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	mem1 := &e1.data[0]
	c.release(e1)
	// Two more chunks evict both: the released one's memory goes back to
	// the free list at once, the held one's only once it is released.
	for _, id := range ids[2:] {
		e, err := c.get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		c.release(e)
	}
	if c.cached(ids[0]) || c.cached(ids[1]) {
		t.Fatalf("chunks 0 and 1 still cached in a two-chunk cache after two more")
	}
	if want, _ := testChunk('a'); !bytes.Equal(held.data, want) {
		t.Fatalf("held chunk changed after eviction")
	}
	if b := bufs.Get(1 << 20); &b[0] != mem1 {
		t.Errorf("an evicted chunk nobody held did not give its memory back")
	}
	mem0 := &held.data[0]
	c.release(held)
	if held.data != nil {
		t.Errorf("released evicted chunk still has its data")
	}
	if b := bufs.Get(1 << 20); &b[0] != mem0 {
		t.Errorf("the last release of an evicted chunk did not give its memory back")
	}
}

// TestCacheWaiterGivesUp checks that a reader that stops waiting for a
// fetch leaves the chunk with the right number of holders: once the cache
// lets it go, its memory is free again.
func TestCacheWaiterGivesUp(t *testing.T) {
	bufs := chunkstore.NewBuffers(8 << 20)
	store := &pooledStore{chunks: map[chunkstore.ID][]byte{}, bufs: bufs, release: make(chan struct{})}
	data, id := testChunk('x')
	store.Put(context.Background(), id, data)
	bg := func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	c := newChunkCache(store, bufs, 1<<20, slog.New(slog.NewTextHandler(io.Discard, nil)), bg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.get(ctx, id); err == nil {
		t.Fatal("get of a stalled fetch returned before its context ended")
	}
	done := make(chan *cacheEntry)
	go func() {
		e, err := c.get(context.Background(), id)
		if err != nil {
			t.Error(err)
		}
		done <- e
	}()
	// Wait until the second reader has joined the fetch, then let it end.
	for {
		c.mu.Lock()
		f := c.inflight[id]
		joined := f != nil && f.waiters == 1
		c.mu.Unlock()
		if joined {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(store.release)
	e := <-done
	if !bytes.Equal(e.data, data) {
		t.Fatal("wrong chunk bytes")
	}
	c.mu.Lock()
	refs := e.refs
	c.mu.Unlock()
	if refs != 2 {
		t.Fatalf("holders after the fetch: %d, want 2 (the cache and the reader)", refs)
	}
	c.release(e)
	c.add(chunkstore.Sum([]byte("small")), []byte("small")) // evicts it
	if e.data != nil {
		t.Errorf("evicted, released chunk kept its memory")
	}
}
