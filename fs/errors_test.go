package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"

	"shoal/chunkstore"
)

func TestToErrno(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"nil", nil, 0},
		{"errno", fmt.Errorf("lookup x: %w", syscall.ENOENT), syscall.ENOENT},
		{"quota", fmt.Errorf("commit: %w", syscall.EDQUOT), syscall.EDQUOT},
		{"store full", fmt.Errorf("upload: %w", chunkstore.ErrNoSpace), syscall.ENOSPC},
		{"corrupt", fmt.Errorf("read: %w", chunkstore.ErrCorrupt), syscall.EIO},
		{"not found", fmt.Errorf("read: %w", chunkstore.ErrNotFound), syscall.EIO},
		{"deadline", fmt.Errorf("do: %w", context.DeadlineExceeded), syscall.EIO},
		{"interrupted", fmt.Errorf("do: %w", context.Canceled), syscall.EINTR},
		{"unknown", errors.New("connection reset"), syscall.EIO},
	}
	for _, tt := range tests {
		if got := toErrno(log, "test", tt.err); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// corruptStore returns wrong bytes for every chunk.
type corruptStore struct{ Chunks }

func (s corruptStore) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	return []byte("not the chunk"), nil
}

// verifyingStore is a store that claims (verifies) or disclaims checking
// what its Get returns.
type verifyingStore struct {
	Chunks
	verifies bool
}

func (s verifyingStore) VerifiesGets() bool { return s.verifies }

// TestCacheTrustsVerifyingStore checks that the cache hashes what a store
// returns unless the store says it checked it: wrong bytes from a store
// that claims to verify are (by that store's contract) not caught again,
// wrong bytes from one that disclaims it are.
func TestCacheTrustsVerifyingStore(t *testing.T) {
	mem := chunkstore.NewMemory()
	data := []byte("chunk contents")
	id := chunkstore.Sum(data)
	if err := mem.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	bg := func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	c := newChunkCache(verifyingStore{corruptStore{mem}, false}, nil, 1<<20, log, bg)
	if _, err := c.get(context.Background(), id); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Errorf("store not verifying: got %v; want ErrCorrupt", err)
	}
	c = newChunkCache(verifyingStore{corruptStore{mem}, true}, nil, 1<<20, log, bg)
	if e, err := c.get(context.Background(), id); err != nil || string(e.data) != "not the chunk" {
		t.Errorf("verifying store: got %v; want its bytes unchecked", err)
	}
}

func TestCacheVerifies(t *testing.T) {
	mem := chunkstore.NewMemory()
	data := []byte("chunk contents")
	id := chunkstore.Sum(data)
	if err := mem.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	bg := func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	c := newChunkCache(corruptStore{mem}, nil, 1<<20, log, bg)
	if _, err := c.get(context.Background(), id); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Errorf("corrupt store: got %v; want ErrCorrupt", err)
	}
	if c.cached(id) {
		t.Errorf("corrupt chunk was cached")
	}

	c = newChunkCache(mem, nil, int64(2*len(data)), log, bg)
	e, err := c.get(context.Background(), id)
	if err != nil || string(e.data) != string(data) {
		t.Fatalf("get: got %v; want %q", err, data)
	}
	c.release(e)
	if !c.cached(id) {
		t.Errorf("chunk not cached after get")
	}
	// Two more chunks push the first out of a two-chunk cache.
	for _, s := range []string{"other chunk #1", "other chunk #2"} {
		c.add(chunkstore.Sum([]byte(s)), []byte(s))
	}
	if c.cached(id) {
		t.Errorf("least recently used chunk still cached past the byte bound")
	}
}
