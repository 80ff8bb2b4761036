package fs

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"shoal/chunkstore"
	"shoal/cluster"
)

// TestReadAheadDepth checks that a sequential reader gets the next
// Options.ReadAhead blocks fetched, and no more.
func TestReadAheadDepth(t *testing.T) {
	const bs, nblocks, ra = 4096, 12, 5
	mem := chunkstore.NewMemory()
	l := &cluster.Layout{BlockSize: bs, Size: nblocks * bs}
	for i := range nblocks {
		data := make([]byte, bs)
		data[0] = byte(i)
		id := chunkstore.Sum(data)
		if err := mem.Put(context.Background(), id, data); err != nil {
			t.Fatal(err)
		}
		l.Blocks = append(l.Blocks, cluster.Block{Index: uint64(i), ID: cluster.ChunkID(id), Len: bs})
	}
	r := New(nil, mem, Options{ReadAhead: ra, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f := r.openFile(1, l, 0)
	buf := make([]byte, bs)
	for i := range 2 { // the second read continues the first: sequential
		got, held, err := f.read(context.Background(), buf, uint64(i*bs))
		if err != nil || len(got) != bs || got[0] != byte(i) {
			t.Fatalf("read block %d: got %d bytes (first %v), %v; want %d bytes (first %d)", i, len(got), got[:min(len(got), 1)], err, bs, i)
		}
		if held != nil {
			r.cache.release(held)
		}
	}
	// read started the fetches before returning: they are in flight or done.
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	for i, b := range l.Blocks {
		id := chunkstore.ID(b.ID)
		_, cached := r.cache.entries[id]
		_, fetching := r.cache.inflight[id]
		want := i <= 1+ra
		if got := cached || fetching; got != want {
			t.Errorf("block %d: fetched or fetching %v, want %v", i, got, want)
		}
	}
}

// countingChunks counts the Gets that reach a chunk store.
type countingChunks struct {
	Chunks
	gets atomic.Int64
}

func (c *countingChunks) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	c.gets.Add(1)
	return c.Chunks.Get(ctx, id)
}

// TestReadAheadFitsTheCache reads a file sequentially through a cache of
// four blocks, with a read-ahead of eight: each block must be fetched
// once. Before read-ahead was bounded by the cache, blocks fetched ahead
// were evicted by the next ones before the reader got to them and were
// fetched again (a 1 GiB read through a 16 MiB cache fetched 3 GiB).
func TestReadAheadFitsTheCache(t *testing.T) {
	const bs, nblocks = 4096, 64
	mem := chunkstore.NewMemory()
	l := &cluster.Layout{BlockSize: bs, Size: nblocks * bs}
	for i := range nblocks {
		data := make([]byte, bs)
		data[0], data[1] = byte(i), byte(i>>8)
		id := chunkstore.Sum(data)
		if err := mem.Put(context.Background(), id, data); err != nil {
			t.Fatal(err)
		}
		l.Blocks = append(l.Blocks, cluster.Block{Index: uint64(i), ID: cluster.ChunkID(id), Len: bs})
	}
	store := &countingChunks{Chunks: mem}
	r := New(nil, store, Options{ReadAhead: 8, CacheBytes: 4 * bs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f := r.openFile(1, l, 0)
	if got := f.readAhead(); got != 1 {
		t.Errorf("read-ahead with a 4-block cache: %d blocks, want 1", got)
	}
	buf := make([]byte, bs)
	for i := range nblocks {
		got, held, err := f.read(context.Background(), buf, uint64(i*bs))
		if err != nil || len(got) != bs || got[0] != byte(i) || got[1] != byte(i>>8) {
			t.Fatalf("read block %d: got %d bytes, %v; want block %d", i, len(got), err, i)
		}
		if held != nil {
			r.cache.release(held)
		}
	}
	if n := store.gets.Load(); n != nblocks {
		t.Errorf("reading %d blocks sequentially fetched %d chunks, want %d (each once)", nblocks, n, nblocks)
	}
}
