package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shoal/chunkstore"
	"shoal/cluster"
	"shoal/fs"
)

// testBlockSize is small so that tests cross many block boundaries.
const testBlockSize = 64 << 10

// world is the metadata and chunk store a test mounts; mounting it again
// after an unmount sees the same files.
type world struct {
	local *cluster.Local
	meta  fs.Metadata // local, or a test wrapper of it
	store fs.Chunks
	root  *fs.Root // of the last mount
}

func newWorld() *world {
	store := chunkstore.NewMemory()
	l := cluster.NewLocal(cluster.StateConfig{BlockSize: testBlockSize}, store)
	return &world{local: l, meta: l, store: store}
}

// mount mounts w in a new temporary directory and returns the directory
// and a function that unmounts it (also run at cleanup; calling it twice
// is harmless).
func (w *world) mount(t testing.TB, opts fs.Options) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	var mo fs.MountOptions
	if os.Getenv("SHOAL_FUSE_DEBUG") != "" {
		mo.DebugLog = log.New(os.Stderr, "fuse: ", log.Lmicroseconds)
	}
	root := fs.New(w.meta, w.store, opts)
	w.root = root
	server, err := fs.Mount(dir, root, mo)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	var once sync.Once
	unmount := func() {
		once.Do(func() {
			if err := server.Unmount(); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
				// Never leave a stale mount behind.
				syscall.Unmount(dir, syscall.MNT_DETACH)
			}
			// As shoal mount does once unmounted.
			if err := root.Sync(context.Background()); err != nil {
				t.Errorf("sync after unmount of %s: %v", dir, err)
			}
		})
	}
	t.Cleanup(unmount)
	return dir, unmount
}

// mountNew mounts a fresh world.
func mountNew(t testing.TB) (string, *world) {
	w := newWorld()
	dir, _ := w.mount(t, fs.Options{})
	return dir, w
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func wantFile(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %s: %s", p, diff(got, want))
	}
}

// diff describes where got and want first differ.
func diff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d: got %#x, want %#x", i, got[i], want[i])
		}
	}
	return "equal"
}

func TestRandomWrites(t *testing.T) {
	dir, _ := mountNew(t)
	p := filepath.Join(dir, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const size = 10*testBlockSize + 123
	model := make([]byte, 0, size)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 200 {
		off := r.IntN(size)
		n := r.IntN(3*testBlockSize) + 1
		if off+n > size {
			n = size - off
		}
		data := randBytes(uint64(i), n)
		if _, err := f.WriteAt(data, int64(off)); err != nil {
			t.Fatalf("write %d at %d: %v", n, off, err)
		}
		if end := off + n; end > len(model) {
			model = model[:end]
		}
		copy(model[off:], data)
		if i%50 == 49 { // read back through the still-dirty file
			got := make([]byte, len(model))
			if _, err := f.ReadAt(got, 0); err != nil && err != io.EOF {
				t.Fatalf("read back: %v", err)
			}
			if !bytes.Equal(got, model) {
				t.Fatalf("after %d writes, open file: %s", i+1, diff(got, model))
			}
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantFile(t, p, model)
}

func TestHoles(t *testing.T) {
	dir, _ := mountNew(t)
	p := filepath.Join(dir, "holes")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(1, 1000)
	off := int64(3*testBlockSize + 100)
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, off+int64(len(data)))
	copy(want[off:], data)
	wantFile(t, p, want)
}

func TestSparseLarge(t *testing.T) {
	dir, _ := mountNew(t)
	p := filepath.Join(dir, "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(2, 3*testBlockSize/2)
	const size = 5 << 30
	off := int64(size - len(data))
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Errorf("size: got %d, want %d", st.Size(), int64(size))
	}
	f, err = os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("tail: %s", diff(got, data))
	}
	mid := make([]byte, 1<<20)
	if _, err := f.ReadAt(mid, size/2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mid, make([]byte, len(mid))) {
		t.Errorf("middle of the hole is not zeros")
	}
}

func TestTruncate(t *testing.T) {
	dir, _ := mountNew(t)
	p := filepath.Join(dir, "t")
	data := randBytes(3, 3*testBlockSize+testBlockSize/2)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Down by path, then up: the cut-off bytes must read as zeros.
	cut := testBlockSize + 77
	if err := os.Truncate(p, int64(cut)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, p, data[:cut])
	if err := os.Truncate(p, 4*testBlockSize); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 4*testBlockSize)
	copy(want, data[:cut])
	wantFile(t, p, want)

	// ftruncate of an open file holding unflushed writes.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	more := randBytes(4, 2*testBlockSize)
	if _, err := f.WriteAt(more, testBlockSize); err != nil {
		t.Fatal(err)
	}
	copy(want[testBlockSize:], more)
	if err := f.Truncate(2*testBlockSize + 5); err != nil {
		t.Fatal(err)
	}
	want = want[:2*testBlockSize+5]
	if _, err := f.WriteAt([]byte("x"), 3*testBlockSize); err != nil {
		t.Fatal(err)
	}
	want = append(want, make([]byte, testBlockSize-5)...)
	want = append(want, 'x')
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wantFile(t, p, want)
}

