package fstest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// past is the atime and mtime that time subtests set before an operation.
var past = unix.Timespec{Sec: 1_000_000_000, Nsec: 5}

// setPast sets the atime and mtime of p to past.
func setPast(t *testing.T, p string) {
	t.Helper()
	check(t, "utimensat", unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{past, past}, unix.AT_SYMLINK_NOFOLLOW))
}

// settle sets the times of each path to past, waits a Tick, and returns the
// stat of each, so that a following operation's effect on ctime shows.
func settle(t *testing.T, paths ...string) []unix.Stat_t {
	t.Helper()
	for _, p := range paths {
		setPast(t, p)
	}
	time.Sleep(Tick)
	sts := make([]unix.Stat_t, len(paths))
	for i, p := range paths {
		sts[i] = lstat(t, p)
	}
	return sts
}

// wantTimes compares the times of p with before: each of a, m and c says
// whether that time must have moved forwards ('+') or stayed equal ('=').
func wantTimes(t *testing.T, what, p string, before unix.Stat_t, a, m, c byte) {
	t.Helper()
	after := lstat(t, p)
	for _, x := range []struct {
		name          string
		want          byte
		before, after unix.Timespec
	}{{"atime", a, before.Atim, after.Atim}, {"mtime", m, before.Mtim, after.Mtim}, {"ctime", c, before.Ctim, after.Ctim}} {
		b, g := ts(x.before), ts(x.after)
		switch {
		case x.want == '=' && !g.Equal(b):
			t.Errorf("%s: %s of %s: got %v, want unchanged %v", what, x.name, filepath.Base(p), g, b)
		case x.want == '+' && !g.After(b):
			t.Errorf("%s: %s of %s: got %v, want later than %v", what, x.name, filepath.Base(p), g, b)
		}
	}
}

// testTimesCreate checks a new file gets current times and its parent's
// mtime and ctime change.
func testTimesCreate(t *testing.T, dir string) {
	pb := settle(t, dir)[0]
	before := time.Now()
	p := filepath.Join(dir, "f")
	writeFile(t, p, "")
	after := time.Now()
	st := stat(t, p)
	for name, x := range map[string]unix.Timespec{"atime": st.Atim, "mtime": st.Mtim, "ctime": st.Ctim} {
		// The kernel's coarse clock may lag time.Now by a tick; allow a
		// second either way for a server's clock.
		if g := ts(x); g.Before(before.Add(-time.Second)) || g.After(after.Add(time.Second)) {
			t.Errorf("%s of new file: got %v, want about %v", name, g, before)
		}
	}
	wantTimes(t, "create", dir, pb, '=', '+', '+')
	// mkdir too.
	pb = settle(t, dir)[0]
	check(t, "mkdir", os.Mkdir(filepath.Join(dir, "d"), 0o755))
	wantTimes(t, "mkdir", dir, pb, '=', '+', '+')
	// unlink changes the parent's mtime and ctime.
	pb = settle(t, dir)[0]
	check(t, "unlink", os.Remove(p))
	wantTimes(t, "unlink", dir, pb, '=', '+', '+')
}

// testTimesWrite checks a write updates mtime and ctime but not atime, and a
// read leaves mtime and ctime alone.
func testTimesWrite(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "data")
	f := openFile(t, p, os.O_RDWR, 0)
	b := settle(t, p)[0]
	if _, err := f.WriteAt([]byte("more"), 4); err != nil {
		t.Fatalf("write: %v", err)
	}
	check(t, "fsync", f.Sync())
	wantTimes(t, "write", p, b, '=', '+', '+')
	// Reading never changes mtime or ctime (atime depends on mount options).
	b = settle(t, p)[0]
	pread(t, f, 0, 8)
	check(t, "close", f.Close())
	wantTimes(t, "read", p, b, '?', '=', '=')
}

// testTimesChmod checks chmod, chown and xattr changes update ctime only.
func testTimesChmod(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "data")
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"chmod", func() error { return os.Chmod(p, 0o600) }},
		{"chown", func() error { return os.Chown(p, uidA, uidA) }},
		{"link", func() error { return os.Link(p, p+"2") }},
		{"setxattr", func() error { return unix.Setxattr(p, "user.t", []byte("v"), 0) }},
	} {
		b := settle(t, p)[0]
		check(t, tc.name, tc.fn())
		wantTimes(t, tc.name, p, b, '=', '=', '+')
	}
}

// testTimesRename checks rename updates the moved file's ctime and the
// mtime and ctime of both parents.
func testTimesRename(t *testing.T, dir string) {
	d1, d2 := filepath.Join(dir, "d1"), filepath.Join(dir, "d2")
	mkdir(t, d1, 0o755)
	mkdir(t, d2, 0o755)
	p := filepath.Join(d1, "f")
	writeFile(t, p, "data")
	b := settle(t, p, d1, d2)
	q := filepath.Join(d2, "g")
	check(t, "rename", os.Rename(p, q))
	wantTimes(t, "rename", q, b[0], '=', '=', '+')
	wantTimes(t, "rename", d1, b[1], '=', '+', '+')
	wantTimes(t, "rename", d2, b[2], '=', '+', '+')
	// A rename within one directory.
	b = settle(t, q, d2)
	check(t, "rename", os.Rename(q, filepath.Join(d2, "h")))
	wantTimes(t, "rename in place", filepath.Join(d2, "h"), b[0], '=', '=', '+')
	wantTimes(t, "rename in place", d2, b[1], '=', '+', '+')
}

// testTimesTruncate checks truncate updates mtime and ctime.
func testTimesTruncate(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "0123456789")
	b := settle(t, p)[0]
	check(t, "truncate", os.Truncate(p, 4))
	wantTimes(t, "truncate down", p, b, '=', '+', '+')
	b = settle(t, p)[0]
	check(t, "truncate", os.Truncate(p, 100))
	wantTimes(t, "truncate up", p, b, '=', '+', '+')
	f := openFile(t, p, os.O_RDWR, 0)
	b = settle(t, p)[0]
	check(t, "ftruncate", f.Truncate(0))
	wantTimes(t, "ftruncate", p, b, '=', '+', '+')
	// O_TRUNC on open.
	writeFile(t, p, "again")
	b = settle(t, p)[0]
	g := openFile(t, p, os.O_WRONLY|os.O_TRUNC, 0)
	g.Close()
	wantTimes(t, "O_TRUNC", p, b, '=', '+', '+')
}
