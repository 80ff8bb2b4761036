package fstest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testChmod checks chmod and fchmod, including the special bits.
func testChmod(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "x")
	for _, mode := range []uint32{0o640, 0o000, 0o777, 0o4755, 0o2755, 0o1755, 0o7777, 0o644} {
		check(t, "chmod", syscall.Chmod(p, mode))
		if got := stat(t, p).Mode; got&0o7777 != mode || got&syscall.S_IFMT != syscall.S_IFREG {
			t.Errorf("chmod %o: got mode %o, want regular file %o", mode, got, mode)
		}
	}
	f := openFile(t, p, os.O_RDONLY, 0)
	check(t, "fchmod", syscall.Fchmod(int(f.Fd()), 0o604))
	if got := stat(t, p).Mode & 0o7777; got != 0o604 {
		t.Errorf("fchmod: got mode %o, want 604", got)
	}
	d := filepath.Join(dir, "d")
	mkdir(t, d, 0o755)
	check(t, "chmod dir", syscall.Chmod(d, 0o3700))
	if got := stat(t, d).Mode; got&0o7777 != 0o3700 || got&syscall.S_IFMT != syscall.S_IFDIR {
		t.Errorf("chmod dir: got mode %o, want dir 3700", got)
	}
	wantErrno(t, "chmod missing", syscall.Chmod(filepath.Join(dir, "missing"), 0o644), syscall.ENOENT)
}

// testChown checks chown, fchown and lchown as root.
func testChown(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "x")
	check(t, "chown", os.Chown(p, uidA, uidB))
	if st := stat(t, p); st.Uid != uidA || st.Gid != uidB {
		t.Errorf("chown: got %d:%d, want %d:%d", st.Uid, st.Gid, uidA, uidB)
	}
	check(t, "chown -1", os.Chown(p, -1, 0))
	if st := stat(t, p); st.Uid != uidA || st.Gid != 0 {
		t.Errorf("chown -1:0: got %d:%d, want %d:0", st.Uid, st.Gid, uidA)
	}
	f := openFile(t, p, os.O_RDONLY, 0)
	check(t, "fchown", f.Chown(uidB, uidA))
	if st := stat(t, p); st.Uid != uidB || st.Gid != uidA {
		t.Errorf("fchown: got %d:%d, want %d:%d", st.Uid, st.Gid, uidB, uidA)
	}
	l := filepath.Join(dir, "l")
	check(t, "symlink", os.Symlink("f", l))
	check(t, "lchown", os.Lchown(l, uidA, uidA))
	if st := lstat(t, l); st.Uid != uidA || st.Gid != uidA {
		t.Errorf("lchown link: got %d:%d, want %d:%d", st.Uid, st.Gid, uidA, uidA)
	}
	if st := stat(t, p); st.Uid != uidB || st.Gid != uidA {
		t.Errorf("target after lchown: got %d:%d, want unchanged %d:%d", st.Uid, st.Gid, uidB, uidA)
	}
	// A file created by root is owned by root.
	writeFile(t, filepath.Join(dir, "g"), "")
	if st := stat(t, filepath.Join(dir, "g")); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("owner of root's new file: got %d:%d, want 0:0", st.Uid, st.Gid)
	}
}

