package fstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tick is how long a time-stamp subtest sleeps between recording a ctime and
// the operation expected to change it, so that the clock the file system
// stamps with has moved on. It is not an assertion: a slower file system
// passes as well. A file system with coarser time stamps than the default
// (20 ms, above the kernel's coarse clock granularity) may raise it before
// calling Run.
var Tick = 20 * time.Millisecond

// A test is one named subtest of the suite. fn gets a fresh, empty directory.
type test struct {
	name string
	fn   func(t *testing.T, dir string)
}

// tests lists the subtests of Run in order.
var tests = []test{
	// Files: io.go
	{"FileReadWrite", testFileReadWrite},
	{"Holes", testHoles},
	{"SparseLarge", testSparseLarge},
	{"Truncate", testTruncate},
	{"Append", testAppend},
	{"CreateExcl", testCreateExcl},
	{"OpenTrunc", testOpenTrunc},
	{"RandomWrites", testRandomWrites},
	{"UnlinkOpen", testUnlinkOpen},
	// Rename: rename.go
	{"RenameOverFile", testRenameOverFile},
	{"RenameAcrossDirs", testRenameAcrossDirs},
	{"RenameDir", testRenameDir},
	{"RenameErrors", testRenameErrors},
	{"RenameNoReplace", testRenameNoReplace},
	{"RenameExchange", testRenameExchange},
	// Directories and links: dir.go
	{"MkdirRmdir", testMkdirRmdir},
	{"ReadDirMany", testReadDirMany},
	{"Symlink", testSymlink},
	{"ByteNames", testByteNames},
	{"HardLink", testHardLink},
	// Attributes: attr.go
	{"Chmod", testChmod},
	{"Chown", testChown},
	{"Utimens", testUtimens},
	{"Statfs", testStatfs},
	{"Xattr", testXattr},
	{"Fsync", testFsync},
	{"Flock", testFlock},
	{"FcntlLock", testFcntlLock},
	// Errors: errno.go
	{"Errno", testErrno},
	// Permissions: perm.go
	{"PermOtherUser", testPermOtherUser},
	{"PermShell", testPermShell},
	{"Sticky", testSticky},
	{"Umask", testUmask},
	{"SetuidClearedOnWrite", testSetuidWrite},
	{"SetuidClearedOnChown", testSetuidChown},
	{"SetgidDir", testSetgidDir},
	// Times: times.go
	{"TimesCreate", testTimesCreate},
	{"TimesWrite", testTimesWrite},
	{"TimesChmod", testTimesChmod},
	{"TimesRename", testTimesRename},
	{"TimesTruncate", testTimesTruncate},
	// go-fuse's own suite: posix.go
	{"Posixtest", testPosixtest},
}

// Run runs the POSIX conformance suite against dir, one subtest per feature,
// each in its own new subdirectory of dir that is removed when it ends. dir
// must exist and be writable; Run must be called as root (see the package
// documentation). Subtests do not run in parallel with each other.
func Run(t *testing.T, dir string) {
	if os.Geteuid() != 0 {
		t.Fatalf("fstest.Run: got euid %d, want 0 (the suite changes owners and checks permissions as other users)", os.Geteuid())
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("fstest.Run: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, subdir(t, dir))
		})
	}
}

// subdir creates a fresh directory in dir named after the running test, with
// mode 0755, and removes it when the test ends.
func subdir(t *testing.T, dir string) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	d := filepath.Join(dir, name)
	if err := os.RemoveAll(d); err != nil {
		t.Fatalf("clearing %s: %v", d, err)
	}
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	t.Cleanup(func() {
		// Undo modes that would stop RemoveAll (a 0555 dir, a 0000 dir).
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		if err := os.RemoveAll(d); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d
}

// wantErrno fails the test unless err is errno. what names the call.
func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v (%s)", what, err, errnoName(want), want)
	}
}

// errnoName returns the symbolic name of e ("ENOENT"), or its number.
func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "success"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return strconv.Itoa(int(e))
}

// SyncDir fsyncs directory dir, failing the test now if that fails: what
// makes the names changed in it durable.
func SyncDir(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", dir, err)
	}
}

// check fails the test now if err is not nil.
func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// lstat returns the unix.Stat_t of p without following a final symlink.
func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	check(t, "lstat", unix.Lstat(p, &st))
	return st
}

// stat returns the unix.Stat_t of p, following symlinks.
func stat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	check(t, "stat", unix.Stat(p, &st))
	return st
}

// writeFile creates p with mode 0644 and contents data.
func writeFile(t *testing.T, p string, data string) {
	t.Helper()
	check(t, "write "+p, os.WriteFile(p, []byte(data), 0o644))
}

// wantContent fails the test unless the file p holds exactly want.
func wantContent(t *testing.T, p string, want string) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("read %s: %v", p, err)
		return
	}
	if string(got) != want {
		t.Errorf("content of %s: got %q, want %q", filepath.Base(p), abbrev(got), abbrev([]byte(want)))
	}
}

// abbrev shortens b for an error message.
func abbrev(b []byte) string {
	if len(b) <= 64 {
		return string(b)
	}
	return fmt.Sprintf("%s…(%d bytes)", b[:64], len(b))
}

// mkdir creates p, then sets its mode to exactly perm (ignoring the umask).
// perm is a Unix mode: 0o1777 is sticky, 0o2775 setgid.
func mkdir(t *testing.T, p string, perm uint32) {
	t.Helper()
	check(t, "mkdir", syscall.Mkdir(p, perm))
	check(t, "chmod", syscall.Chmod(p, perm))
}

// openFile opens p and closes it when the test ends.
func openFile(t *testing.T, p string, flag int, perm os.FileMode) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, flag, perm)
	check(t, "open "+filepath.Base(p), err)
	t.Cleanup(func() { f.Close() })
	return f
}

// processUmask returns the umask of this process, read from /proc so as not
// to change it.
func processUmask(t *testing.T) uint32 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	check(t, "open /proc/self/status", err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			check(t, "parse umask", err)
			return uint32(m)
		}
	}
	t.Fatalf("no Umask line in /proc/self/status")
	return 0
}

// pread reads n bytes at off from f, failing the test on a short read.
func pread(t *testing.T, f *os.File, off int64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	got, err := f.ReadAt(b, off)
	if err != nil {
		t.Fatalf("pread %d at %d: got %d bytes, error %v", n, off, got, err)
	}
	return b
}

// zeros reports whether b is all zero bytes.
func zeros(b []byte) bool {
	return bytes.Count(b, []byte{0}) == len(b)
}

// ts converts a unix.Timespec to a time.Time.
func ts(s unix.Timespec) time.Time {
	return time.Unix(s.Sec, s.Nsec)
}
