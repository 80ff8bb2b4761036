package fstest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testMkdirRmdir checks mkdir and rmdir and their errnos.
func testMkdirRmdir(t *testing.T, dir string) {
	d := filepath.Join(dir, "d")
	nl := stat(t, dir).Nlink
	check(t, "mkdir", os.Mkdir(d, 0o750))
	st := stat(t, d)
	if want := 0o750 &^ processUmask(t); st.Mode&0o7777 != want || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		t.Errorf("mode of new dir: got %o, want dir %o", st.Mode, want)
	}
	if st.Nlink != 2 {
		t.Errorf("nlink of new dir: got %d, want 2", st.Nlink)
	}
	if got := stat(t, dir).Nlink; got != nl+1 {
		t.Errorf("nlink of parent after mkdir: got %d, want %d", got, nl+1)
	}
	wantErrno(t, "mkdir existing", os.Mkdir(d, 0o755), syscall.EEXIST)
	f := filepath.Join(d, "f")
	writeFile(t, f, "x")
	wantErrno(t, "mkdir over file", os.Mkdir(f, 0o755), syscall.EEXIST)
	wantErrno(t, "rmdir non-empty", syscall.Rmdir(d), syscall.ENOTEMPTY)
	wantErrno(t, "rmdir file", syscall.Rmdir(f), syscall.ENOTDIR)
	wantErrno(t, "rmdir missing", syscall.Rmdir(filepath.Join(dir, "missing")), syscall.ENOENT)
	check(t, "unlink", os.Remove(f))
	check(t, "rmdir", syscall.Rmdir(d))
	_, err := os.Stat(d)
	wantErrno(t, "stat removed dir", err, syscall.ENOENT)
	if got := stat(t, dir).Nlink; got != nl {
		t.Errorf("nlink of parent after rmdir: got %d, want %d", got, nl)
	}
	// Nested creation and removal.
	check(t, "mkdir -p", os.MkdirAll(filepath.Join(dir, "x", "y", "z"), 0o755))
	check(t, "rm -r", os.RemoveAll(filepath.Join(dir, "x")))
}

// testReadDirMany lists a directory with 10,000 entries.
func testReadDirMany(t *testing.T, dir string) {
	const n = 10000
	d := filepath.Join(dir, "many")
	mkdir(t, d, 0o755)
	want := make(map[string]bool, n)
	for i := range n {
		name := fmt.Sprintf("file-%05d", i)
		if i%10 == 0 {
			name = fmt.Sprintf("dir-%05d", i)
			check(t, "mkdir", os.Mkdir(filepath.Join(d, name), 0o755))
		} else {
			f, err := os.Create(filepath.Join(d, name))
			check(t, "create", err)
			f.Close()
		}
		want[name] = true
	}
	listOnce(t, d, want)
	// Delete every other entry and list again.
	for i := 0; i < n; i += 2 {
		name := fmt.Sprintf("file-%05d", i)
		if i%10 == 0 {
			name = fmt.Sprintf("dir-%05d", i)
		}
		check(t, "remove", os.Remove(filepath.Join(d, name)))
		delete(want, name)
	}
	listOnce(t, d, want)
}

// listOnce reads d in small batches and checks every name in want is
// returned exactly once and nothing else is.
func listOnce(t *testing.T, d string, want map[string]bool) {
	t.Helper()
	f, err := os.Open(d)
	check(t, "open dir", err)
	defer f.Close()
	seen := make(map[string]int, len(want))
	for {
		names, err := f.Readdirnames(257)
		for _, name := range names {
			seen[name]++
		}
		if err == io.EOF {
			break
		}
		check(t, "readdir", err)
	}
	bad := 0
	for name, c := range seen {
		if c != 1 || !want[name] {
			if bad++; bad < 10 {
				t.Errorf("readdir: got %q %d times, want it %s", name, c, map[bool]string{true: "once", false: "absent"}[want[name]])
			}
		}
	}
	for name := range want {
		if seen[name] == 0 {
			if bad++; bad < 10 {
				t.Errorf("readdir: got no %q, want it once", name)
			}
		}
	}
	if bad > 0 {
		t.Errorf("readdir: %d wrong names of %d listed, want %d entries", bad, len(seen), len(want))
	}
}

