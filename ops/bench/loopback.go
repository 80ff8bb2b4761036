package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LoopbackPackage is the go-fuse example that serves as the FUSE baseline:
// a pass-through file system with no storage logic of its own. On Linux
// 6.9 and later it opens files in FUSE passthrough mode, so the kernel
// moves their contents without it: its figures then measure FUSE's cost
// for metadata, and the local disk's speed for data.
const LoopbackPackage = "github.com/hanwen/go-fuse/v2/example/loopback"

// Bounds on waiting for the loopback server.
const (
	mountWait   = 15 * time.Second
	unmountWait = 15 * time.Second
	pollEvery   = 20 * time.Millisecond
)

// BuildLoopback builds [LoopbackPackage] into outPath with the go command.
// It runs in the current directory, which must lie inside a module that
// requires go-fuse (shoal's own module does); the error includes the go
// command's output.
func BuildLoopback(ctx context.Context, outPath string) error {
	out, err := exec.CommandContext(ctx, "go", "build", "-o", outPath, LoopbackPackage).CombinedOutput()
	if err != nil {
		return fmt.Errorf("build loopback %s: %w: %s", outPath, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// MountLoopback starts the loopback binary bin serving origDir at mountDir
// (an existing directory), using the mount syscall directly
// (-directmount), and waits until the mount shows in /proc/self/mounts or
// the server exits. ctx bounds only the wait: the server keeps running
// until unmount is called, because killing it would leave a dead mount.
//
// unmount unmounts mountDir and waits for the server to exit (killing it
// if it has not exited after a bounded wait). It is safe to call more than
// once; later calls return the first call's result.
func MountLoopback(ctx context.Context, bin, origDir, mountDir string) (unmount func() error, err error) {
	return MountServer(ctx, origDir, mountDir, func(orig, mnt string) *exec.Cmd {
		return exec.Command(bin, "-directmount", "-q", mnt, orig)
	})
}

// MountServer is MountLoopback for any FUSE server that serves a
// directory at another and exits once unmounted: command returns the
// server's command line for the two directories (absolute, symlinks
// resolved).
func MountServer(ctx context.Context, origDir, mountDir string, command func(orig, mnt string) *exec.Cmd) (unmount func() error, err error) {
	mnt, err := realDir(mountDir)
	if err != nil {
		return nil, fmt.Errorf("mount loopback %s: %w", mountDir, err)
	}
	orig, err := realDir(origDir)
	if err != nil {
		return nil, fmt.Errorf("mount loopback %s: %w", origDir, err)
	}
	if mounted(mnt) {
		return nil, fmt.Errorf("mount loopback %s: already a mount point", mnt)
	}
	cmd := command(orig, mnt)
	bin := cmd.Path
	var stderr syncBuffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mount loopback %s: start %s: %w", mnt, bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	var once sync.Once
	var unmountErr error
	unmount = func() error {
		once.Do(func() { unmountErr = stopLoopback(mnt, cmd, exited) })
		return unmountErr
	}

	wait, cancel := context.WithTimeout(ctx, mountWait)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !mounted(mnt) {
		select {
		case <-exited:
			uerr := unmount() // clears a mount the dead server might have left
			return nil, errors.Join(fmt.Errorf("mount loopback %s: server exited: %v: %s", mnt, waitErr, strings.TrimSpace(stderr.String())), uerr)
		case <-wait.Done():
			uerr := unmount()
			return nil, errors.Join(fmt.Errorf("mount loopback %s: not mounted after %v: %w: %s", mnt, mountWait, wait.Err(), strings.TrimSpace(stderr.String())), uerr)
		case <-tick.C:
		}
	}
	return unmount, nil
}

// stopLoopback unmounts mnt (if mounted) and waits for the server.
func stopLoopback(mnt string, cmd *exec.Cmd, exited <-chan struct{}) error {
	var errs []error
	if mounted(mnt) {
		// A just-closed file can keep the mount busy for a moment.
		deadline := time.Now().Add(unmountWait)
		for {
			err := syscall.Unmount(mnt, 0)
			if err == nil || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				if err != nil {
					errs = append(errs, fmt.Errorf("unmount loopback %s: %w", mnt, err))
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	select {
	case <-exited:
		// The server exits by itself once the kernel lets go of the
		// mount; its status then is of no interest.
	case <-time.After(unmountWait):
		cmd.Process.Kill()
		<-exited
		errs = append(errs, fmt.Errorf("unmount loopback %s: server did not exit within %v; killed", mnt, unmountWait))
	}
	if mounted(mnt) {
		// Last resort, so no stale mount is left behind.
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount loopback %s (detach): %w", mnt, err))
		}
	}
	return errors.Join(errs...)
}

// realDir returns dir made absolute with symlinks resolved, as the kernel
// reports it in /proc/self/mounts.
func realDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// mounted reports whether dir is a mount point in /proc/self/mounts.
func mounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && unescapeMount(f[1]) == dir {
			return true
		}
	}
	return false
}

// unescapeMount undoes the octal escapes (\040 for space and the like) of
// a /proc/mounts field.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// syncBuffer is a bytes.Buffer safe for the server's concurrent output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