func TestAppend(t *testing.T) {
	dir, _ := mountNew(t)
	p := filepath.Join(dir, "log")
	var want []byte
	for i := range 5 {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			line := randBytes(uint64(10*i+j), testBlockSize/3+i)
			if _, err := f.Write(line); err != nil {
				t.Fatal(err)
			}
			want = append(want, line...)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wantFile(t, p, want)
}

func TestOverwriteMiddle(t *testing.T) {
	dir, _ := mountNew(t)
	p := filepath.Join(dir, "m")
	want := randBytes(5, 5*testBlockSize+10)
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	patch := randBytes(6, testBlockSize+20)
	off := 2*testBlockSize - 10
	if _, err := f.WriteAt(patch, int64(off)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(want[off:], patch)
	wantFile(t, p, want)
}

func TestConcurrentWriters(t *testing.T) {
	dir, _ := mountNew(t)
	var wg sync.WaitGroup
	const n = 8
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			data := randBytes(uint64(100+i), 3*testBlockSize+i*1000)
			f, err := os.Create(filepath.Join(dir, fmt.Sprint("w", i)))
			if err != nil {
				errs[i] = err
				return
			}
			for off := 0; off < len(data); off += 10000 {
				if _, err := f.Write(data[off:min(off+10000, len(data))]); err != nil {
					errs[i] = err
					f.Close()
					return
				}
			}
			errs[i] = f.Close()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		wantFile(t, filepath.Join(dir, fmt.Sprint("w", i)), randBytes(uint64(100+i), 3*testBlockSize+i*1000))
	}
}

func TestUnlinkOpenFile(t *testing.T) {
	dir, w := mountNew(t)
	p := filepath.Join(dir, "u")
	data := randBytes(8, 2*testBlockSize+1)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var before uint64
	w.local.View(func(s *cluster.State) { before, _ = s.Counts() })
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after unlink: got %v, want not exist", err)
	}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read unlinked open file: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("unlinked open file: %s", diff(got, data))
	}
	var during uint64
	w.local.View(func(s *cluster.State) { during, _ = s.Counts() })
	if during != before {
		t.Errorf("inodes while open: got %d, want %d", during, before)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Release comes asynchronously after close.
	var after uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		w.local.View(func(s *cluster.State) { after, _ = s.Counts() })
		if after == before-1 {
			break
		}
	}
	if after != before-1 {
		t.Errorf("inodes after last close: got %d, want %d", after, before-1)
	}
}

func TestRemount(t *testing.T) {
	w := newWorld()
	dir, unmount := w.mount(t, fs.Options{})
	files := map[string][]byte{
		"a":       randBytes(9, 10),
		"b":       randBytes(10, 4*testBlockSize+3),
		"sub/c":   randBytes(11, testBlockSize),
		"sub/d/e": nil,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	unmount()
	dir, _ = w.mount(t, fs.Options{})
	for name, data := range files {
		wantFile(t, filepath.Join(dir, name), data)
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode got %v, want %v", name, st.Mode().Perm(), os.FileMode(0o640))
		}
	}
}

// flipStore returns chunks with one byte changed once armed.
type flipStore struct {
	fs.Chunks
	armed atomic.Bool
}

func (s *flipStore) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	b, err := s.Chunks.Get(ctx, id)
	if err == nil && s.armed.Load() && len(b) > 0 {
		b[len(b)/2] ^= 1
	}
	return b, err
}

