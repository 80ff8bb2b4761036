package fs_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shoal/cluster"
	"shoal/fs"
	"shoal/fs/fstest"
)

// mountWithDir mounts a new world whose metadata requests are counted,
// with directory changes held until something sends them, and makes
// directory d (mode 755) in it.
func mountWithDir(t *testing.T) (w *world, cm *countMeta, dir, d string) {
	t.Helper()
	w = newWorld()
	cm = &countMeta{Metadata: w.meta}
	w.meta = cm
	dir, _ = w.mount(t, fs.Options{DirAttrDelay: time.Hour})
	d = filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return w, cm, dir, d
}

// metaAttr returns what metadata itself holds for inode ino.
func metaAttr(t *testing.T, w *world, ino uint64) cluster.Attr {
	t.Helper()
	resp, err := w.local.Do(context.Background(), &cluster.MetaRequest{Op: cluster.OpGetAttr, Ino: ino})
	if err != nil {
		t.Fatalf("metadata getattr %d: %v", ino, err)
	}
	return resp.Attr
}

// copyDirAttrs does to p what cp -a does to each directory it made, once
// filled: set its times, owner and mode, and returns the mtime it set.
func copyDirAttrs(t *testing.T, p string, gid int, mode uint32) time.Time {
	t.Helper()
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 8000, time.UTC)
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
		t.Fatalf("utimensat %s: %v", p, err)
	}
	if err := os.Lchown(p, 0, gid); err != nil {
		t.Fatalf("chown %s: %v", p, err)
	}
	if err := syscall.Chmod(p, mode); err != nil {
		t.Fatalf("chmod %s: %v", p, err)
	}
	return mtime
}

// statIno returns p's attributes through the mount.
func statIno(t *testing.T, p string) syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDirAttrChangesGoTogether checks that the three attribute changes cp
// -a makes to a directory show at once through the mount, reach metadata
// as one request, and do so when the directory is fsynced.
func TestDirAttrChangesGoTogether(t *testing.T) {
	w, cm, _, d := mountWithDir(t)
	mtime := copyDirAttrs(t, d, 1234, 0o750)
	st := statIno(t, d)
	if st.Mode&0o7777 != 0o750 || st.Gid != 1234 || st.Mtim.Nano() != mtime.UnixNano() {
		t.Errorf("stat after the changes: got mode %o gid %d mtime %d, want 750 1234 %d", st.Mode&0o7777, st.Gid, st.Mtim.Nano(), mtime.UnixNano())
	}
	if got := cm.count(cluster.OpSetAttr); got != 0 {
		t.Errorf("setattrs sent before the delay: got %d, want 0", got)
	}
	if a := metaAttr(t, w, st.Ino); a.Mode&0o7777 != 0o755 {
		t.Errorf("metadata's mode before the delay: got %o, want 755", a.Mode&0o7777)
	}
	fstest.SyncDir(t, d)
	if got := cm.count(cluster.OpSetAttr); got != 1 {
		t.Errorf("setattrs sent by fsync: got %d, want 1 (all three changes together)", got)
	}
	a := metaAttr(t, w, st.Ino)
	if a.Mode&0o7777 != 0o750 || a.Gid != 1234 || a.Mtime != mtime.UnixNano() {
		t.Errorf("metadata after fsync: got mode %o gid %d mtime %d, want 750 1234 %d", a.Mode&0o7777, a.Gid, a.Mtime, mtime.UnixNano())
	}
	if time.Since(time.Unix(0, a.Ctime)) > time.Hour {
		t.Errorf("metadata's ctime after fsync: got %v, want about now", time.Unix(0, a.Ctime))
	}
}

// TestDirAttrChangesBeforeRequests checks that a directory's pending
// changes reach metadata before a request that names the directory (a
// new file's commit into it), and before a rmdir, which names it by
// its parent only.
func TestDirAttrChangesBeforeRequests(t *testing.T) {
	w, cm, dir, d := mountWithDir(t)
	mtime := copyDirAttrs(t, d, 99, 0o711)
	if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := cm.count(cluster.OpSetAttr); got != 1 {
		t.Errorf("setattrs sent before the commit into the directory: got %d, want 1", got)
	}
	a := metaAttr(t, w, statIno(t, d).Ino)
	// The new file's commit came after the changes, so it set the mtime.
	if a.Mode&0o7777 != 0o711 || a.Gid != 99 || a.Mtime == mtime.UnixNano() {
		t.Errorf("metadata after the commit: got mode %o gid %d mtime %d, want 711 99 and the commit's mtime", a.Mode&0o7777, a.Gid, a.Mtime)
	}
	e := filepath.Join(dir, "e")
	if err := os.Mkdir(e, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(e, 0o700); err != nil {
		t.Fatal(err)
	}
	before := cm.count(cluster.OpSetAttr)
	if err := os.Remove(e); err != nil {
		t.Fatalf("rmdir with a pending change: %v", err)
	}
	if got := cm.count(cluster.OpSetAttr) - before; got != 1 {
		t.Errorf("setattrs sent before the rmdir: got %d, want 1", got)
	}
}

// TestDirAttrChangesAtUnmount checks that unmounting sends the changes
// still waiting: a new mount sees them.
func TestDirAttrChangesAtUnmount(t *testing.T) {
	w := newWorld()
	dir, unmount := w.mount(t, fs.Options{DirAttrDelay: time.Hour})
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := copyDirAttrs(t, d, 4321, 0o705)
	unmount()
	dir, _ = w.mount(t, fs.Options{})
	st := statIno(t, filepath.Join(dir, "d"))
	if st.Mode&0o7777 != 0o705 || st.Gid != 4321 || st.Mtim.Nano() != mtime.UnixNano() {
		t.Errorf("stat after remount: got mode %o gid %d mtime %d, want 705 4321 %d", st.Mode&0o7777, st.Gid, st.Mtim.Nano(), mtime.UnixNano())
	}
}

// TestDirAttrChangesSentSoon checks that with the default delay a change
// reaches metadata by itself, with nothing else to send it.
func TestDirAttrChangesSentSoon(t *testing.T) {
	w := newWorld()
	dir, _ := w.mount(t, fs.Options{})
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(d, 0o701); err != nil {
		t.Fatal(err)
	}
	ino := statIno(t, d).Ino
	deadline := time.Now().Add(10 * time.Second)
	for metaAttr(t, w, ino).Mode&0o7777 != 0o701 {
		if time.Now().After(deadline) {
			t.Fatalf("metadata's mode 10s after chmod: got %o, want 701", metaAttr(t, w, ino).Mode&0o7777)
		}
		time.Sleep(time.Millisecond)
	}
}
