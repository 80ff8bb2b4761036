package fstest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testRenameOverFile renames a file over another one that is open.
func testRenameOverFile(t *testing.T, dir string) {
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeFile(t, a, "new content")
	writeFile(t, b, "old content")
	inoA := stat(t, a).Ino
	fb := openFile(t, b, os.O_RDONLY, 0)
	check(t, "rename", os.Rename(a, b))
	_, err := os.Stat(a)
	wantErrno(t, "stat of old name", err, syscall.ENOENT)
	wantContent(t, b, "new content")
	if got := stat(t, b).Ino; got != inoA {
		t.Errorf("inode of b: got %d, want the renamed file's %d", got, inoA)
	}
	if got := pread(t, fb, 0, 11); string(got) != "old content" {
		t.Errorf("fd open on replaced file: got %q, want %q", got, "old content")
	}
	names, err := os.ReadDir(dir)
	check(t, "readdir", err)
	if len(names) != 1 || names[0].Name() != "b" {
		t.Errorf("readdir: got %v, want [b]", names)
	}
}

// testRenameAcrossDirs moves a file to another directory.
func testRenameAcrossDirs(t *testing.T, dir string) {
	d1, d2 := filepath.Join(dir, "d1"), filepath.Join(dir, "d2")
	mkdir(t, d1, 0o755)
	mkdir(t, d2, 0o755)
	src, dst := filepath.Join(d1, "f"), filepath.Join(d2, "g")
	writeFile(t, src, "payload")
	ino := stat(t, src).Ino
	check(t, "rename", os.Rename(src, dst))
	wantContent(t, dst, "payload")
	if got := stat(t, dst).Ino; got != ino {
		t.Errorf("inode after rename: got %d, want %d", got, ino)
	}
	_, err := os.Stat(src)
	wantErrno(t, "stat of old name", err, syscall.ENOENT)
	// Renaming a file onto itself is a no-op.
	check(t, "rename onto itself", os.Rename(dst, dst))
	wantContent(t, dst, "payload")
}

// testRenameDir moves a directory between parents.
func testRenameDir(t *testing.T, dir string) {
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	mkdir(t, a, 0o755)
	mkdir(t, b, 0o755)
	mkdir(t, filepath.Join(a, "sub"), 0o755)
	writeFile(t, filepath.Join(a, "sub", "f"), "inside")
	na, nb := stat(t, a).Nlink, stat(t, b).Nlink
	check(t, "rename dir", unix.Rename(filepath.Join(a, "sub"), filepath.Join(b, "sub")))
	if got := stat(t, a).Nlink; got != na-1 {
		t.Errorf("nlink of old parent: got %d, want %d", got, na-1)
	}
	if got := stat(t, b).Nlink; got != nb+1 {
		t.Errorf("nlink of new parent: got %d, want %d", got, nb+1)
	}
	wantContent(t, filepath.Join(b, "sub", "f"), "inside")
	if got, want := stat(t, filepath.Join(b, "sub", "..")).Ino, stat(t, b).Ino; got != want {
		t.Errorf("inode of b/sub/..: got %d, want b's %d", got, want)
	}
	// Over an empty directory is allowed and keeps the count.
	mkdir(t, filepath.Join(a, "empty"), 0o755)
	na = stat(t, a).Nlink
	check(t, "rename dir over empty dir", unix.Rename(filepath.Join(b, "sub"), filepath.Join(a, "empty")))
	wantContent(t, filepath.Join(a, "empty", "f"), "inside")
	if got := stat(t, a).Nlink; got != na {
		t.Errorf("nlink of parent after replacing an empty dir: got %d, want %d", got, na)
	}
	// Renaming within one parent.
	check(t, "rename in place", unix.Rename(filepath.Join(a, "empty"), filepath.Join(a, "full")))
	wantContent(t, filepath.Join(a, "full", "f"), "inside")
}