func TestCorruptChunk(t *testing.T) {
	w := newWorld()
	fl := &flipStore{Chunks: w.store}
	w.store = fl
	dir, unmount := w.mount(t, fs.Options{})
	p := filepath.Join(dir, "c")
	if err := os.WriteFile(p, randBytes(12, 2*testBlockSize), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount()
	fl.armed.Store(true)
	dir, _ = w.mount(t, fs.Options{}) // a new mount: nothing cached
	got, err := os.ReadFile(filepath.Join(dir, "c"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of corrupt chunk: got %d bytes, err %v; want EIO", len(got), err)
	}
}

// fullStore fails every Put with ENOSPC.
type fullStore struct{ fs.Chunks }

func (fullStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	return fmt.Errorf("put %s: %w", id, chunkstore.ErrNoSpace)
}

// TestNoSpace checks uploads to a full store; InlineBytes is off so that
// the small file below is uploaded rather than committed inline.
func TestNoSpace(t *testing.T) {
	w := newWorld()
	w.store = fullStore{w.store}
	dir, _ := w.mount(t, fs.Options{InlineBytes: -1})

	f, err := os.Create(filepath.Join(dir, "close"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randBytes(13, 100)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := f.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("close: got %v, want ENOSPC", err)
	}

	f, err = os.Create(filepath.Join(dir, "fsync"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(randBytes(14, 3*testBlockSize)); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("fsync: got %v, want ENOSPC", err)
	}
	// Sticky: a later write fails too.
	if _, err := f.Write([]byte("more")); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write after failed upload: got %v, want ENOSPC", err)
	}
}

func TestXattr(t *testing.T) {
	dir, _ := mountNew(t)
	p := filepath.Join(dir, "x")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	val := []byte(strings.Repeat("v", 300))
	if err := syscall.Setxattr(p, "user.k", val, 0); err != nil {
		t.Fatal(err)
	}
	n, err := syscall.Getxattr(p, "user.k", nil)
	if err != nil || n != len(val) {
		t.Fatalf("size query: got %d, %v; want %d", n, err, len(val))
	}
	if _, err := syscall.Getxattr(p, "user.k", make([]byte, 10)); !errors.Is(err, syscall.ERANGE) {
		t.Errorf("small buffer: got %v, want ERANGE", err)
	}
	buf := make([]byte, 400)
	n, err = syscall.Getxattr(p, "user.k", buf)
	if err != nil || !bytes.Equal(buf[:n], val) {
		t.Errorf("get: got %q, %v; want %q", buf[:n], err, val)
	}
	n, err = syscall.Listxattr(p, buf)
	if err != nil || string(buf[:n]) != "user.k\x00" {
		t.Errorf("list: got %q, %v; want %q", buf[:n], err, "user.k\x00")
	}
	if err := syscall.Removexattr(p, "user.k"); err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.Getxattr(p, "user.k", buf); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("after remove: got %v, want ENODATA", err)
	}
}

func TestSetgidDir(t *testing.T) {
	dir, _ := mountNew(t)
	d := filepath.Join(dir, "g")
	if err := os.Mkdir(d, 0o775); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, 0, 1234); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(d, 0o2775); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"f", "sub"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(d, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Gid != 1234 {
			t.Errorf("%s: gid got %d, want 1234", name, st.Gid)
		}
		if name == "sub" && st.Mode&syscall.S_ISGID == 0 {
			t.Errorf("sub: mode %o lacks setgid", st.Mode)
		}
	}
}

// TestNoSpaceInline checks a small file whose commit carries its chunk
// inline, when the metadata side's store is full: close fails with ENOSPC
// and the file stays empty.
func TestNoSpaceInline(t *testing.T) {
	mem := chunkstore.NewMemory()
	l := cluster.NewLocal(cluster.StateConfig{BlockSize: testBlockSize}, fullStore{mem})
	w := &world{local: l, meta: l, store: mem}
	dir, _ := w.mount(t, fs.Options{})
	p := filepath.Join(dir, "small")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randBytes(16, 100)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := f.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("close: got %v, want ENOSPC", err)
	}
	if n, err := mem.Stat(context.Background()); err != nil || n.Chunks != 0 {
		t.Errorf("store: got %d chunks (err %v), want none", n.Chunks, err)
	}
}

// countMeta counts metadata requests by op.
type countMeta struct {
	fs.Metadata
	mu      sync.Mutex
	ops     map[cluster.MetaOp]int
	lookups []string // the names looked up, in order
}

func (m *countMeta) Do(ctx context.Context, req *cluster.MetaRequest) (*cluster.MetaResponse, error) {
	m.mu.Lock()
	if m.ops == nil {
		m.ops = make(map[cluster.MetaOp]int)
	}
	m.ops[req.Op]++
	if req.Op == cluster.OpLookup {
		m.lookups = append(m.lookups, string(req.Name))
	}
	m.mu.Unlock()
	return m.Metadata.Do(ctx, req)
}

// lookupsSince returns the names looked up after the first n (n from
// count(cluster.OpLookup)) that keep accepts, all of them if keep is nil.
func (m *countMeta) lookupsSince(n int, keep func(name string) bool) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, name := range m.lookups[n:] {
		if keep == nil || keep(name) {
			out = append(out, name)
		}
	}
	return out
}

func (m *countMeta) count(op cluster.MetaOp) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ops[op]
}

