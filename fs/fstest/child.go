package fstest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv names the environment variable that makes a re-executed test
// binary act as a child (see init).
const childEnv = "SHOAL_FSTEST_CHILD"

// A childOp is one system call that a child process makes as some user, with
// some umask, so the parent can check the errno the kernel gives that user.
type childOp struct {
	Uid, Gid int    // user to become; -1 keeps root
	Umask    int    // umask to set; -1 keeps it
	Op       string // see doChild
	Path     string
	Mode     uint32 // for create and mkdir
	Data     string // for write
}

// Other users that permission subtests act as.
const (
	uidA = 1000
	uidB = 1001
)

func init() {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var op childOp
	if err := json.Unmarshal([]byte(spec), &op); err != nil {
		fmt.Fprintf(os.Stderr, "fstest child: %v\n", err)
		os.Exit(3)
	}
	errno, info := doChild(op)
	fmt.Printf("%d %s\n", int(errno), info)
	os.Exit(0)
}

// doChild performs op and returns the errno (0 for success) and, for getlk,
// a description of the conflicting lock.
func doChild(op childOp) (syscall.Errno, string) {
	if op.Umask >= 0 {
		syscall.Umask(op.Umask)
	}
	if op.Uid >= 0 {
		if err := syscall.Setgroups([]int{op.Gid}); err != nil {
			return err.(syscall.Errno), "setgroups"
		}
		if err := syscall.Setgid(op.Gid); err != nil {
			return err.(syscall.Errno), "setgid"
		}
		if err := syscall.Setuid(op.Uid); err != nil {
			return err.(syscall.Errno), "setuid"
		}
	}
	var err error
	info := ""
	switch op.Op {
	case "read":
		var fd int
		fd, err = syscall.Open(op.Path, syscall.O_RDONLY, 0)
		if err == nil {
			_, err = syscall.Read(fd, make([]byte, 16))
			syscall.Close(fd)
		}
	case "write": // append Data
		var fd int
		fd, err = syscall.Open(op.Path, syscall.O_WRONLY|syscall.O_APPEND, 0)
		if err == nil {
			_, err = syscall.Write(fd, []byte(op.Data))
			syscall.Close(fd)
		}
	case "create":
		var fd int
		fd, err = syscall.Open(op.Path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, op.Mode)
		if err == nil {
			syscall.Close(fd)
		}
	case "mkdir":
		err = syscall.Mkdir(op.Path, op.Mode)
	case "unlink":
		err = syscall.Unlink(op.Path)
	case "rmdir":
		err = syscall.Rmdir(op.Path)
	case "chmod":
		err = syscall.Chmod(op.Path, op.Mode)
	case "setlk", "getlk":
		var fd int
		fd, err = syscall.Open(op.Path, syscall.O_RDWR, 0)
		if err != nil {
			break
		}
		defer syscall.Close(fd)
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 100}
		if op.Op == "setlk" {
			err = unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)
		} else {
			err = unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk)
			info = fmt.Sprintf("type=%d pid=%d start=%d len=%d", lk.Type, lk.Pid, lk.Start, lk.Len)
		}
	default:
		return syscall.ENOSYS, "unknown op " + op.Op
	}
	if err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			return syscall.EIO, err.Error()
		}
		return errno, info
	}
	return 0, info
}

// runChild re-executes the test binary to perform op in a new process and
// returns the errno it got (0 for success) and the extra information it
// printed.
func runChild(t *testing.T, op childOp) (syscall.Errno, string) {
	t.Helper()
	exe, err := os.Executable()
	check(t, "os.Executable", err)
	spec, err := json.Marshal(op)
	check(t, "marshal", err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s %s: %v; output %q", op.Op, op.Path, err, out)
	}
	var n int
	var info string
	line := strings.TrimSpace(string(out))
	if _, err := fmt.Sscanf(line, "%d", &n); err != nil {
		t.Fatalf("child %s: got output %q, want an errno", op.Op, out)
	}
	if i := strings.IndexByte(line, ' '); i >= 0 {
		info = line[i+1:]
	}
	return syscall.Errno(n), info
}

// as runs op on path as user uid (with gid equal to uid) and the umask 022.
func as(t *testing.T, uid int, op, path string) syscall.Errno {
	t.Helper()
	e, _ := runChild(t, childOp{Uid: uid, Gid: uid, Umask: 0o22, Op: op, Path: path, Mode: 0o644, Data: "x"})
	return e
}

// wantChild fails the test unless e, the errno a child got, is want.
func wantChild(t *testing.T, what string, e, want syscall.Errno) {
	t.Helper()
	if e != want {
		t.Errorf("%s: got %s, want %s", what, errnoName(e), errnoName(want))
	}
}
