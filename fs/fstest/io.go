package fstest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// testFileReadWrite writes and reads at several offsets through one fd and
// through the path.
func testFileReadWrite(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	f := openFile(t, p, os.O_RDWR|os.O_CREATE, 0o644)
	if _, err := f.Write([]byte("hello world")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := f.WriteAt([]byte("WORLD"), 6); err != nil {
		t.Fatalf("pwrite: %v", err)
	}
	if got := pread(t, f, 0, 11); string(got) != "hello WORLD" {
		t.Errorf("pread 0: got %q, want %q", got, "hello WORLD")
	}
	if got := pread(t, f, 3, 4); string(got) != "lo W" {
		t.Errorf("pread 3: got %q, want %q", got, "lo W")
	}
	// A read at the end returns 0 bytes and io.EOF.
	n, err := f.ReadAt(make([]byte, 4), 11)
	if n != 0 || err != io.EOF {
		t.Errorf("pread at EOF: got %d, %v, want 0, EOF", n, err)
	}
	// A short read near the end.
	b := make([]byte, 10)
	n, _ = f.ReadAt(b, 8)
	if string(b[:n]) != "RLD" {
		t.Errorf("pread 8: got %q, want %q", b[:n], "RLD")
	}
	// The file position moves with write; a read continues from it.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatalf("seek: %v", err)
	}
	if _, err := f.Write([]byte("J")); err != nil {
		t.Fatalf("write: %v", err)
	}
	rest, err := io.ReadAll(f)
	check(t, "read", err)
	if string(rest) != "ello WORLD" {
		t.Errorf("read after write: got %q, want %q", rest, "ello WORLD")
	}
	check(t, "close", f.Close())
	wantContent(t, p, "Jello WORLD")
	if st := stat(t, p); st.Size != 11 || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Errorf("stat: got size %d mode %o, want 11, regular file", st.Size, st.Mode)
	}
}

// testHoles writes past the end and checks the gap reads as zeros.
func testHoles(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	f := openFile(t, p, os.O_RDWR|os.O_CREATE, 0o644)
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatalf("write: %v", err)
	}
	const off = 1<<20 + 17
	if _, err := f.WriteAt([]byte("z"), off); err != nil {
		t.Fatalf("pwrite: %v", err)
	}
	check(t, "close", f.Close())
	got, err := os.ReadFile(p)
	check(t, "read", err)
	if len(got) != off+1 {
		t.Fatalf("size: got %d, want %d", len(got), off+1)
	}
	if string(got[:3]) != "abc" || got[off] != 'z' {
		t.Errorf("ends: got %q…%q, want abc…z", got[:3], got[off:])
	}
	if !zeros(got[3:off]) {
		t.Errorf("hole: got non-zero bytes at %d, want all zeros", 3+bytes.IndexFunc(got[3:off], func(r rune) bool { return r != 0 }))
	}
	// Seeking past the end and writing makes a hole too.
	f = openFile(t, p, os.O_RDWR, 0)
	if _, err := f.Seek(off+100, io.SeekStart); err != nil {
		t.Fatalf("seek: %v", err)
	}
	if _, err := f.Write([]byte("q")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got := pread(t, f, off, 101); got[0] != 'z' || got[100] != 'q' || !zeros(got[1:100]) {
		t.Errorf("second hole: got %q, want z, 99 zeros, q", got)
	}
}

