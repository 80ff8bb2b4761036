package fs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/cluster"
	"shoal/fs"
	"shoal/fs/fstest"
)

// nameGate holds every unlink, rename and rmdir request at metadata
// until open is closed; then each fails with err if it is set, else goes through.
type nameGate struct {
	fs.Metadata
	open chan struct{}
	err  error
}

func (g *nameGate) Do(ctx context.Context, req *cluster.MetaRequest) (*cluster.MetaResponse, error) {
	switch req.Op {
	case cluster.OpUnlink, cluster.OpRename, cluster.OpRmdir:
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if g.err != nil {
			return nil, g.err
		}
	}
	return g.Metadata.Do(ctx, req)
}

// mountGated mounts a new world whose unlinks, renames and rmdirs wait at
// metadata behind a gate, with directory d holding files f0 … f(n-1),
// each closed. Attributes stay fresh for an hour: the kernel asks for d's
// before each unlink or rename, and were they to go stale on a slow
// machine, the mount would rightly ask metadata, which waits for the ops
// held behind the gate.
func mountGated(t *testing.T, n int) (w *world, g *nameGate, d string) {
	t.Helper()
	w = newWorld()
	g = &nameGate{Metadata: w.meta, open: make(chan struct{})}
	w.meta = g
	dir, _ := w.mount(t, fs.Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour})
	d = filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	awaitReleased(t, w)
	return w, g, d
}

// awaitReleased waits until the mount holds no file open: the kernel
// sends the release of a closed file in the background, and an unlink or
// rename of a file still open in the mount is not held.
func awaitReleased(t *testing.T, w *world) {
	t.Helper()
	for start := time.Now(); fs.OpenFiles(w.root) > 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > time.Minute {
			t.Fatalf("the mount still holds %d files open a minute after they were closed", fs.OpenFiles(w.root))
		}
	}
}

// metaHas reports whether metadata itself has name in directory p.
func metaHas(t *testing.T, w *world, p, name string) bool {
	t.Helper()
	resp, err := w.local.Do(context.Background(), &cluster.MetaRequest{Op: cluster.OpLookup, Ino: statIno(t, p).Ino, Name: cluster.Name(name)})
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("metadata lookup %s in %s: %v", name, p, err)
	}
	return err == nil && resp.Errno == 0
}

// inBackground runs f in a goroutine and returns a channel that gets its
// result.
func inBackground(f func() error) chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

// awaitDone returns what done gets, failing the test if nothing comes
// within a minute.
func awaitDone(t *testing.T, done chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s: still waiting after a minute", what)
		return nil
	}
}

// readDirThenOpen starts a readdir of d while g holds ops back, opens the
// gate once the readdir has had time to reach the mount (where it waits
// for the held ops in d), and returns the names it listed.
func readDirThenOpen(t *testing.T, g *nameGate, d string) []string {
	t.Helper()
	var names []string
	listed := inBackground(func() error {
		entries, err := os.ReadDir(d)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return err
	})
	time.Sleep(100 * time.Millisecond) // let the readdir reach the mount first
	close(g.open)
	if err := awaitDone(t, listed, "readdir of "+d+" while ops were held"); err != nil {
		t.Errorf("readdir %s: %v", d, err)
	}
	return names
}