// testRenameErrors checks the errnos rename gives.
func testRenameErrors(t *testing.T, dir string) {
	p := func(s string) string { return filepath.Join(dir, s) }
	mkdir(t, p("d"), 0o755)
	mkdir(t, p("full"), 0o755)
	writeFile(t, p("full/x"), "x")
	mkdir(t, p("d/child"), 0o755)
	writeFile(t, p("f"), "f")
	for _, tc := range []struct {
		name     string
		from, to string
		want     syscall.Errno
	}{
		{"dir over non-empty dir", "d", "full", syscall.ENOTEMPTY},
		{"file over dir", "f", "d", syscall.EISDIR},
		{"dir over file", "d", "f", syscall.ENOTDIR},
		{"dir into its own subdir", "d", "d/child/d", syscall.EINVAL},
		{"dir onto its own subdir", "d", "d/child", syscall.EINVAL},
		{"dir onto its own parent", "d/child", "d", syscall.ENOTEMPTY},
		{"missing source", "nothing", "y", syscall.ENOENT},
		{"into missing dir", "f", "nodir/f", syscall.ENOENT},
		{"through a file", "f", "f/g", syscall.ENOTDIR},
	} {
		err := unix.Rename(p(tc.from), p(tc.to))
		wantErrno(t, tc.name, err, tc.want)
	}
	// Nothing moved.
	wantContent(t, p("f"), "f")
	wantContent(t, p("full/x"), "x")
	if st := stat(t, p("d/child")); st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		t.Errorf("d/child: got mode %o, want a directory", st.Mode)
	}
}

// testRenameNoReplace checks RENAME_NOREPLACE.
func testRenameNoReplace(t *testing.T, dir string) {
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	writeFile(t, a, "A")
	writeFile(t, b, "B")
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_NOREPLACE)
	wantErrno(t, "RENAME_NOREPLACE onto existing", err, syscall.EEXIST)
	wantContent(t, a, "A")
	wantContent(t, b, "B")
	check(t, "RENAME_NOREPLACE onto new name", unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, c, unix.RENAME_NOREPLACE))
	wantContent(t, c, "A")
	err = unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, c, unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE)
	wantErrno(t, "RENAME_NOREPLACE|RENAME_EXCHANGE", err, syscall.EINVAL)
}

// testRenameExchange checks RENAME_EXCHANGE.
func testRenameExchange(t *testing.T, dir string) {
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeFile(t, a, "A")
	writeFile(t, b, "B")
	ia, ib := stat(t, a).Ino, stat(t, b).Ino
	check(t, "RENAME_EXCHANGE", unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE))
	wantContent(t, a, "B")
	wantContent(t, b, "A")
	if ga, gb := stat(t, a).Ino, stat(t, b).Ino; ga != ib || gb != ia {
		t.Errorf("inodes after exchange: got %d, %d, want %d, %d", ga, gb, ib, ia)
	}
	// A file and a directory in different parents.
	d, sub := filepath.Join(dir, "d"), filepath.Join(dir, "sub")
	mkdir(t, d, 0o755)
	mkdir(t, sub, 0o755)
	writeFile(t, filepath.Join(d, "inner"), "I")
	na := stat(t, d).Nlink
	check(t, "RENAME_EXCHANGE file and dir", unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, d, unix.RENAME_EXCHANGE))
	wantContent(t, d, "B")
	wantContent(t, filepath.Join(a, "inner"), "I")
	if got := stat(t, a).Nlink; got != na {
		t.Errorf("nlink of exchanged dir: got %d, want %d", got, na)
	}
	x := filepath.Join(sub, "x")
	check(t, "RENAME_NOREPLACE to other dir", unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, x, unix.RENAME_NOREPLACE))
	check(t, "RENAME_EXCHANGE across dirs", unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, x, unix.RENAME_EXCHANGE))
	wantContent(t, b, "B")
	wantContent(t, x, "A")
	err := unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, filepath.Join(dir, "missing"), unix.RENAME_EXCHANGE)
	wantErrno(t, "RENAME_EXCHANGE with missing target", err, syscall.ENOENT)
	wantContent(t, b, "B")
}