// testSparseLarge writes one byte at 5 GiB.
func testSparseLarge(t *testing.T, dir string) {
	p := filepath.Join(dir, "big")
	const off = 5 << 30
	f := openFile(t, p, os.O_RDWR|os.O_CREATE, 0o644)
	if _, err := f.WriteAt([]byte{'X'}, off); err != nil {
		t.Fatalf("pwrite at 5 GiB: %v", err)
	}
	check(t, "fsync", f.Sync())
	check(t, "close", f.Close())
	st := stat(t, p)
	if st.Size != off+1 {
		t.Errorf("size: got %d, want %d", st.Size, int64(off+1))
	}
	t.Logf("5 GiB sparse file uses %d bytes of blocks", st.Blocks*512)
	f = openFile(t, p, os.O_RDONLY, 0)
	if got := pread(t, f, 0, 4096); !zeros(got) {
		t.Errorf("first 4 KiB: got non-zero bytes, want zeros")
	}
	if got := pread(t, f, off/2, 4096); !zeros(got) {
		t.Errorf("4 KiB at 2.5 GiB: got non-zero bytes, want zeros")
	}
	b := make([]byte, 8192)
	n, err := f.ReadAt(b, off-4096)
	if n != 4097 || (err != nil && err != io.EOF) {
		t.Fatalf("read around 5 GiB: got %d bytes, %v, want 4097", n, err)
	}
	if !zeros(b[:4096]) || b[4096] != 'X' {
		t.Errorf("around 5 GiB: got byte %q after %d zeros check failed, want 4096 zeros then X", b[4096], 4096)
	}
}

// testTruncate shrinks and grows a file.
func testTruncate(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, string(bytes.Repeat([]byte("a"), 100)))
	check(t, "truncate", os.Truncate(p, 10))
	if st := stat(t, p); st.Size != 10 {
		t.Errorf("size after truncate down: got %d, want 10", st.Size)
	}
	wantContent(t, p, "aaaaaaaaaa")
	// Extending again must not bring the old bytes back.
	check(t, "truncate", os.Truncate(p, 50))
	wantContent(t, p, "aaaaaaaaaa"+string(make([]byte, 40)))

	// The same through an fd, then a write beyond the end.
	f := openFile(t, p, os.O_RDWR, 0)
	check(t, "ftruncate", f.Truncate(5))
	if _, err := f.WriteAt([]byte("b"), 20); err != nil {
		t.Fatalf("pwrite: %v", err)
	}
	if got := pread(t, f, 0, 21); string(got) != "aaaaa"+string(make([]byte, 15))+"b" {
		t.Errorf("after ftruncate and write: got %q, want 5 a, 15 zeros, b", got)
	}
	check(t, "ftruncate", f.Truncate(0))
	var st syscall.Stat_t
	check(t, "fstat", syscall.Fstat(int(f.Fd()), &st))
	if st.Size != 0 {
		t.Errorf("size after ftruncate 0: got %d, want 0", st.Size)
	}
	// Truncating to a size inside a page-sized block clears the tail.
	check(t, "ftruncate", f.Truncate(8192))
	if _, err := f.WriteAt(bytes.Repeat([]byte("c"), 8192), 0); err != nil {
		t.Fatalf("pwrite: %v", err)
	}
	check(t, "ftruncate", f.Truncate(4000))
	check(t, "ftruncate", f.Truncate(8192))
	got := pread(t, f, 0, 8192)
	if !bytes.Equal(got[:4000], bytes.Repeat([]byte("c"), 4000)) || !zeros(got[4000:]) {
		t.Errorf("after shrink to 4000 and regrow: got wrong bytes, want 4000 c then zeros")
	}
}

// testAppend appends through two fds in turn.
func testAppend(t *testing.T, dir string) {
	p := filepath.Join(dir, "log")
	writeFile(t, p, "start\n")
	a := openFile(t, p, os.O_WRONLY|os.O_APPEND, 0)
	b := openFile(t, p, os.O_WRONLY|os.O_APPEND, 0)
	want := "start\n"
	for i := range 10 {
		for _, w := range []struct {
			f   *os.File
			rec string
		}{{a, "A"}, {b, "BB"}} {
			rec := w.rec + string(rune('0'+i)) + "\n"
			if _, err := w.f.Write([]byte(rec)); err != nil {
				t.Fatalf("append: %v", err)
			}
			want += rec
		}
	}
	// Seeking does not matter for O_APPEND.
	if _, err := a.Seek(0, io.SeekStart); err != nil {
		t.Fatalf("seek: %v", err)
	}
	if _, err := a.Write([]byte("end\n")); err != nil {
		t.Fatalf("append: %v", err)
	}
	want += "end\n"
	wantContent(t, p, want)
}