// testSymlink checks symlink, readlink, lstat and stat.
func testSymlink(t *testing.T, dir string) {
	p := func(s string) string { return filepath.Join(dir, s) }
	writeFile(t, p("target"), "through the link")
	mkdir(t, p("sub"), 0o755)
	for _, tc := range []struct {
		link, target string
	}{
		{"rel", "target"},
		{"sub/up", "../target"},
		{"abs", p("target")},
	} {
		check(t, "symlink", os.Symlink(tc.target, p(tc.link)))
		got, err := os.Readlink(p(tc.link))
		check(t, "readlink", err)
		if got != tc.target {
			t.Errorf("readlink %s: got %q, want %q", tc.link, got, tc.target)
		}
		lst := lstat(t, p(tc.link))
		if lst.Mode&syscall.S_IFMT != syscall.S_IFLNK || lst.Size != int64(len(tc.target)) {
			t.Errorf("lstat %s: got mode %o size %d, want symlink of size %d", tc.link, lst.Mode, lst.Size, len(tc.target))
		}
		st := stat(t, p(tc.link))
		if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Ino != stat(t, p("target")).Ino {
			t.Errorf("stat %s: got mode %o ino %d, want the target regular file", tc.link, st.Mode, st.Ino)
		}
		wantContent(t, p(tc.link), "through the link")
	}
	// Writing through a link writes the target.
	writeFile(t, p("rel"), "rewritten")
	wantContent(t, p("target"), "rewritten")
	// A dangling link: lstat works, stat and open fail.
	check(t, "symlink", os.Symlink("nowhere", p("dangling")))
	lstat(t, p("dangling"))
	_, err := os.Stat(p("dangling"))
	wantErrno(t, "stat dangling link", err, syscall.ENOENT)
	// readlink of a non-link.
	_, err = os.Readlink(p("target"))
	wantErrno(t, "readlink of a file", err, syscall.EINVAL)
	wantErrno(t, "symlink over existing", os.Symlink("x", p("target")), syscall.EEXIST)
	// Removing the link leaves the target.
	check(t, "unlink link", os.Remove(p("rel")))
	wantContent(t, p("target"), "rewritten")
	// A link to a directory resolves as a path component.
	check(t, "symlink", os.Symlink("sub", p("dirlink")))
	writeFile(t, p("dirlink/viaLink"), "v")
	wantContent(t, p("sub/viaLink"), "v")
}

// testHardLink checks link counts and shared content.
func testHardLink(t *testing.T, dir string) {
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	writeFile(t, a, "shared")
	if got := stat(t, a).Nlink; got != 1 {
		t.Errorf("nlink of new file: got %d, want 1", got)
	}
	check(t, "link", os.Link(a, b))
	check(t, "link", os.Link(b, c))
	sa, sb := stat(t, a), stat(t, b)
	if sa.Nlink != 3 || sb.Nlink != 3 || sa.Ino != sb.Ino {
		t.Errorf("after two links: got nlink %d/%d ino %d/%d, want 3/3 and equal inodes", sa.Nlink, sb.Nlink, sa.Ino, sb.Ino)
	}
	// Content and metadata are shared.
	f := openFile(t, b, os.O_WRONLY|os.O_APPEND, 0)
	if _, err := f.Write([]byte(" content")); err != nil {
		t.Fatalf("write: %v", err)
	}
	check(t, "close", f.Close())
	wantContent(t, a, "shared content")
	check(t, "chmod", os.Chmod(c, 0o600))
	if got := stat(t, a).Mode & 0o7777; got != 0o600 {
		t.Errorf("mode via other link: got %o, want 600", got)
	}
	check(t, "unlink", os.Remove(a))
	if got := stat(t, b).Nlink; got != 2 {
		t.Errorf("nlink after one unlink: got %d, want 2", got)
	}
	check(t, "unlink", os.Remove(c))
	if got := stat(t, b).Nlink; got != 1 {
		t.Errorf("nlink after two unlinks: got %d, want 1", got)
	}
	wantContent(t, b, "shared content")
	// Errors.
	d := filepath.Join(dir, "d")
	mkdir(t, d, 0o755)
	wantErrno(t, "link to a directory", os.Link(d, filepath.Join(dir, "dl")), syscall.EPERM)
	writeFile(t, a, "other")
	wantErrno(t, "link onto existing name", os.Link(b, a), syscall.EEXIST)
	wantErrno(t, "link of missing file", os.Link(filepath.Join(dir, "missing"), filepath.Join(dir, "m2")), syscall.ENOENT)
	// A link into another directory.
	check(t, "link across dirs", os.Link(b, filepath.Join(d, "b")))
	wantContent(t, filepath.Join(d, "b"), "shared content")
	if got := stat(t, b).Nlink; got != 2 {
		t.Errorf("nlink after link into subdir: got %d, want 2", got)
	}
}

