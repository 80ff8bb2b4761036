package fs_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/fs"
)

// idStore records the ids of the chunks Put.
type idStore struct {
	fs.Chunks
	mu  sync.Mutex
	ids map[chunkstore.ID]int
}

func (s *idStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	s.mu.Lock()
	if s.ids == nil {
		s.ids = map[chunkstore.ID]int{}
	}
	s.ids[id]++
	s.mu.Unlock()
	return s.Chunks.Put(ctx, id, data)
}

func (s *idStore) puts(blocks [][]byte) (n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range blocks {
		n += s.ids[chunkstore.Sum(b)]
	}
	return n
}

// mountRoot mounts a new fs.Root over w with opts and returns it with the
// mount's directory.
func mountRoot(t *testing.T, w *world, opts fs.Options) (*fs.Root, string) {
	t.Helper()
	dir := t.TempDir()
	root := fs.New(w.meta, w.store, opts)
	server, err := fs.Mount(dir, root, fs.MountOptions{})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return root, dir
}

// writeBlocksAtRandom writes whole blocks to f in an order no sequential
// writer takes (last first), so they stay dirty, and returns them by index.
func writeBlocksAtRandom(t *testing.T, f *os.File, seed uint64, n int) [][]byte {
	t.Helper()
	blocks := make([][]byte, n)
	for i := n - 1; i >= 0; i-- {
		blocks[i] = randBytes(seed+uint64(i), testBlockSize)
		if _, err := f.WriteAt(blocks[i], int64(i)*testBlockSize); err != nil {
			t.Fatalf("write block %d: %v", i, err)
		}
	}
	return blocks
}

// TestDirtyBoundIsMountWide: a random writer's blocks stay in memory until
// close, each uploaded once, while the mount holds less than DirtyBytes;
// the bound counts every open file, and the writer that passes it uploads
// its own blocks, not the others'.
func TestDirtyBoundIsMountWide(t *testing.T) {
	w := newWorld()
	store := &idStore{Chunks: w.store}
	w.store = store
	root, dir := mountRoot(t, w, fs.Options{DirtyBytes: 8 * testBlockSize, InlineBytes: -1})

	a, err := os.Create(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	aBlocks := writeBlocksAtRandom(t, a, 100, 6)
	// Rewrite them all: still in memory, nothing uploaded.
	aBlocks = writeBlocksAtRandom(t, a, 200, 6)
	if n := store.puts(aBlocks); n != 0 {
		t.Errorf("file a, 6 blocks under a bound of 8: got %d uploads before close, want 0", n)
	}
	if got, want := fs.DirtyBytesHeld(root), int64(6*testBlockSize); got != want {
		t.Errorf("dirty bytes held: got %d, want %d", got, want)
	}

	// A second file passes the bound with its third block: its blocks go
	// out, a's stay.
	b, err := os.Create(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	bBlocks := writeBlocksAtRandom(t, b, 300, 4)
	if n := store.puts(bBlocks); n == 0 {
		t.Errorf("file b past the mount's bound: got no uploads before close, want some")
	}
	if n := store.puts(aBlocks); n != 0 {
		t.Errorf("file a, idle while b passes the bound: got %d uploads, want 0", n)
	}
	if held := fs.DirtyBytesHeld(root); held > 8*testBlockSize+testBlockSize {
		t.Errorf("dirty bytes held after b's writes: got %d, want at most the bound and one block", held)
	}

	for _, f := range []*os.File{a, b} {
		if err := f.Close(); err != nil {
			t.Fatalf("close %s: %v", f.Name(), err)
		}
	}
	if n := store.puts(aBlocks); n != len(aBlocks) {
		t.Errorf("file a: got %d uploads in all, want %d (each block once)", n, len(aBlocks))
	}
	if held := fs.DirtyBytesHeld(root); held != 0 {
		t.Errorf("dirty bytes held after close: got %d, want 0", held)
	}
	wantFile(t, filepath.Join(dir, "a"), joinBlocks(aBlocks))
	wantFile(t, filepath.Join(dir, "b"), joinBlocks(bBlocks))
}

func joinBlocks(blocks [][]byte) []byte {
	var out []byte
	for _, b := range blocks {
		out = append(out, b...)
	}
	return out
}

// TestDirtyCountAfterFailedUpload: blocks left dirty by a file whose
// upload failed (so its close fails) leave the mount's count once the
// file is released, rather than holding down every later writer.
func TestDirtyCountAfterFailedUpload(t *testing.T) {
	w := newWorld()
	w.store = fullStore{w.store}
	root, dir := mountRoot(t, w, fs.Options{InlineBytes: -1})
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	writeBlocksAtRandom(t, f, 400, 4) // blocks 0-3 dirty
	// A sequential writer's full block is uploaded at once, and fails.
	for i := 4; i < 6; i++ {
		f.WriteAt(randBytes(500, testBlockSize), int64(i)*testBlockSize)
	}
	if err := f.Close(); err == nil {
		t.Fatal("close after a failed upload: got success, want an error")
	}
	for deadline := time.Now().Add(10 * time.Second); fs.DirtyBytesHeld(root) != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("dirty bytes held after the failed file's release: got %d, want 0", fs.DirtyBytesHeld(root))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