// TestSmallFileOneCommit checks what cp -a does to each file: create,
// write, set the times and mode, close. The chunk goes inside the commit
// (no upload) and the attribute changes are folded into it (no setattr),
// while stat on the open file already shows them, and a fresh mount sees
// everything after close.
func TestSmallFileOneCommit(t *testing.T) {
	w := newWorld()
	cm := &countMeta{Metadata: w.meta}
	cs := &countStore{Chunks: w.store}
	w.meta, w.store = cm, cs
	dir, unmount := w.mount(t, fs.Options{})
	p := filepath.Join(dir, "f")
	data := randBytes(17, 3000)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 2, 2, 2, 2, 2, 2000, time.UTC)
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), ts, 0); err != nil {
		t.Fatalf("futimens: %v", err)
	}
	if err := f.Chmod(0o754); err != nil {
		t.Fatalf("fchmod: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o754 || st.Mtim.Nano() != mtime.UnixNano() || st.Size != int64(len(data)) {
		t.Errorf("fstat before close: got mode %o mtime %d size %d, want 754 %d %d", st.Mode&0o7777, st.Mtim.Nano(), st.Size, mtime.UnixNano(), len(data))
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := cm.count(cluster.OpCommit); got != 1 {
		t.Errorf("commits: got %d, want 1", got)
	}
	if got := cm.count(cluster.OpSetAttr); got != 0 {
		t.Errorf("setattrs: got %d, want 0 (folded into the commit)", got)
	}
	if got := cs.puts.Load(); got != 0 {
		t.Errorf("chunk uploads: got %d, want 0 (inline)", got)
	}
	unmount()
	dir, _ = w.mount(t, fs.Options{})
	p = filepath.Join(dir, "f")
	wantFile(t, p, data)
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o754 || st.Mtim.Nano() != mtime.UnixNano() {
		t.Errorf("stat after remount: got mode %o mtime %d, want 754 %d", st.Mode&0o7777, st.Mtim.Nano(), mtime.UnixNano())
	}
	if ctime := time.Unix(st.Ctim.Unix()); time.Since(ctime) > time.Hour {
		t.Errorf("ctime after remount: got %v, want about now (the changes were made now)", ctime)
	}
}

// eagainMeta fails the first commits with EAGAIN, as metadata does when a
// commit names a chunk being garbage collected.
type eagainMeta struct {
	fs.Metadata
	fails atomic.Int32
}

func (m *eagainMeta) Do(ctx context.Context, req *cluster.MetaRequest) (*cluster.MetaResponse, error) {
	if req.Op == cluster.OpCommit && m.fails.Add(-1) >= 0 {
		return nil, fmt.Errorf("commit: %w", syscall.EAGAIN)
	}
	return m.Metadata.Do(ctx, req)
}

// countStore counts Puts.
type countStore struct {
	fs.Chunks
	puts atomic.Int32
}

func (s *countStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	s.puts.Add(1)
	return s.Chunks.Put(ctx, id, data)
}

func TestCommitRetriesEAGAIN(t *testing.T) {
	w := newWorld()
	em := &eagainMeta{Metadata: w.meta}
	em.fails.Store(2)
	cs := &countStore{Chunks: w.store}
	w.meta, w.store = em, cs
	dir, _ := w.mount(t, fs.Options{})
	p := filepath.Join(dir, "f")
	data := randBytes(15, 3*testBlockSize+5) // four blocks
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatalf("write with EAGAIN commits: %v", err)
	}
	// The three full blocks are uploaded, and again after each EAGAIN; the
	// 5-byte last one travels inside the commit.
	if got, want := cs.puts.Load(), int32(3*3); got != want {
		t.Errorf("puts: got %d, want %d (each uploaded block stored again per EAGAIN)", got, want)
	}
	wantFile(t, p, data)
}

