package fs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/cluster"
	"shoal/fs"
)

// unlinkGate holds every unlink request at metadata until open is
// closed; then each fails with err if it is set, else goes through.
type unlinkGate struct {
	fs.Metadata
	open chan struct{}
	err  error
}

func (g *unlinkGate) Do(ctx context.Context, req *cluster.MetaRequest) (*cluster.MetaResponse, error) {
	if req.Op == cluster.OpUnlink {
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

// mountGated mounts a new world whose unlinks wait at metadata behind a
// gate, with directory d holding files f0 … f(n-1), each closed.
// Attributes stay fresh for an hour: the kernel asks for d's before each
// unlink, and were they to go stale on a slow machine, the mount would
// rightly ask metadata, which waits for the unlinks held behind the gate.
func mountGated(t *testing.T, n int) (w *world, g *unlinkGate, d string) {
	t.Helper()
	w = newWorld()
	g = &unlinkGate{Metadata: w.meta, open: make(chan struct{})}
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
	return w, g, d
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
	listed := make(chan []string, 1)
	go func() {
		names, err := os.ReadDir(d)
		if err != nil {
			t.Error(err)
		}
		var out []string
		for _, e := range names {
			out = append(out, e.Name())
		}
		listed <- out
	}()
	time.Sleep(100 * time.Millisecond) // let the readdir reach the mount first
	close(g.open)
	if names := <-listed; len(names) != 0 {
		t.Errorf("readdir after the unlinks listed %q, want nothing", strings.Join(names, " "))
	}
	syncDir(t, d)
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
	f, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync after a failed held unlink: got %v, want EIO", err)
	}
	if err := f.Sync(); err != nil {
		t.Errorf("second fsync: got %v, want success (the failure is told once)", err)
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "old" {
		t.Errorf("read %s after its unlink failed: got %q, %v; want \"old\"", p, got, err)
	}
}
