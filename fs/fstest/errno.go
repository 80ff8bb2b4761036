package fstest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testErrno checks the errnos of common failing calls.
func testErrno(t *testing.T, dir string) {
	p := func(s string) string { return filepath.Join(dir, s) }
	writeFile(t, p("file"), "x")
	mkdir(t, p("dir"), 0o755)
	writeFile(t, p("dir/inner"), "x")
	long := strings.Repeat("n", 256)
	max := strings.Repeat("m", 255)
	open := func(name string, flag int) error {
		fd, err := unix.Open(p(name), flag|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"open missing", open("missing", unix.O_RDONLY), syscall.ENOENT},
		{"stat in missing dir", unix.Stat(p("nodir/x"), &unix.Stat_t{}), syscall.ENOENT},
		{"create in missing dir", open("nodir/x", unix.O_CREAT|unix.O_WRONLY), syscall.ENOENT},
		{"unlink missing", unix.Unlink(p("missing")), syscall.ENOENT},
		{"open excl existing", open("file", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY), syscall.EEXIST},
		{"mkdir existing", unix.Mkdir(p("dir"), 0o755), syscall.EEXIST},
		{"mkdir over file", unix.Mkdir(p("file"), 0o755), syscall.EEXIST},
		{"open through a file", open("file/x", unix.O_RDONLY), syscall.ENOTDIR},
		{"stat through a file", unix.Stat(p("file/x"), &unix.Stat_t{}), syscall.ENOTDIR},
		{"create through a file", open("file/x", unix.O_CREAT|unix.O_WRONLY), syscall.ENOTDIR},
		{"O_DIRECTORY on a file", open("file", unix.O_RDONLY|unix.O_DIRECTORY), syscall.ENOTDIR},
		{"rmdir a file", unix.Rmdir(p("file")), syscall.ENOTDIR},
		{"open dir for write", open("dir", unix.O_WRONLY), syscall.EISDIR},
		{"open dir for read-write", open("dir", unix.O_RDWR), syscall.EISDIR},
		{"unlink a dir", unix.Unlink(p("dir")), syscall.EISDIR},
		{"rmdir non-empty", unix.Rmdir(p("dir")), syscall.ENOTEMPTY},
		{"create 256-byte name", open(long, unix.O_CREAT|unix.O_WRONLY), syscall.ENAMETOOLONG},
		{"stat 256-byte name", unix.Stat(p(long), &unix.Stat_t{}), syscall.ENAMETOOLONG},
		{"mkdir 256-byte name", unix.Mkdir(p(long), 0o755), syscall.ENAMETOOLONG},
		{"symlink 256-byte name", unix.Symlink("x", p(long)), syscall.ENAMETOOLONG},
		{"rename to 256-byte name", unix.Rename(p("file"), p(long)), syscall.ENAMETOOLONG},
		{"rmdir .", unix.Rmdir(p("dir") + "/."), syscall.EINVAL},
		{"truncate negative", unix.Truncate(p("file"), -1), syscall.EINVAL},
		{"readlink of a file", func() error { _, err := unix.Readlink(p("file"), make([]byte, 10)); return err }(), syscall.EINVAL},
		{"rename dir into itself", unix.Rename(p("dir"), p("dir/sub")), syscall.EINVAL},
		{"renameat2 bad flags", unix.Renameat2(unix.AT_FDCWD, p("file"), unix.AT_FDCWD, p("f2"), unix.RENAME_EXCHANGE|unix.RENAME_NOREPLACE), syscall.EINVAL},
		{"link to a dir", unix.Link(p("dir"), p("dirlink")), syscall.EPERM},
	} {
		wantErrno(t, tc.name, tc.err, tc.want)
	}
	// A 255-byte name is allowed.
	writeFile(t, p(max), "max")
	wantContent(t, p(max), "max")
	// Reading a directory with read(2) gives EISDIR.
	d, err := os.Open(p("dir"))
	check(t, "open dir", err)
	defer d.Close()
	_, err = unix.Read(int(d.Fd()), make([]byte, 10))
	wantErrno(t, "read(2) on a dir", err, syscall.EISDIR)
	// Writing to a read-only fd gives EBADF.
	f := openFile(t, p("file"), os.O_RDONLY, 0)
	_, err = unix.Write(int(f.Fd()), []byte("x"))
	wantErrno(t, "write on O_RDONLY fd", err, syscall.EBADF)
	// The failed calls changed nothing.
	wantContent(t, p("file"), "x")
	if _, err := os.Stat(p("dir/inner")); err != nil {
		t.Errorf("dir/inner: got %v, want it still there", err)
	}
}
