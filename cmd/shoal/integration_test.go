package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/fs/fstest"
)

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeFile writes data to path, fsyncs and closes it, failing the test on
// any error.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkSums compares the files under dir with the SHA-256 sums in want.
func checkSums(t *testing.T, dir string, want map[string][32]byte) {
	t.Helper()
	for name, sum := range want {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if got := sha256.Sum256(data); got != sum {
			t.Errorf("%s: sha256 %x, want %x (%d bytes read)", name, got[:8], sum[:8], len(data))
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"up", "--help"}, {"node", "--help"}, {"mount", "--help"}, {"bench", "--help"}, {"status", "--help"},
		{"node", "add", "--help"}, {"node", "remove", "--help"}, {"node", "scrub", "--help"}, {"node", "repair", "--help"}} {
		out, err := exec.Command(shoalBinary(t), args...).CombinedOutput()
		if err != nil {
			t.Errorf("shoal %v: %v\n%s", args, err, out)
		}
		if !strings.Contains(string(out), "Usage:") {
			t.Errorf("shoal %v: no usage in output:\n%s", args, out)
		}
	}
}

// TestBenchFuseFloor runs "shoal bench --baselines --fuse-floor" on a
// tiny sequential workload: the table has the three baseline columns
// before the directory given, each with a figure, a table below sets the
// directory against each baseline, and no mount is left behind. The
// floor's server is "shoal loopback"; what it serves must land in the
// directory it serves.
func TestBenchFuseFloor(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(shoalBinary(t), "bench", "--baselines", "--fuse-floor", "--keep-caches", "--workloads", "seq", "--seq-bytes", "4194304", "--labels", "plain", dir)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("shoal bench: %v\n%s", err, stdout.String())
	}
	var header, write, against, ratios []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "metric":
			header = f
		case len(f) > 1 && f[0] == "plain" && f[1] == "against":
			against = f
		case strings.HasPrefix(strings.TrimSpace(line), "seq write") && against == nil:
			write = f
		case strings.HasPrefix(strings.TrimSpace(line), "seq write"):
			ratios = f
		}
	}
	if want := []string{"plain", "against", "local", "loopback", "no-passthru"}; !slices.Equal(against, want) || len(ratios) != 6 {
		t.Fatalf("ratio table header %q and seq write row %q, want header %q and three ratios:\n%s", against, ratios, want, stdout.String())
	}
	for i, v := range ratios[3:] {
		if x, err := strconv.ParseFloat(v, 64); err != nil || x <= 0 {
			t.Errorf("seq write of plain against %s: %q, want a positive ratio", against[i+2], v)
		}
	}
	if want := []string{"metric", "local", "loopback", "no-passthru", "plain"}; len(header) < len(want) || !slices.Equal(header[:len(want)], want) {
		t.Fatalf("table header %q, want it to start %q:\n%s", header, want, stdout.String())
	}
	if len(write) < 7 {
		t.Fatalf("seq write row %q: want a figure for each of the 4 columns", write)
	}
	for i, v := range write[3:7] { // after "seq", "write", "(MiB/s)"
		if x, err := strconv.ParseFloat(v, 64); err != nil || x <= 0 {
			t.Errorf("seq write of column %s: %q, want a positive figure", header[i+1], v)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), "shoal-bench-") {
		t.Errorf("a baseline mount outlived the bench:\n%s", mounts)
	}

	// The server on its own.
	orig, mnt := t.TempDir(), t.TempDir()
	p := startProc(t, "loopback", "loopback", orig, mnt)
	waitFor(t, "the loopback mount", func() bool { return isMounted(mnt) }, p)
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("through the floor"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(orig, "f")); err != nil || string(got) != "through the floor" {
		t.Fatalf("served file in the original directory: %q, %v", got, err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if isMounted(mnt) {
		t.Fatal("shoal loopback left its mount behind after SIGTERM")
	}
}

func TestBadFlagsSayWhatIsWrong(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mount", "--node", freeAddr(t), filepath.Join(tmp, "missing")}, "no such file or directory"},
		{[]string{"mount", "--node", freeAddr(t), file}, "not a directory"},
		{[]string{"mount", "--node", freeAddr(t), tmp}, "connect to node"},
		{[]string{"node", "--data", filepath.Join(file, "sub")}, "not a directory"},
		{[]string{"node", "--data", tmp, "--block-size", "12"}, "--block-size"},
		{[]string{"node", "--data", tmp, "--listen", "not-an-address"}, "listen"},
		{[]string{"mount"}, "accepts 1 arg"},
		{[]string{"node", "scrub", "--node", "127.0.0.1:1,127.0.0.1:2", "--secret-file", file}, "name the one node to scrub"},
		{[]string{"node", "scrub", "--node", freeAddr(t), "--secret-file", ""}, "--secret-file"},
		{[]string{"node", "repair", "--node", freeAddr(t), "--secret-file", ""}, "--secret-file"},
		{[]string{"node", "repair", "--node", freeAddr(t), "--secret-file", filepath.Join(tmp, "missing")}, "no such file"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		out, err := exec.Command(shoalBinary(t), tc.args...).CombinedOutput()
		if err == nil {
			t.Errorf("shoal %v succeeded, want an error", tc.args)
			continue
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("shoal %v said %q, want it to mention %q", tc.args, out, tc.want)
		}
	}
}

// TestUpUnmountsOnSignal runs "shoal up", writes a file, interrupts it, and
// checks it unmounted cleanly and that a second run sees the file.
func TestUpUnmountsOnSignal(t *testing.T) {
	data, mnt := t.TempDir(), filepath.Join(t.TempDir(), "mnt")
	// A directory's chmod waits in the mount until unmount sends it.
	args := []string{"up", "--data", data, "--listen", freeAddr(t), "--raft", freeAddr(t), "--dir-attr-delay", "1h", mnt}
	p := startProc(t, "up", args...)
	waitMounted(t, mnt, p)
	t.Cleanup(func() { detach(mnt) })
	want := randomBytes(1, 3<<20+17)
	writeFile(t, filepath.Join(mnt, "f"), want)
	d := filepath.Join(mnt, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o701); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("shoal up exited with %v after Ctrl-C", p.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shoal up did not exit within 30s of Ctrl-C")
	}
	if isMounted(mnt) {
		t.Fatal("still mounted after shoal up exited")
	}
	p = startProc(t, "up", args...)
	waitMounted(t, mnt, p)
	got, err := os.ReadFile(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("after restart read %d bytes, want the %d written", len(got), len(want))
	}
	if st, err := os.Stat(d); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o701 {
		t.Errorf("directory chmodded before Ctrl-C, after restart: mode %v, want 0701", st.Mode().Perm())
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestKill9LosesNothingAcknowledged writes files, closes them, kills -9 the
// node and the mount, restarts both and compares checksums. A file
// unlinked or renamed before, its directories then fsynced, must stay
// gone from its old name.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	n := startNode(t, t.TempDir(), "--block-size", "1048576")
	mnt := filepath.Join(t.TempDir(), "mnt")
	m := startMount(t, n.addr, mnt)
	want := map[string][32]byte{}
	for i, size := range []int{0, 1, 4095, 1 << 20, 1<<20 + 1, 5<<20 + 12345, 64 << 10} {
		name := fmt.Sprintf("f%d", i)
		data := randomBytes(uint64(i), size)
		writeFile(t, filepath.Join(mnt, name), data)
		want[name] = sha256.Sum256(data)
	}
	if err := os.MkdirAll(filepath.Join(mnt, "a/b/c"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(99, 2<<20)
	writeFile(t, filepath.Join(mnt, "a/b/c/deep"), data)
	want["a/b/c/deep"] = sha256.Sum256(data)
	// Overwrite the middle of an existing file through a second open.
	f, err := os.OpenFile(filepath.Join(mnt, "f5"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	patch := randomBytes(7, 300000)
	if _, err := f.WriteAt(patch, 1<<20-1000); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	full := randomBytes(5, 5<<20+12345)
	copy(full[1<<20-1000:], patch)
	want["f5"] = sha256.Sum256(full)
	// The mount answers an unlink or a rename at once; fsync of the
	// directory waits until the cluster has it.
	gone := filepath.Join(mnt, "a/b/gone")
	writeFile(t, gone, randomBytes(3, 1000))
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "f6"), filepath.Join(mnt, "a/b/moved")); err != nil {
		t.Fatal(err)
	}
	want["a/b/moved"] = want["f6"]
	delete(want, "f6")
	fstest.SyncDir(t, mnt)
	fstest.SyncDir(t, filepath.Dir(gone))

	crashAndRestart(t, n, m, mnt, "--block-size", "1048576")
	checkSums(t, mnt, want)
	for _, p := range []string{gone, filepath.Join(mnt, "f6")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s, unlinked or renamed before its directory's fsync, after kill -9 and restart: got %v, want it gone", p, err)
		}
	}
}

// crashAndRestart kills -9 the mount and the node, restarts the node with
// extra flags and mounts it again at mnt.
func crashAndRestart(t *testing.T, n *node, m *proc, mnt string, extra ...string) {
	t.Helper()
	m.kill()
	n.kill()
	detach(mnt)
	n.restart(t, extra...)
	startMount(t, n.addr, mnt)
}

// TestSnapshotsAndRestart makes the node take several Raft snapshots, kills
// it, and checks that it restarts from a snapshot with everything there.
func TestSnapshotsAndRestart(t *testing.T) {
	data := t.TempDir()
	n := startNode(t, data, "--snapshot-threshold", "64")
	mnt := filepath.Join(t.TempDir(), "mnt")
	m := startMount(t, n.addr, mnt)
	want := map[string][32]byte{}
	for i := range 300 {
		name := fmt.Sprintf("file-%03d", i)
		content := randomBytes(uint64(1000+i), 100+i)
		writeFile(t, filepath.Join(mnt, name), content)
		want[name] = sha256.Sum256(content)
		if i%100 == 99 {
			time.Sleep(1500 * time.Millisecond) // let the snapshot timer (1s) fire
		}
	}
	snaps, err := filepath.Glob(filepath.Join(data, "raft", "snapshots", "*", "meta.json"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no raft snapshots under %s (err %v)", data, err)
	}
	crashAndRestart(t, n, m, mnt, "--snapshot-threshold", "64")
	checkSums(t, mnt, want)
	entries, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("after restart %d entries, want %d", len(entries), len(want))
	}
}

// TestPOSIXOnRealMount runs the POSIX suite and the real-programs suite on a
// mount served by real node and mount processes.
func TestPOSIXOnRealMount(t *testing.T) {
	n := startNode(t, t.TempDir(), "--block-size", "262144")
	mnt := filepath.Join(t.TempDir(), "mnt")
	startMount(t, n.addr, mnt)
	fstest.Run(t, mnt)
	fstest.RunPrograms(t, mnt)
}

// TestFullDiskGivesENOSPC puts the node's data on a small tmpfs and fills it.
func TestFullDiskGivesENOSPC(t *testing.T) {
	data := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(data, syscall.MNT_DETACH) })
	n := startNode(t, data, "--block-size", "1048576", "--gc-interval", "200ms")
	mnt := filepath.Join(t.TempDir(), "mnt")
	startMount(t, n.addr, mnt)
	keep := randomBytes(42, 3<<20)
	writeFile(t, filepath.Join(mnt, "keep"), keep)
	var full error
	for i := 0; i < 100 && full == nil; i++ {
		full = writeErr(filepath.Join(mnt, fmt.Sprintf("fill%d", i)), randomBytes(uint64(i+100), 4<<20))
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("filling the disk: got %v, want ENOSPC", full)
	}
	checkSums(t, mnt, map[string][32]byte{"keep": sha256.Sum256(keep)})
	// Freeing space makes writes work again once garbage is collected.
	matches, _ := filepath.Glob(filepath.Join(mnt, "fill*"))
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	for range 100 {
		if err = writeErr(filepath.Join(mnt, "after"), randomBytes(3, 4<<20)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("writing after freeing space: %v", err)
	}
}

// writeErr writes data to path and returns the first error of write, fsync
// or close.
func writeErr(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestUnreachableNodeGivesEIO kills the node under a mount: operations must
// fail with EIO after the retry window, not hang.
// TestFuseDebugTracesRequests checks that --fuse-debug prints the FUSE
// request trace even at --log-level warn, which hides info lines: the
// trace is what the user asked for.
func TestFuseDebugTracesRequests(t *testing.T) {
	n := startNode(t, t.TempDir())
	mnt := filepath.Join(t.TempDir(), "mnt")
	m := startMount(t, n.addr, mnt, "--log-level", "warn", "--fuse-debug")
	if _, err := os.Stat(filepath.Join(mnt, "no-such-file")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of a missing file: got %v, want ENOENT", err)
	}
	waitFor(t, "a LOOKUP line from --fuse-debug", func() bool {
		for _, l := range m.output() {
			if strings.HasPrefix(l, "fuse: ") && strings.Contains(l, "LOOKUP") && strings.Contains(l, "no-such-file") {
				return true
			}
		}
		return false
	}, m)
}

func TestUnreachableNodeGivesEIO(t *testing.T) {
	n := startNode(t, t.TempDir())
	mnt := filepath.Join(t.TempDir(), "mnt")
	startMount(t, n.addr, mnt, "--retry-for", "2s", "--attr-timeout", "0s")
	writeFile(t, filepath.Join(mnt, "f"), []byte("hello"))
	n.kill()
	done := make(chan error, 1)
	go func() {
		_, err := os.Stat(filepath.Join(mnt, "g"))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("stat with the node down: got %v, want EIO", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("stat with the node down hung")
	}
}

// TestCorruptChunkGivesEIO flips a byte in a stored chunk: the read fails
// with EIO and never returns wrong bytes.
func TestCorruptChunkGivesEIO(t *testing.T) {
	data := t.TempDir()
	n := startNode(t, data)
	mnt := filepath.Join(t.TempDir(), "mnt")
	m := startMount(t, n.addr, mnt)
	content := randomBytes(11, 200000)
	writeFile(t, filepath.Join(mnt, "f"), content)
	var chunks []string
	filepath.WalkDir(filepath.Join(data, "chunks"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(d.Name()) == 64 {
			chunks = append(chunks, path)
		}
		return nil
	})
	if len(chunks) != 1 {
		t.Fatalf("found %d chunk files, want 1: %v", len(chunks), chunks)
	}
	raw, err := os.ReadFile(chunks[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-100] ^= 0x40
	if err := os.WriteFile(chunks[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// A fresh mount has a cold chunk cache.
	if err := m.stop(); err != nil {
		t.Fatal(err)
	}
	startMount(t, n.addr, mnt)
	got, err := os.ReadFile(filepath.Join(mnt, "f"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading a corrupt chunk: got %d bytes and error %v, want EIO", len(got), err)
	}
}

// TestUnreferencedChunksAreCollected deletes files and waits for their
// chunks to leave the node's disk.
func TestUnreferencedChunksAreCollected(t *testing.T) {
	data := t.TempDir()
	n := startNode(t, data, "--gc-interval", "200ms", "--block-size", "1048576")
	mnt := filepath.Join(t.TempDir(), "mnt")
	startMount(t, n.addr, mnt)
	countChunks := func() int {
		c := 0
		filepath.WalkDir(filepath.Join(data, "chunks"), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && len(d.Name()) == 64 {
				c++
			}
			return nil
		})
		return c
	}
	keep := randomBytes(1, 1<<20)
	writeFile(t, filepath.Join(mnt, "keep"), keep)
	writeFile(t, filepath.Join(mnt, "dup"), keep) // same content: stored once
	writeFile(t, filepath.Join(mnt, "gone"), randomBytes(2, 3<<20))
	if got := countChunks(); got != 4 {
		t.Fatalf("%d chunks stored, want 4 (1 shared + 3)", got)
	}
	if err := os.Remove(filepath.Join(mnt, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mnt, "dup")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "garbage collection", func() bool { return countChunks() == 1 }, n.proc)
	checkSums(t, mnt, map[string][32]byte{"keep": sha256.Sum256(keep)})
}