// testUtimens checks utimensat with explicit times, UTIME_NOW and UTIME_OMIT.
func testUtimens(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "x")
	at := unix.Timespec{Sec: 1_000_000_000, Nsec: 123_456_789}
	mt := unix.Timespec{Sec: 1_100_000_000, Nsec: 987_654_321}
	check(t, "utimensat", unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{at, mt}, 0))
	st := stat(t, p)
	if st.Atim != at || st.Mtim != mt {
		t.Errorf("utimensat: got atime %v mtime %v, want %v, %v", ts(st.Atim), ts(st.Mtim), ts(at), ts(mt))
	}
	// UTIME_OMIT keeps atime, UTIME_NOW sets mtime to now.
	before := time.Now()
	check(t, "utimensat OMIT/NOW", unix.UtimesNanoAt(unix.AT_FDCWD, p,
		[]unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_NOW}}, 0))
	after := time.Now()
	st = stat(t, p)
	if st.Atim != at {
		t.Errorf("UTIME_OMIT atime: got %v, want %v", ts(st.Atim), ts(at))
	}
	if m := ts(st.Mtim); m.Before(before.Add(-time.Second)) || m.After(after.Add(time.Second)) {
		t.Errorf("UTIME_NOW mtime: got %v, want about %v", m, before)
	}
	// The other way round.
	check(t, "utimensat NOW/OMIT", unix.UtimesNanoAt(unix.AT_FDCWD, p,
		[]unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_OMIT}}, 0))
	st2 := stat(t, p)
	if st2.Mtim != st.Mtim {
		t.Errorf("UTIME_OMIT mtime: got %v, want %v", ts(st2.Mtim), ts(st.Mtim))
	}
	if a := ts(st2.Atim); a.Before(before.Add(-time.Second)) {
		t.Errorf("UTIME_NOW atime: got %v, want about %v", a, before)
	}
	// Times of a symlink itself, not its target.
	l := filepath.Join(dir, "l")
	check(t, "symlink", os.Symlink("f", l))
	check(t, "utimensat nofollow", unix.UtimesNanoAt(unix.AT_FDCWD, l, []unix.Timespec{at, at}, unix.AT_SYMLINK_NOFOLLOW))
	if got := lstat(t, l).Mtim; got != at {
		t.Errorf("symlink mtime: got %v, want %v", ts(got), ts(at))
	}
	if got := stat(t, p).Mtim; got != st2.Mtim {
		t.Errorf("target mtime after setting the link's: got %v, want unchanged %v", ts(got), ts(st2.Mtim))
	}
	// Before 1970.
	old := unix.Timespec{Sec: -86400}
	check(t, "utimensat 1969", unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{old, old}, 0))
	if got := stat(t, p).Mtim; got != old {
		t.Errorf("mtime before 1970: got %v, want %v", ts(got), ts(old))
	}
}

// testStatfs checks statfs returns sane numbers.
func testStatfs(t *testing.T, dir string) {
	var s unix.Statfs_t
	check(t, "statfs", unix.Statfs(dir, &s))
	if s.Bsize <= 0 || s.Blocks == 0 || s.Namelen == 0 {
		t.Errorf("statfs: got bsize %d blocks %d namelen %d, want all > 0", s.Bsize, s.Blocks, s.Namelen)
	}
	if s.Bfree > s.Blocks || s.Bavail > s.Bfree {
		t.Errorf("statfs: got blocks %d free %d avail %d, want avail <= free <= blocks", s.Blocks, s.Bfree, s.Bavail)
	}
	if s.Ffree > s.Files {
		t.Errorf("statfs: got files %d ffree %d, want ffree <= files", s.Files, s.Ffree)
	}
	f := openFile(t, filepath.Join(dir, "f"), os.O_RDWR|os.O_CREATE, 0o644)
	var fs unix.Statfs_t
	check(t, "fstatfs", unix.Fstatfs(int(f.Fd()), &fs))
	if fs.Type != s.Type || fs.Bsize != s.Bsize {
		t.Errorf("fstatfs: got type %#x bsize %d, want statfs's %#x %d", fs.Type, fs.Bsize, s.Type, s.Bsize)
	}
}

