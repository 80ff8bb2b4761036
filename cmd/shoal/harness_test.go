package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests run the real binary: node and mount processes talking TCP on
// loopback, real FUSE mounts, kill -9 and restarts.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// shoalBinary builds cmd/shoal once per test run and returns its path.
func shoalBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shoal")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// heldPorts keeps open the lock files of the ports freeAddr handed out, so
// that no other test process (go test runs packages in parallel) takes them
// while this one lives.
var heldPorts struct {
	sync.Mutex
	files []*os.File
}

// freeAddr returns a loopback address with a port that is free and reserved
// for this test process. Ports come from below the kernel's ephemeral range:
// a port the kernel handed out for ":0" lies inside that range, where the
// next outgoing connection or another package's ":0" listener may take it
// before the process under test binds it.
func freeAddr(t *testing.T) string {
	t.Helper()
	const lowest = 10000
	if top := ephemeralLow(); top > lowest+1000 {
		for range 500 {
			if addr, ok := reservePort(lowest + rand.IntN(top-lowest)); ok {
				return addr
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// reservePort takes port's lock file without waiting and checks that the
// port can be bound; the lock is held until the test process exits.
func reservePort(port int) (string, bool) {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("shoal-test-port-%d.lock", port)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", false
	}
	if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		lock.Close()
		return "", false
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		lock.Close()
		return "", false
	}
	ln.Close()
	heldPorts.Lock()
	heldPorts.files = append(heldPorts.files, lock)
	heldPorts.Unlock()
	return addr, true
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 if
// it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 32768
	}
	return lo
}

// proc is a running shoal process whose output goes to the test log.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// fuseConn, for a mount, names its FUSE connection in fusectl
	// (/sys/fs/fuse/connections), so that kill can abort it.
	fuseConn uint32

	mu  sync.Mutex
	out []string // the lines it has written so far
}

// output returns the lines p has written to stdout and stderr so far.
func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.out...)
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(shoalBinary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			t.Logf("%s: %s", name, sc.Text())
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
		}
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and waits for the process to exit. A FUSE server
// killed while one of its own threads waits on a request it has already
// read cannot exit (the kernel waits for the answer uninterruptibly, and
// the connection lives until every thread is gone), so a mount still
// there after killWait has its FUSE connection aborted, as an
// administrator would.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		return
	case <-time.After(killWait):
	}
	if p.fuseConn != 0 {
		p.t.Logf("%s did not exit %s after SIGKILL: aborting FUSE connection %d", p.name, killWait, p.fuseConn)
		if err := abortFuse(p.fuseConn); err != nil {
			p.t.Logf("abort FUSE connection %d: %v", p.fuseConn, err)
		}
	}
	<-p.done
}

// killWait is how long kill waits for a killed process before aborting
// its FUSE connection.
const killWait = 15 * time.Second

// abortFuse aborts FUSE connection conn through fusectl, mounting fusectl
// first if it is not.
func abortFuse(conn uint32) error {
	const ctl = "/sys/fs/fuse/connections"
	abort := filepath.Join(ctl, fmt.Sprint(conn), "abort")
	if _, err := os.Stat(abort); err != nil {
		if err := syscall.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil && err != syscall.EBUSY {
			return fmt.Errorf("mount fusectl: %w", err)
		}
	}
	return os.WriteFile(abort, []byte("1"), 0)
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("%s did not stop within 30s of SIGTERM", p.name)
	}
}

// node is a running "shoal node".
type node struct {
	*proc
	addr, raft, data string
}

func startNode(t *testing.T, data string, extra ...string) *node {
	t.Helper()
	n := &node{addr: freeAddr(t), raft: freeAddr(t), data: data}
	n.restart(t, extra...)
	return n
}

// restart starts the node (again) on its addresses and data directory and
// waits until it listens.
func (n *node) restart(t *testing.T, extra ...string) {
	t.Helper()
	args := append([]string{"node", "--data", n.data, "--listen", n.addr, "--raft", n.raft}, extra...)
	n.proc = startProc(t, "node", args...)
	waitFor(t, "node "+n.addr+" listening", func() bool {
		c, err := net.Dial("tcp", n.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, n.proc)
}

// startMount mounts the cluster at addr on dir with "shoal mount".
func startMount(t *testing.T, addr, dir string, extra ...string) *proc {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"mount", "--node", addr}, extra...)
	p := startProc(t, "mount", append(args, dir)...)
	waitMounted(t, dir, p)
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err == nil {
		p.fuseConn = unix.Minor(st.Dev)
	}
	t.Cleanup(func() { detach(dir) })
	return p
}

// waitMounted waits until dir is a FUSE mount point.
func waitMounted(t *testing.T, dir string, p *proc) {
	t.Helper()
	waitFor(t, "mount at "+dir, func() bool { return isMounted(dir) }, p)
}

func isMounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == dir && strings.HasPrefix(f[2], "fuse") {
			return true
		}
	}
	return false
}

// detach lazily unmounts dir if it is still mounted (after a kill -9 the
// kernel keeps a dead FUSE mount until unmounted).
func detach(dir string) {
	if isMounted(dir) {
		syscall.Unmount(dir, syscall.MNT_DETACH)
	}
}

// waitFor polls cond for up to 30 s, failing early if p exits.
func waitFor(t *testing.T, what string, cond func() bool, p *proc) {
	t.Helper()
	waitForWithin(t, 30*time.Second, what, cond, p)
}

// waitForWithin is waitFor with a deadline of its own.
func waitForWithin(t *testing.T, within time.Duration, what string, cond func() bool, p *proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if p != nil {
			select {
			case <-p.done:
				t.Fatalf("waiting for %s: %s exited: %v", what, p.name, p.err)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