// TestHeldUnlinksAnswerAtOnce checks that unlinks of files no one holds
// open return before metadata has them, that a readdir started meanwhile
// waits for them and lists none of the names, and that fsync of the
// directory finds them all in metadata.
func TestHeldUnlinksAnswerAtOnce(t *testing.T) {
	const n = 10
	w, g, d := mountGated(t, n)
	removed := inBackground(func() error {
		for i := range n {
			if err := os.Remove(filepath.Join(d, fmt.Sprintf("f%d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err := awaitDone(t, removed, "unlinks while metadata holds them back"); err != nil {
		t.Fatal(err)
	}
	if !metaHas(t, w, d, "f0") {
		t.Fatal("metadata lost f0 before the gate opened: the unlinks were not held back")
	}
	if names := readDirThenOpen(t, g, d); len(names) != 0 {
		t.Errorf("readdir after the unlinks listed %q, want nothing", strings.Join(names, " "))
	}
	fstest.SyncDir(t, d)
	for i := range n {
		if name := fmt.Sprintf("f%d", i); metaHas(t, w, d, name) {
			t.Errorf("metadata still has %s after fsync of the directory", name)
		}
	}
}

// TestHeldUnlinkThenCreateSameName checks that a file made under a name
// whose unlink is held reaches metadata after the unlink: the new file
// stays, with its own bytes.
func TestHeldUnlinkThenCreateSameName(t *testing.T) {
	w, g, d := mountGated(t, 1)
	p := filepath.Join(d, "f0")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	created := inBackground(func() error { return os.WriteFile(p, []byte("new"), 0o644) })
	time.Sleep(100 * time.Millisecond)
	close(g.open)
	if err := awaitDone(t, created, "create after a held unlink"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "new" {
		t.Errorf("read %s: got %q, %v; want \"new\"", p, got, err)
	}
	if !metaHas(t, w, d, "f0") {
		t.Error("metadata lost the new f0: the held unlink came after its create")
	}
}

// TestUnlinkOfOpenFileWaits checks that the unlink of a file the mount
// holds open is not held: it returns only once metadata has it, and the
// open file stays readable.
func TestUnlinkOfOpenFileWaits(t *testing.T) {
	w, g, d := mountGated(t, 1)
	p := filepath.Join(d, "f0")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	removed := inBackground(func() error { return os.Remove(p) })
	select {
	case err := <-removed:
		t.Fatalf("unlink of an open file returned (%v) while metadata held it back", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.open)
	if err := awaitDone(t, removed, "unlink of an open file"); err != nil {
		t.Fatal(err)
	}
	if metaHas(t, w, d, "f0") {
		t.Error("metadata still has f0 after its unlink returned")
	}
	buf := make([]byte, 8)
	if n, err := f.ReadAt(buf, 0); string(buf[:n]) != "old" {
		t.Errorf("read of the unlinked open file: got %q, %v; want \"old\"", buf[:n], err)
	}
}

// TestHeldUnlinkFailure checks that a held unlink that metadata refuses
// (the cluster unreachable) makes the next fsync of a directory fail with
// EIO, once, and brings the name back.
func TestHeldUnlinkFailure(t *testing.T) {
	_, g, d := mountGated(t, 1)
	p := filepath.Join(d, "f0")
	g.err = fmt.Errorf("metadata unreachable: %w", syscall.EIO)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	wantSyncFailsOnce(t, d, "a failed held unlink")
	if got, err := os.ReadFile(p); err != nil || string(got) != "old" {
		t.Errorf("read %s after its unlink failed: got %q, %v; want \"old\"", p, got, err)
	}
}

// TestHeldRenamesAnswerAtOnce checks that renames of files no one holds
// open return before metadata has them, that a readdir started meanwhile
// waits for them and lists the new names, and that fsync of the directory
// finds them all in metadata.
func TestHeldRenamesAnswerAtOnce(t *testing.T) {
	const n = 10
	w, g, d := mountGated(t, n)
	renamed := inBackground(func() error {
		for i := range n {
			if err := os.Rename(filepath.Join(d, fmt.Sprintf("f%d", i)), filepath.Join(d, fmt.Sprintf("r%d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err := awaitDone(t, renamed, "renames while metadata holds them back"); err != nil {
		t.Fatal(err)
	}
	if !metaHas(t, w, d, "f0") {
		t.Fatal("metadata lost f0 before the gate opened: the renames were not held back")
	}
	if got, want := strings.Join(readDirThenOpen(t, g, d), " "), "r0 r1 r2 r3 r4 r5 r6 r7 r8 r9"; got != want {
		t.Errorf("readdir after the renames listed %q, want %q", got, want)
	}
	fstest.SyncDir(t, d)
	for i := range n {
		if metaHas(t, w, d, fmt.Sprintf("f%d", i)) || !metaHas(t, w, d, fmt.Sprintf("r%d", i)) {
			t.Errorf("after fsync of the directory, metadata does not have f%d renamed to r%d", i, i)
		}
	}
	if got, err := os.ReadFile(filepath.Join(d, "r0")); err != nil || string(got) != "old" {
		t.Errorf("read r0: got %q, %v; want \"old\"", got, err)
	}
}

// TestHeldRenamesLandInOrder checks that held renames and unlinks that
// share names reach metadata in the order they were answered, although
// all of them are sent at once: a file renamed along a chain of names,
// over a file, and the name it left unlinked again ends where the
// program left it.
func TestHeldRenamesLandInOrder(t *testing.T) {
	w, g, d := mountGated(t, 2)
	at := func(name string) string { return filepath.Join(d, name) }
	if err := os.WriteFile(at("f1"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	awaitReleased(t, w)
	prev := "f1"
	for i := range 20 {
		next := fmt.Sprintf("h%d", i)
		if err := os.Rename(at(prev), at(next)); err != nil {
			t.Fatal(err)
		}
		prev = next
	}
	if err := os.Rename(at(prev), at("f0")); err != nil { // over f0
		t.Fatal(err)
	}
	// The create commits after every held op: it waits for the gate.
	created := inBackground(func() error { return os.WriteFile(at("h0"), []byte("again"), 0o644) })
	time.Sleep(100 * time.Millisecond)
	close(g.open)
	if err := awaitDone(t, created, "create of a name a held rename left"); err != nil {
		t.Fatal(err)
	}
	fstest.SyncDir(t, d)
	for name, want := range map[string]bool{"f0": true, "f1": false, "h0": true, "h1": false, "h19": false} {
		if got := metaHas(t, w, d, name); got != want {
			t.Errorf("metadata has %s: %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]string{"f0": "new", "h0": "again"} {
		if got, err := os.ReadFile(at(name)); err != nil || string(got) != want {
			t.Errorf("read %s: got %q, %v; want %q", name, got, err, want)
		}
	}
}

// TestRenameOfOpenFileWaits checks that the rename of a file the mount
// holds open is not held: it returns only once metadata has it.
func TestRenameOfOpenFileWaits(t *testing.T) {
	w, g, d := mountGated(t, 1)
	f, err := os.Open(filepath.Join(d, "f0"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	renamed := inBackground(func() error { return os.Rename(filepath.Join(d, "f0"), filepath.Join(d, "g0")) })
	select {
	case err := <-renamed:
		t.Fatalf("rename of an open file returned (%v) while metadata held it back", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.open)
	if err := awaitDone(t, renamed, "rename of an open file"); err != nil {
		t.Fatal(err)
	}
	if !metaHas(t, w, d, "g0") {
		t.Error("metadata does not have g0 after the rename returned")
	}
}

// TestHeldRenameFailure checks that a held rename that metadata refuses
// makes the next fsync of a directory fail with EIO, once, and that
// metadata keeps the old name.
func TestHeldRenameFailure(t *testing.T) {
	w, g, d := mountGated(t, 1)
	g.err = fmt.Errorf("metadata unreachable: %w", syscall.EIO)
	if err := os.Rename(filepath.Join(d, "f0"), filepath.Join(d, "g0")); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	wantSyncFailsOnce(t, d, "a failed held rename")
	if !metaHas(t, w, d, "f0") || metaHas(t, w, d, "g0") {
		t.Error("metadata does not have f0 under its old name after the rename failed")
	}
}

// wantSyncFailsOnce checks that fsync of directory d fails with EIO, for
// the failure after, and that the next fsync succeeds.
func wantSyncFailsOnce(t *testing.T, d, after string) {
	t.Helper()
	f, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync after %s: got %v, want EIO", after, err)
	}
	if err := f.Sync(); err != nil {
		t.Errorf("second fsync: got %v, want success (the failure is told once)", err)
	}
}

// TestHeldRmdir checks that rm -r of a directory (its files unlinked, then
// the directory removed) returns before metadata has any of it, that a
// readdir of the parent started meanwhile waits and does not list the
// directory, and that fsync of the parent finds it gone from metadata.
func TestHeldRmdir(t *testing.T) {
	const n = 3
	w, g, d := mountGated(t, n)
	parent := filepath.Dir(d)
	removed := inBackground(func() error {
		for i := range n {
			if err := os.Remove(filepath.Join(d, fmt.Sprintf("f%d", i))); err != nil {
				return err
			}
		}
		return syscall.Rmdir(d)
	})
	if err := awaitDone(t, removed, "rm -r while metadata holds it back"); err != nil {
		t.Fatal(err)
	}
	if !metaHas(t, w, parent, "d") {
		t.Fatal("metadata lost d before the gate opened: the rmdir was not held back")
	}
	if names := readDirThenOpen(t, g, parent); slices.Contains(names, "d") {
		t.Errorf("readdir after the rmdir lists d: %q", strings.Join(names, " "))
	}
	fstest.SyncDir(t, parent)
	if metaHas(t, w, parent, "d") {
		t.Error("metadata still has d after fsync of its parent")
	}
}

// TestHeldRmdirOfDirFilledElsewhere checks the one way a held rmdir
// fails: another mount made a name in the directory this mount knew to be
// empty. The next fsync of the parent fails with EIO, and the directory
// stays, with the other mount's file in it.
func TestHeldRmdirOfDirFilledElsewhere(t *testing.T) {
	w := newWorld()
	opts := fs.Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour}
	first, _ := w.mount(t, opts)
	d := filepath.Join(first, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	second, _ := w.mount(t, opts)
	if err := os.WriteFile(filepath.Join(second, "d", "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(d); err != nil {
		t.Fatalf("rmdir of a directory the mount made and knows empty: %v", err)
	}
	wantSyncFailsOnce(t, first, "a held rmdir of a directory another mount filled")
	if !metaHas(t, w, first, "d") {
		t.Error("metadata lost d, which held another mount's file")
	}
	wantFile(t, filepath.Join(second, "d", "x"), []byte("x"))
}