// testXattr checks extended attributes in the user namespace.
func testXattr(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "x")
	check(t, "setxattr", unix.Setxattr(p, "user.a", []byte("value-a"), 0))
	check(t, "setxattr", unix.Setxattr(p, "user.b", []byte{0, 1, 2, 255}, 0))
	check(t, "setxattr empty", unix.Setxattr(p, "user.empty", nil, 0))
	// Size probe with a zero buffer, then the value.
	n, err := unix.Getxattr(p, "user.a", nil)
	if err != nil || n != 7 {
		t.Errorf("getxattr size probe: got %d, %v, want 7", n, err)
	}
	buf := make([]byte, 64)
	n, err = unix.Getxattr(p, "user.a", buf)
	if err != nil || string(buf[:n]) != "value-a" {
		t.Errorf("getxattr: got %q, %v, want %q", buf[:n], err, "value-a")
	}
	n, err = unix.Getxattr(p, "user.b", buf)
	if err != nil || !bytes.Equal(buf[:n], []byte{0, 1, 2, 255}) {
		t.Errorf("getxattr binary: got %v, %v, want [0 1 2 255]", buf[:n], err)
	}
	n, err = unix.Getxattr(p, "user.empty", buf)
	if err != nil || n != 0 {
		t.Errorf("getxattr empty: got %d, %v, want 0", n, err)
	}
	_, err = unix.Getxattr(p, "user.a", make([]byte, 3))
	wantErrno(t, "getxattr too small buffer", err, syscall.ERANGE)
	_, err = unix.Getxattr(p, "user.missing", buf)
	wantErrno(t, "getxattr missing", err, syscall.ENODATA)
	// Flags.
	wantErrno(t, "XATTR_CREATE existing", unix.Setxattr(p, "user.a", []byte("z"), unix.XATTR_CREATE), syscall.EEXIST)
	wantErrno(t, "XATTR_REPLACE missing", unix.Setxattr(p, "user.new", []byte("z"), unix.XATTR_REPLACE), syscall.ENODATA)
	check(t, "XATTR_REPLACE existing", unix.Setxattr(p, "user.a", []byte("v2"), unix.XATTR_REPLACE))
	check(t, "XATTR_CREATE new", unix.Setxattr(p, "user.c", []byte("c"), unix.XATTR_CREATE))
	n, err = unix.Getxattr(p, "user.a", buf)
	if err != nil || string(buf[:n]) != "v2" {
		t.Errorf("getxattr after replace: got %q, %v, want %q", buf[:n], err, "v2")
	}
	// List.
	wantList(t, p, []string{"user.a", "user.b", "user.c", "user.empty"})
	check(t, "removexattr", unix.Removexattr(p, "user.b"))
	wantErrno(t, "removexattr missing", unix.Removexattr(p, "user.b"), syscall.ENODATA)
	_, err = unix.Getxattr(p, "user.b", buf)
	wantErrno(t, "getxattr removed", err, syscall.ENODATA)
	wantList(t, p, []string{"user.a", "user.c", "user.empty"})
	// Through an fd and on a directory.
	f := openFile(t, p, os.O_RDONLY, 0)
	n, err = unix.Fgetxattr(int(f.Fd()), "user.c", buf)
	if err != nil || string(buf[:n]) != "c" {
		t.Errorf("fgetxattr: got %q, %v, want %q", buf[:n], err, "c")
	}
	check(t, "setxattr dir", unix.Setxattr(dir, "user.d", []byte("dir"), 0))
	n, err = unix.Getxattr(dir, "user.d", buf)
	if err != nil || string(buf[:n]) != "dir" {
		t.Errorf("getxattr dir: got %q, %v, want %q", buf[:n], err, "dir")
	}
	// Attributes follow the inode, through hard links and renames.
	check(t, "link", os.Link(p, p+"2"))
	check(t, "rename", os.Rename(p, p+"3"))
	n, err = unix.Getxattr(p+"2", "user.a", buf)
	if err != nil || string(buf[:n]) != "v2" {
		t.Errorf("getxattr via link after rename: got %q, %v, want %q", buf[:n], err, "v2")
	}
	wantErrno(t, "setxattr invalid flags", unix.Setxattr(p+"2", "user.x", []byte("x"), 4), syscall.EINVAL)
}

// wantList checks the user.* names listxattr returns, probing the size
// first and checking a too-small buffer gives ERANGE.
func wantList(t *testing.T, p string, want []string) {
	t.Helper()
	n, err := unix.Listxattr(p, nil)
	check(t, "listxattr size probe", err)
	if n > 0 {
		_, err = unix.Listxattr(p, make([]byte, n-1))
		wantErrno(t, "listxattr too small buffer", err, syscall.ERANGE)
	}
	buf := make([]byte, n)
	n, err = unix.Listxattr(p, buf)
	check(t, "listxattr", err)
	var got []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if strings.HasPrefix(name, "user.") {
			got = append(got, name)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("listxattr: got %q, want %q", got, want)
	}
}

