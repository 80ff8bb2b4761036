package fstest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testDir returns the directory the suite runs against: FSTEST_DIR if set
// (to point the suite at any mount by hand), else a new local temp dir.
func testDir(t *testing.T) string {
	if d := os.Getenv("FSTEST_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}

// TestRun validates the suite on the local file system, where every check
// must pass.
func TestRun(t *testing.T) {
	Run(t, testDir(t))
}

// TestRunPrograms validates RunPrograms on the local file system.
func TestRunPrograms(t *testing.T) {
	RunPrograms(t, testDir(t))
}

// loopbackGaps lists the subtests that fail on go-fuse's example loopback
// file system (v2.12.1), and why. TestLoopback checks the suite finds
// exactly these.
var loopbackGaps = map[string]string{
	// The loopback creates files and dirs with its own process umask (022)
	// on top of the kernel's, so umask 002 and 000 give 644/755.
	"Umask": "loopback applies its own umask",
	// The loopback chowns every new node to the caller's uid and gid, so a
	// setgid directory's group is not inherited.
	"SetgidDir": "loopback overrides the group inherited from a setgid dir",
}

// TestLoopback mounts go-fuse's example loopback file system and runs the
// suite against it in a child test process, checking that exactly the
// loopback's known gaps fail: this shows the checks depend on the file
// system and can fail.
func TestLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and mounts a FUSE loopback; skipped in -short mode")
	}
	if os.Getenv("FSTEST_DIR") != "" {
		t.Skip("FSTEST_DIR is set: running against a given dir instead")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("TestLoopback must run as root (it mounts), got euid %d", os.Geteuid())
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "loopback")
	build := exec.Command("go", "build", "-o", bin, "github.com/hanwen/go-fuse/v2/example/loopback")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building loopback: %v\n%s", err, out)
	}
	mnt, orig := filepath.Join(tmp, "mnt"), filepath.Join(tmp, "orig")
	for _, d := range []string{mnt, orig} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srv := exec.Command(bin, "-directmount", "-allow-other", "-q", mnt, orig)
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatalf("starting loopback: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	t.Cleanup(func() {
		if mounted(t, mnt) {
			if err := syscall.Unmount(mnt, 0); err != nil {
				t.Errorf("unmount: %v; trying lazy unmount", err)
				syscall.Unmount(mnt, syscall.MNT_DETACH)
			}
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-done
		}
		if mounted(t, mnt) {
			t.Errorf("%s still mounted after cleanup", mnt)
		}
	})
	for i := 0; !mounted(t, mnt); i++ {
		if i == 200 {
			t.Fatalf("loopback did not mount in 10 s; log:\n%s", srvLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^TestRun$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "FSTEST_DIR="+mnt)
	out, _ := cmd.CombinedOutput()
	t.Logf("suite on loopback:\n%s", out)
	failRE := regexp.MustCompile(`^\s*--- FAIL: TestRun/(\S+)`)
	var got []string
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		if m := failRE.FindStringSubmatch(s.Text()); m != nil {
			got = append(got, m[1])
		}
	}
	var want []string
	for name := range loopbackGaps {
		want = append(want, name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("failing subtests on loopback: got %q, want %q", got, want)
	}
	if !strings.Contains(string(out), "--- PASS: TestRun/FileReadWrite") {
		t.Errorf("suite on loopback did not run through; see log")
	}
}

// mounted reports whether dir is a mount point in /proc/mounts.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}