// testByteNames checks that names are bytes, not text: names that are not
// valid UTF-8 (Latin-1 from an old archive, a cut multi-byte character)
// are stored, listed, renamed, linked and removed exactly, never folded
// into one another or into their UTF-8 look-alikes; the same goes for
// symbolic link targets and extended attribute names.
func testByteNames(t *testing.T, dir string) {
	p := func(s string) string { return filepath.Join(dir, s) }
	names := []string{
		"caf\xe9",          // Latin-1
		"caf\u00e9",        // the same word in UTF-8
		"caf\ufffd",        // what a decoder that replaces bad bytes makes of the first
		"a\xffb", "a\xfeb", // differ only in a byte that is not UTF-8
		"cut\xc3",                   // a multi-byte character cut short
		"sur\xed\xa0\x80",           // an encoded surrogate, invalid in UTF-8
		strings.Repeat("\xff", 255), // as long as a name may be
	}
	for i, name := range names {
		f := openFile(t, p(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if _, err := fmt.Fprintf(f, "file %d", i); err != nil {
			t.Fatalf("write %q: %v", name, err)
		}
		check(t, "close", f.Close())
	}
	_, err := os.Create(p(strings.Repeat("\xff", 256)))
	wantErrno(t, "create a 256-byte name", err, syscall.ENAMETOOLONG)
	listOnce(t, dir, setOf(names...))
	for i, name := range names {
		wantContent(t, p(name), fmt.Sprintf("file %d", i))
	}

	// Rename into a directory whose name is not UTF-8 either, and back out.
	d := p("dir\xfe")
	mkdir(t, d, 0o755)
	check(t, "rename", os.Rename(p("a\xffb"), filepath.Join(d, "moved\xff")))
	wantContent(t, filepath.Join(d, "moved\xff"), "file 3")
	wantContent(t, p("a\xfeb"), "file 4")
	listOnce(t, d, setOf("moved\xff"))
	check(t, "rename", os.Rename(filepath.Join(d, "moved\xff"), p("back\xff")))
	check(t, "rmdir", os.Remove(d))

	// Hard links and symbolic links.
	check(t, "link", os.Link(p("caf\xe9"), p("link\xe9")))
	if st := stat(t, p("caf\xe9")); st.Nlink != 2 {
		t.Errorf("nlink after link: got %d, want 2", st.Nlink)
	}
	wantContent(t, p("caf\u00e9"), "file 1")
	const target = "caf\xe9"
	check(t, "symlink", os.Symlink(target, p("sym\xff")))
	got, err := os.Readlink(p("sym\xff"))
	check(t, "readlink", err)
	if got != target {
		t.Errorf("readlink: got %q, want %q", got, target)
	}
	wantContent(t, p("sym\xff"), "file 0")

	// Extended attribute names.
	const xname = "user.\xff\xe9"
	check(t, "setxattr", unix.Setxattr(p("back\xff"), xname, []byte("x1"), 0))
	check(t, "setxattr", unix.Setxattr(p("back\xff"), "user.\ufffd\ufffd", []byte("x2"), 0))
	wantList(t, p("back\xff"), []string{"user.\ufffd\ufffd", xname}) // sorted: 0xef < 0xff
	buf := make([]byte, 8)
	n, err := unix.Getxattr(p("back\xff"), xname, buf)
	if err != nil || string(buf[:n]) != "x1" {
		t.Errorf("getxattr %q: got %q, %v, want %q", xname, buf[:n], err, "x1")
	}
	check(t, "removexattr", unix.Removexattr(p("back\xff"), xname))
	wantList(t, p("back\xff"), []string{"user.\ufffd\ufffd"})

	for i, name := range names {
		if i == 3 {
			name = "back\xff" // renamed above
		}
		check(t, "unlink", os.Remove(p(name)))
	}
	for _, name := range []string{"link\xe9", "sym\xff"} {
		check(t, "unlink", os.Remove(p(name)))
	}
	listOnce(t, dir, setOf())
}

// setOf makes the set listOnce wants of names.
func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