// testFsync checks fsync and fdatasync succeed on files and directories.
func testFsync(t *testing.T, dir string) {
	f := openFile(t, filepath.Join(dir, "f"), os.O_RDWR|os.O_CREATE, 0o644)
	if _, err := f.Write([]byte("durable")); err != nil {
		t.Fatalf("write: %v", err)
	}
	check(t, "fsync", unix.Fsync(int(f.Fd())))
	check(t, "fdatasync", unix.Fdatasync(int(f.Fd())))
	check(t, "fsync again", unix.Fsync(int(f.Fd())))
	d, err := os.Open(dir)
	check(t, "open dir", err)
	defer d.Close()
	check(t, "fsync dir", unix.Fsync(int(d.Fd())))
	check(t, "close", f.Close())
	wantContent(t, filepath.Join(dir, "f"), "durable")
}

// testFlock checks flock conflicts between two open file descriptions.
func testFlock(t *testing.T, dir string) {
	p := filepath.Join(dir, "lock")
	writeFile(t, p, "")
	a := openFile(t, p, os.O_RDWR, 0)
	b := openFile(t, p, os.O_RDWR, 0)
	check(t, "flock LOCK_EX", unix.Flock(int(a.Fd()), unix.LOCK_EX))
	wantErrno(t, "second LOCK_EX|LOCK_NB", unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB), syscall.EWOULDBLOCK)
	wantErrno(t, "second LOCK_SH|LOCK_NB", unix.Flock(int(b.Fd()), unix.LOCK_SH|unix.LOCK_NB), syscall.EWOULDBLOCK)
	check(t, "flock LOCK_UN", unix.Flock(int(a.Fd()), unix.LOCK_UN))
	check(t, "second LOCK_EX|LOCK_NB after unlock", unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	check(t, "flock LOCK_UN", unix.Flock(int(b.Fd()), unix.LOCK_UN))
	// Shared locks coexist.
	check(t, "LOCK_SH", unix.Flock(int(a.Fd()), unix.LOCK_SH|unix.LOCK_NB))
	check(t, "second LOCK_SH", unix.Flock(int(b.Fd()), unix.LOCK_SH|unix.LOCK_NB))
	// Closing releases.
	check(t, "close", a.Close())
	check(t, "upgrade after other closed", unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB))
}

// testFcntlLock checks a child process sees a byte-range lock this process
// holds.
func testFcntlLock(t *testing.T, dir string) {
	p := filepath.Join(dir, "lock")
	writeFile(t, p, "0123456789")
	f := openFile(t, p, os.O_RDWR, 0)
	lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 10, Len: 20}
	check(t, "F_SETLK", unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk))
	e, _ := runChild(t, childOp{Uid: -1, Umask: -1, Op: "setlk", Path: p})
	if e != syscall.EAGAIN && e != syscall.EACCES {
		t.Errorf("child F_SETLK on locked range: got %s, want EAGAIN or EACCES", errnoName(e))
	}
	e, info := runChild(t, childOp{Uid: -1, Umask: -1, Op: "getlk", Path: p})
	if want := fmt.Sprintf("type=%d pid=%d start=10 len=20", unix.F_WRLCK, os.Getpid()); e != 0 || info != want {
		t.Errorf("child F_GETLK: got %s %q, want success and %q", errnoName(e), info, want)
	}
	// Our own lock does not conflict with us.
	own := unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 100}
	check(t, "F_GETLK own", unix.FcntlFlock(f.Fd(), unix.F_GETLK, &own))
	if own.Type != unix.F_UNLCK {
		t.Errorf("F_GETLK against own lock: got type %d, want F_UNLCK (%d)", own.Type, unix.F_UNLCK)
	}
	lk.Type = unix.F_UNLCK
	check(t, "unlock", unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk))
	e, _ = runChild(t, childOp{Uid: -1, Umask: -1, Op: "setlk", Path: p})
	wantChild(t, "child F_SETLK after unlock", e, 0)
}