// TestDeferredCreate checks files whose create rides in their first commit:
// no create request of their own, invisible to other mounts until closed,
// but listed, looked up, unlinked and counted in rmdir by their own mount
// as any file.
func TestDeferredCreate(t *testing.T) {
	w := newWorld()
	cm := &countMeta{Metadata: w.meta}
	w.meta = cm
	dir, _ := w.mount(t, fs.Options{})
	other, _ := w.mount(t, fs.Options{})
	// The first create of a mount learns the block size from metadata.
	if err := os.WriteFile(filepath.Join(dir, "first"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	creates, commits := cm.count(cluster.OpCreate), cm.count(cluster.OpCommit)

	a, err := os.OpenFile(filepath.Join(dir, "a"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("another mount before close: got %v, want ENOENT", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := cm.count(cluster.OpCreate) - creates; got != 0 {
		t.Errorf("creates sent: got %d, want 0 (carried by the commit)", got)
	}
	if got := cm.count(cluster.OpCommit) - commits; got != 1 {
		t.Errorf("commits sent: got %d, want 1", got)
	}
	wantFile(t, filepath.Join(other, "a"), []byte("hello"))
	if st, err := os.Stat(filepath.Join(other, "a")); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("another mount after close: got %v (err %v), want mode 0640", st.Mode(), err)
	}

	// A pending file is listed, and so created for everyone.
	b, err := os.Create(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range names {
		listed = append(listed, e.Name())
	}
	if want := []string{"a", "b", "first"}; !slices.Equal(listed, want) {
		t.Errorf("readdir: got %v, want %v", listed, want)
	}
	if _, err := os.Stat(filepath.Join(other, "b")); err != nil {
		t.Errorf("another mount after readdir: %v, want b to exist", err)
	}

	// A pending file makes its directory non-empty, and can be unlinked
	// while open and still be read through its descriptor.
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := os.OpenFile(filepath.Join(sub, "c"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(sub); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a directory holding a new file: got %v, want ENOTEMPTY", err)
	}
	if err := os.Remove(filepath.Join(sub, "c")); err != nil {
		t.Fatalf("unlink of an open new file: %v", err)
	}
	buf := make([]byte, 10)
	if n, err := c.ReadAt(buf, 0); err != nil || string(buf[:n]) != "still here" {
		t.Errorf("read after unlink: got %q, %v; want %q", buf[:n], err, "still here")
	}
	if err := c.Close(); err != nil {
		t.Errorf("close after unlink: %v", err)
	}
	if err := os.Remove(sub); err != nil {
		t.Errorf("rmdir once empty: %v", err)
	}
}

// TestNoPosixACLs checks that POSIX ACL xattrs are refused with
// EOPNOTSUPP, as on a file system without ACL support, rather than stored
// as xattrs nothing enforces; cp -a then falls back to chmod.
func TestNoPosixACLs(t *testing.T) {
	dir, _ := mountNew(t)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	acl := []byte("\x02\x00\x00\x00\x01\x00\x06\x00\xff\xff\xff\xff\x04\x00\x04\x00\xff\xff\xff\xff\x20\x00\x04\x00\xff\xff\xff\xff")
	// A default ACL is for directories only (the kernel says so itself).
	for p, name := range map[string]string{p: "system.posix_acl_access", d: "system.posix_acl_default"} {
		if err := syscall.Setxattr(p, name, acl, 0); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("setxattr %s: got %v, want EOPNOTSUPP", name, err)
		}
		if _, err := syscall.Getxattr(p, name, make([]byte, 64)); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("getxattr %s: got %v, want EOPNOTSUPP", name, err)
		}
		if err := syscall.Removexattr(p, name); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("removexattr %s: got %v, want EOPNOTSUPP", name, err)
		}
	}
	n, err := syscall.Listxattr(p, make([]byte, 64))
	if err != nil || n != 0 {
		t.Errorf("listxattr: got %d bytes, %v; want none", n, err)
	}
}

// TestKnownNamesSkipLookups checks that creates in a directory the mount
// made, or listed, do not ask metadata whether the name exists; that
// names made, renamed and removed through the mount are found or not as
// they should be; and that a name another mount creates shows up once
// AttrTimeout has passed.
func TestKnownNamesSkipLookups(t *testing.T) {
	w := newWorld()
	cm := &countMeta{Metadata: w.meta}
	w.meta = cm
	// Names stay known for AttrTimeout after their last step: a minute
	// here, so that a slow machine cannot age them out between steps.
	dir, _ := w.mount(t, fs.Options{AttrTimeout: time.Minute, EntryTimeout: time.Minute})
	other, _ := w.mount(t, fs.Options{AttrTimeout: 300 * time.Millisecond})
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	before := cm.count(cluster.OpLookup)
	for _, name := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of an absent name: %v, want ENOENT", err)
	}
	// The kernel may evict d's dentry meanwhile and look d up again; a
	// name in d must cost nothing.
	if sent := cm.lookupsSince(before, func(name string) bool { return name != "d" }); len(sent) != 0 {
		t.Errorf("lookups sent while creating in a new directory: %q, want none", sent)
	}
	if err := os.Rename(filepath.Join(d, "a"), filepath.Join(d, "sub", "a2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d, "b")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(d, "sub", "a2"), []byte("a"))
	wantFile(t, filepath.Join(d, "c"), []byte("c"))
	for _, gone := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(d, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat of %s after it went: %v, want ENOENT", gone, err)
		}
	}
	if err := os.WriteFile(filepath.Join(d, "b"), []byte("again"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(d, "b"), []byte("again"))

	// Another mount's create shows up within AttrTimeout on a mount that
	// knew d's names: here a third one, with an AttrTimeout of 300 ms.
	watch, _ := w.mount(t, fs.Options{AttrTimeout: 300 * time.Millisecond})
	wd := filepath.Join(watch, "d")
	if _, err := os.ReadDir(wd); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "d", "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(wd, "x")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("another mount's file still not seen: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantFile(t, filepath.Join(wd, "x"), []byte("x"))

	// A listing is known complete too.
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 4 { // b c sub x
		t.Errorf("listing: %d entries, want 4", len(ents))
	}
	before = cm.count(cluster.OpLookup)
	if _, err := os.Stat(filepath.Join(d, "never")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of an absent name after a listing: %v", err)
	}
	if sent := cm.lookupsSince(before, func(name string) bool { return name == "never" }); len(sent) != 0 {
		t.Errorf("lookups sent for an absent name of a listed directory: %d, want 0", len(sent))
	}
}

// TestKnownNamesFollowOwnChanges checks that a directory this mount keeps
// filling for longer than AttrTimeout still answers lookups of absent
// names itself, and that a file another mount creates there meanwhile
// still shows up within about AttrTimeout, although this mount goes on
// creating files in the directory.
func TestKnownNamesFollowOwnChanges(t *testing.T) {
	w := newWorld()
	cm := &countMeta{Metadata: w.meta}
	w.meta = cm
	// Longer than any stall of a loaded test machine: a list whose last
	// step is AttrTimeout old is rightly no longer trusted.
	const timeout = time.Second
	// The kernel's own entry for d must outlive the writers, or its
	// revalidation (a lookup of d, which exists) would be counted too.
	opts := fs.Options{AttrTimeout: timeout, EntryTimeout: time.Minute}
	dir, _ := w.mount(t, opts)
	other, _ := w.mount(t, opts)
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	create := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(d, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Four writers at once: their changes' answers come back in any
	// order, and the kernel looks the directory itself up again every
	// AttrTimeout meanwhile. Each is paced to make at most perWriter
	// files: past 16,384 names the mount rightly stops keeping a
	// directory's names (maxKnownNames), which a fast machine reached.
	const perWriter = 3000
	before := cm.count(cluster.OpLookup)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Since(start) < 3*timeout; i++ {
				time.Sleep(time.Until(start.Add(time.Duration(i) * 3 * timeout / perWriter)))
				if err := os.WriteFile(filepath.Join(d, fmt.Sprint("f", w, "_", i)), []byte("f"), 0o644); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := cm.count(cluster.OpLookup) - before; got != 0 {
		t.Errorf("lookups sent while filling a new directory for %v: %d, want 0", time.Since(start).Round(time.Millisecond), got)
	}

	if err := os.WriteFile(filepath.Join(other, "d", "y"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	seenWhileChanging(t, filepath.Join(d, "y"), timeout, "creates", func(i int) { create(fmt.Sprint("g", i)) })
	wantFile(t, filepath.Join(d, "y"), []byte("y"))
}

// seenWhileChanging waits for path, which another mount made, to show up
// here while change(0), change(1)... keep changing its directory from
// this mount, every timeout/5; it fails the test after 10*timeout.
func seenWhileChanging(t *testing.T, path string, timeout time.Duration, changes string, change func(i int)) {
	t.Helper()
	start := time.Now()
	for i := 0; ; i++ {
		change(i)
		_, err := os.Stat(path)
		if err == nil {
			return
		}
		if time.Since(start) > 10*timeout {
			t.Fatalf("%s, made by another mount, not seen after %v of %s here: %v", path, time.Since(start).Round(time.Millisecond), changes, err)
		}
		time.Sleep(timeout / 5)
	}
}

// TestRenameKeepsKnownNames checks that renames, within a directory and
// between two, keep the directories' names known: the kernel's lookup of
// each target name is answered by the mount, and what a stat then sees is
// what the renames did.
func TestRenameKeepsKnownNames(t *testing.T) {
	w := newWorld()
	cm := &countMeta{Metadata: w.meta}
	w.meta = cm
	// Names stay known for AttrTimeout after their last step: a minute
	// here, so that a slow machine cannot age them out between steps.
	dir, _ := w.mount(t, fs.Options{AttrTimeout: time.Minute, EntryTimeout: time.Minute})
	d, e := filepath.Join(dir, "d"), filepath.Join(dir, "e")
	for _, p := range []string{d, e} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const n = 20
	writeNumbered(t, d, n)
	// File i goes to g<i> within d if i is even, else to h<i> in e.
	isTarget := func(name string) bool { return strings.HasPrefix(name, "g") || strings.HasPrefix(name, "h") }
	target := func(i int) string {
		if i%2 == 1 {
			return filepath.Join(e, fmt.Sprint("h", i))
		}
		return filepath.Join(d, fmt.Sprint("g", i))
	}
	before := cm.count(cluster.OpLookup)
	for i := range n {
		if err := os.Rename(filepath.Join(d, fmt.Sprint("f", i)), target(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel may have evicted the sources' dentries meanwhile and
	// look them up again; a new name must cost nothing.
	if sent := cm.lookupsSince(before, isTarget); len(sent) != 0 {
		t.Errorf("lookups sent for %d renames to new names in directories this mount made: %q, want none", n, sent)
	}
	for i := range n {
		if _, err := os.Stat(filepath.Join(d, fmt.Sprint("f", i))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat of renamed-away f%d: %v, want ENOENT", i, err)
		}
		wantFile(t, target(i), []byte(fmt.Sprint(i)))
	}
	// A rename another mount makes still shows up within about
	// AttrTimeout on a mount that listed d and goes on renaming in it:
	// the other mount's change breaks the chain of d's steps.
	const timeout = 200 * time.Millisecond
	watch, _ := w.mount(t, fs.Options{AttrTimeout: timeout, EntryTimeout: time.Minute})
	wd := filepath.Join(watch, "d")
	if _, err := os.ReadDir(wd); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(e, "h1"), filepath.Join(d, "moved")); err != nil {
		t.Fatal(err)
	}
	seenWhileChanging(t, filepath.Join(wd, "moved"), timeout, "renames", func(i int) {
		g, tmp := filepath.Join(wd, fmt.Sprint("g", 2*(i%(n/2)))), filepath.Join(wd, fmt.Sprint("t", i))
		if err := os.Rename(g, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, g); err != nil {
			t.Fatal(err)
		}
	})
	wantFile(t, filepath.Join(wd, "moved"), []byte("1"))
}

// writeNumbered writes files f0 … f<n-1> in dir, file i holding i in
// decimal.
func writeNumbered(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("f", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKnownNamesOutliveForget: the kernel forgets the node of a directory
// whose dentry it evicts, as it does under memory pressure (drop_caches
// does the same at once), and looks the directory up anew. The new node
// still knows the names the mount made there, so renames to new names send
// no lookup for them.
func TestKnownNamesOutliveForget(t *testing.T) {
	w := newWorld()
	cm := &countMeta{Metadata: w.meta}
	w.meta = cm
	dir, _ := w.mount(t, fs.Options{AttrTimeout: time.Minute, EntryTimeout: time.Minute})
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 20
	writeNumbered(t, d, n)
	// Evict until the kernel has forgotten d's node: it looks "d" up then.
	made := cm.count(cluster.OpLookup)
	for i := 0; !slices.Contains(cm.lookupsSince(made, nil), "d"); i++ {
		if i == 50 {
			t.Fatal("d's node outlived 50 rounds of drop_caches")
		}
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
			t.Fatalf("evicting dentries: %v", err)
		}
		if _, err := os.Stat(d); err != nil {
			t.Fatal(err)
		}
	}
	before := cm.count(cluster.OpLookup)
	for i := range n {
		if err := os.Rename(filepath.Join(d, fmt.Sprint("f", i)), filepath.Join(d, fmt.Sprint("g", i))); err != nil {
			t.Fatal(err)
		}
	}
	isTarget := func(name string) bool { return strings.HasPrefix(name, "g") }
	if sent := cm.lookupsSince(before, isTarget); len(sent) != 0 {
		t.Errorf("renames to new names in a directory this mount made, after the kernel forgot it, sent lookups of %q, want none", sent)
	}
	for i := range n {
		wantFile(t, filepath.Join(d, fmt.Sprint("g", i)), []byte(fmt.Sprint(i)))
	}
}

// TestRedirectedWriteSkipsCapabilityLookup does what a shell's "> file"
// does: create, dup the descriptor, close the first (its flush commits the
// new file), write through the second. The kernel asks for the file's
// security.capability before that write; for a file this mount has just
// made the answer is known, so no getxattr goes to metadata.
func TestRedirectedWriteSkipsCapabilityLookup(t *testing.T) {
	w := newWorld()
	cm := &countMeta{Metadata: w.meta}
	w.meta = cm
	dir, _ := w.mount(t, fs.Options{})
	// The mount's first create goes to metadata at once (to learn the
	// block size); the later ones are the new files this is about.
	if err := os.WriteFile(filepath.Join(dir, "first"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprint("redirected", i))
		before := cm.count(cluster.OpGetXattr)
		fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fd2, err := syscall.Dup(fd)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Close(fd); err != nil {
			t.Fatal(err)
		}
		if _, err := syscall.Write(fd2, []byte("written after the first close\n")); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Close(fd2); err != nil {
			t.Fatal(err)
		}
		wantFile(t, p, []byte("written after the first close\n"))
		if got := cm.count(cluster.OpGetXattr) - before; got != 0 {
			t.Errorf("file %d: %d getxattr requests sent, want 0", i, got)
		}
	}
	// That knowledge ends when this mount sets an attribute: it reads
	// back what it set.
	p := filepath.Join(dir, "redirected0")
	if err := syscall.Setxattr(p, "user.k", []byte("v"), 0); err != nil {
		t.Fatalf("setxattr: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := syscall.Getxattr(p, "user.k", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("getxattr user.k after setxattr: got %q, %v; want \"v\"", buf[:n], err)
	}
	if n, err := syscall.Listxattr(p, buf); err != nil || string(buf[:n]) != "user.k\x00" {
		t.Errorf("listxattr after setxattr: got %q, %v; want \"user.k\\x00\"", buf[:n], err)
	}
}

// TestListingAnswersLookups: a fresh mount lists a directory and stats
// every entry (ls -l): the listing carries the attributes (READDIRPLUS),
// so no entry is looked up on its own, and the attributes are right.
func TestListingAnswersLookups(t *testing.T) {
	w := newWorld()
	dir, unmount := w.mount(t, fs.Options{})
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	const files = 40
	for i := range files {
		p := filepath.Join(sub, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(p, randBytes(uint64(i), i*100), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o600+os.FileMode(i%8)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(filepath.Join(sub, "f07"), "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	unmount()

	cm := &countMeta{Metadata: w.meta}
	w.meta = cm
	dir, _ = w.mount(t, fs.Options{})
	sub = filepath.Join(dir, "d")
	ents, err := os.ReadDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != files {
		t.Fatalf("readdir: got %d entries, want %d", len(ents), files)
	}
	for i, e := range ents {
		fi, err := os.Lstat(filepath.Join(sub, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(i*100) || fi.Mode().Perm() != 0o600+os.FileMode(i%8) {
			t.Errorf("%s: got size %d mode %v, want %d and %v", e.Name(), fi.Size(), fi.Mode().Perm(), i*100, 0o600+os.FileMode(i%8))
		}
	}
	// The getxattr "ls -l" sends for each entry is answered by the mount
	// for those listed without extended attributes.
	buf := make([]byte, 64)
	for _, e := range ents {
		n, err := unix.Lgetxattr(filepath.Join(sub, e.Name()), "user.k", buf)
		if e.Name() == "f07" {
			if err != nil || string(buf[:n]) != "v" {
				t.Errorf("getxattr f07 user.k: got %q, %v; want \"v\"", buf[:n], err)
			}
			continue
		}
		if !errors.Is(err, unix.ENODATA) {
			t.Errorf("getxattr %s user.k: got %v, want ENODATA", e.Name(), err)
		}
	}
	if got := cm.count(cluster.OpGetXattr); got != 1 {
		t.Errorf("getxattr requests: got %d, want 1 (for the one file that has one)", got)
	}
	// "d" itself is looked up; its entries come with the listing.
	if got := cm.count(cluster.OpLookup); got > 1 {
		t.Errorf("lookups: got %d, want at most 1 (the directory's own)", got)
	}
	if got := cm.count(cluster.OpReadDir); got != 1 {
		t.Errorf("readdirs: got %d, want 1", got)
	}
}

// TestAbsentNamesRelist checks that a mount filling a directory it did
// not make (another mount made it) asks metadata about absent names only
// until it has asked relistMisses times, then lists the directory once
// and answers the rest itself, and that the files it makes are all there.
func TestAbsentNamesRelist(t *testing.T) {
	w := newWorld()
	cm := &countMeta{Metadata: w.meta}
	w.meta = cm
	opts := fs.Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour}
	first, _ := w.mount(t, opts)
	if err := os.Mkdir(filepath.Join(first, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeNumbered(t, filepath.Join(first, "d"), 20)
	second, _ := w.mount(t, opts)
	d := filepath.Join(second, "d")
	before, lists := cm.count(cluster.OpLookup), cm.count(cluster.OpReadDir)
	const n = 100
	for i := range n {
		if err := os.WriteFile(filepath.Join(d, fmt.Sprint("new", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sent := cm.lookupsSince(before, func(name string) bool { return strings.HasPrefix(name, "new") })
	if len(sent) > 10 {
		t.Errorf("lookups of absent names sent for %d creates in a directory another mount made: %d, want about 8 before one listing", n, len(sent))
	}
	if got := cm.count(cluster.OpReadDir) - lists; got != 1 {
		t.Errorf("listings of the directory: %d, want 1", got)
	}
	names, err := os.ReadDir(filepath.Join(first, "d"))
	if err != nil || len(names) != 20+n {
		t.Errorf("the first mount lists %d names (%v), want %d", len(names), err, 20+n)
	}
}