// testCreateExcl checks O_CREAT|O_EXCL.
func testCreateExcl(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	check(t, "create", err)
	f.Close()
	_, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	wantErrno(t, "O_EXCL on existing file", err, syscall.EEXIST)
	check(t, "symlink", os.Symlink("missing", filepath.Join(dir, "dangling")))
	_, err = os.OpenFile(filepath.Join(dir, "dangling"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	wantErrno(t, "O_EXCL on dangling symlink", err, syscall.EEXIST)
	if _, err := os.Lstat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("O_EXCL through dangling symlink: got target created (%v), want not created", err)
	}
	_, err = os.OpenFile(dir, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o644)
	wantErrno(t, "O_EXCL on directory", err, syscall.EEXIST)
}

// testOpenTrunc checks O_TRUNC.
func testOpenTrunc(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "a long old content")
	f := openFile(t, p, os.O_WRONLY|os.O_TRUNC, 0)
	if st := stat(t, p); st.Size != 0 {
		t.Errorf("size after O_TRUNC: got %d, want 0", st.Size)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatalf("write: %v", err)
	}
	check(t, "close", f.Close())
	wantContent(t, p, "new")
}

// testRandomWrites writes a multi-MiB file at random offsets and compares it
// with an in-memory model.
func testRandomWrites(t *testing.T, dir string) {
	p := filepath.Join(dir, "rand")
	const maxSize = 6 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	var model []byte
	f := openFile(t, p, os.O_RDWR|os.O_CREATE, 0o644)
	for i := range 1500 {
		off := rng.IntN(maxSize)
		n := 1 + rng.IntN(64<<10)
		if i%50 == 0 {
			n = 1 + rng.IntN(7) // tiny writes too
		}
		buf := make([]byte, n)
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			t.Fatalf("write %d at %d: %v", n, off, err)
		}
		if end := off + n; end > len(model) {
			model = append(model, make([]byte, end-len(model))...)
		}
		copy(model[off:], buf)
		if i%100 == 99 {
			// Read back a random range through the same fd.
			ro := rng.IntN(len(model))
			rn := min(1+rng.IntN(256<<10), len(model)-ro)
			if got := pread(t, f, int64(ro), rn); !bytes.Equal(got, model[ro:ro+rn]) {
				t.Fatalf("after write %d: read %d at %d differs from model", i, rn, ro)
			}
		}
	}
	check(t, "close", f.Close())
	got, err := os.ReadFile(p)
	check(t, "read", err)
	if len(got) != len(model) {
		t.Fatalf("size: got %d, want %d", len(got), len(model))
	}
	if !bytes.Equal(got, model) {
		i := 0
		for got[i] == model[i] {
			i++
		}
		t.Fatalf("content differs from model first at byte %d: got %#x, want %#x", i, got[i], model[i])
	}
}

// testUnlinkOpen removes a file that is still open.
func testUnlinkOpen(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	f := openFile(t, p, os.O_RDWR|os.O_CREATE, 0o644)
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatalf("write: %v", err)
	}
	check(t, "unlink", os.Remove(p))
	_, err := os.Stat(p)
	wantErrno(t, "stat of unlinked name", err, syscall.ENOENT)
	names, err := os.ReadDir(dir)
	check(t, "readdir", err)
	if len(names) != 0 {
		t.Errorf("readdir after unlink: got %d entries, want 0", len(names))
	}
	if got := pread(t, f, 0, 3); string(got) != "abc" {
		t.Errorf("read via fd after unlink: got %q, want %q", got, "abc")
	}
	if _, err := f.WriteAt([]byte("XYZ"), 3); err != nil {
		t.Fatalf("write via fd after unlink: %v", err)
	}
	if got := pread(t, f, 0, 6); string(got) != "abcXYZ" {
		t.Errorf("read via fd after unlink and write: got %q, want %q", got, "abcXYZ")
	}
	var st syscall.Stat_t
	check(t, "fstat", syscall.Fstat(int(f.Fd()), &st))
	if st.Size != 6 || st.Nlink != 0 {
		t.Errorf("fstat after unlink: got size %d nlink %d, want 6, 0", st.Size, st.Nlink)
	}
	check(t, "close", f.Close())
	// A new file with the same name is a new, empty file.
	writeFile(t, p, "")
	wantContent(t, p, "")
}
