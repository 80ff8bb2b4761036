package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/ops/status"
)

// These tests break a real three-node cluster the way disks and machines
// break: kill -9 of a node in the middle of a copy, shard files damaged on
// disk. The nodes run with a short repair interval and delay, so that the
// leader rebuilds what is missing within seconds of a node coming back.

// faultFlags are the node flags of the fault tests.
var faultFlags = []string{"--repair-interval", "1s", "--repair-delay", "2s"}

// faultBlock is the nodes' default block size: the size of a file's chunks
// but the last.
const faultBlock = 4 << 20

// healed reports whether every node is up and the leader counts every chunk
// protected: none degraded, none lost.
func healed(r *status.Report) bool {
	return r.Up == len(r.Nodes) && r.Health != nil && r.Health.Degraded == 0 && r.Health.Lost == 0
}

// healedAndCaughtUp reports whether the cluster is healed and every node
// has applied the leader's log: a node scrubs the shards its own state
// places on it, so a scrub after a repair needs the repair's placements
// applied there.
func healedAndCaughtUp(r *status.Report) bool {
	return healed(r) && converged(r)
}

// readBack mounts the cluster afresh at a new directory (a cold chunk
// cache, and no page cache from earlier reads), compares every file in
// want with its SHA-256, and unmounts.
//
// It returns how many erasure-coded chunks the mount read from the nodes
// holding their data shards (direct), and how many through its node after
// a holder failed to serve a shard (fallback).
func readBack(t *testing.T, addrs, what string, want map[string][32]byte) (direct, fallback float64) {
	t.Helper()
	start := time.Now()
	mnt := filepath.Join(t.TempDir(), "check")
	metrics := freeAddr(t)
	m := startMount(t, addrs, mnt, "--metrics", metrics)
	checkSums(t, mnt, want)
	got := scrape(t, metrics)
	direct, fallback = got[`shoal_client_direct_reads_total{result="direct"}`], got[`shoal_client_direct_reads_total{result="fallback"}`]
	if err := m.stop(); err != nil {
		t.Errorf("unmount after reading back %s: %v", what, err)
	}
	t.Logf("read back %d files %s in %v (chunks read from shard holders: %v; through the node after a holder failed: %v)",
		len(want), what, time.Since(start).Round(time.Millisecond), direct, fallback)
	return direct, fallback
}

// shoalOutput runs the shoal binary and returns its standard output; its
// standard error goes to the test log.
func shoalOutput(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(shoalBinary(t), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if stderr.Len() > 0 {
		t.Logf("shoal %s: stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	if err != nil {
		return string(out), fmt.Errorf("shoal %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// scrubNode runs "shoal node scrub --json" on the node at addr.
func scrubNode(t *testing.T, addr, secret string) scrubResult {
	t.Helper()
	out, err := shoalOutput(t, "node", "scrub", "--json", "--node", addr, "--secret-file", secret)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var r scrubResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("shoal node scrub --json: %v\n%s", err, out)
	}
	return r
}

// repairedRE matches what "shoal node repair" prints.
var repairedRE = regexp.MustCompile(`^repair pass: (\d+) shards rebuilt\n$`)

// repairNow runs "shoal node repair" through the node at addr and returns
// how many shards it says the pass rebuilt.
func repairNow(t *testing.T, addr, secret string) int {
	t.Helper()
	out, err := shoalOutput(t, "node", "repair", "--node", addr, "--secret-file", secret)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m := repairedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("shoal node repair printed %q, want %q", out, "repair pass: N shards rebuilt")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// shardIndex maps the store key of every shard of every chunk of files (a
// 2+1 scheme, as a three-node cluster uses for chunks of 64 KiB and more)
// to the shard's index: 0 and 1 are data shards, 2 parity.
func shardIndex(files [][]byte) map[chunkstore.ID]int {
	scheme := chunkstore.Scheme{Data: 2, Parity: 1}
	keys := map[chunkstore.ID]int{}
	for _, data := range files {
		for off := 0; off < len(data); off += faultBlock {
			id := chunkstore.Sum(data[off:min(off+faultBlock, len(data))])
			for i := range scheme.Shards() {
				keys[chunkstore.ShardKey(id, scheme, i)] = i
			}
		}
	}
	return keys
}

// countChunks returns how many chunks of 64 KiB or more files cut into
// (each is placed in Raft; smaller ones travel inline).
func countChunks(files [][]byte) int64 {
	n := int64(0)
	for _, data := range files {
		for off := 0; off < len(data); off += faultBlock {
			if min(len(data)-off, faultBlock) >= 64<<10 {
				n++
			}
		}
	}
	return n
}

// largeChunkFiles returns the chunk files of more than 1 MiB in the store
// of the node with data directory dir.
func largeChunkFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "chunks"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || len(d.Name()) != 64 {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > 1<<20 {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// quarantined counts the files in the quarantine directory of the store of
// the node with data directory dir.
func quarantined(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "chunks", "quarantine"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(entries)
}

// flipNearEnd flips the bits of one byte ten bytes before the end of the
// file at path, in place.
func flipNearEnd(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, info.Size()-10); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, info.Size()-10); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// copyResult is how the copy of one file into the mount ended.
type copyResult struct {
	name string
	data []byte
	err  error // of the first write, fsync or close that failed
	took time.Duration
}

// copyFiles writes files (name → size, contents from seed i+1) into dir one
// after another in 1 MiB writes, each followed by fsync and close, and
// sends how each ended. It closes mid once half of file midFile is
// written (or the copy ended before that).
func copyFiles(dir string, names []string, sizes []int, midFile int, mid chan<- struct{}, results chan<- copyResult) {
	var once sync.Once
	signal := func() { once.Do(func() { close(mid) }) }
	defer signal()
	defer close(results)
	for i, name := range names {
		data := randomBytes(uint64(100+i), sizes[i])
		start := time.Now()
		err := func() error {
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			for off := 0; off < len(data); off += 1 << 20 {
				if _, err := f.Write(data[off:min(off+1<<20, len(data))]); err != nil {
					f.Close()
					return err
				}
				if i == midFile && off >= len(data)/2 {
					signal()
				}
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
		results <- copyResult{name: name, data: data, err: err, took: time.Since(start)}
	}
}

// TestFaultsKillDuringCopyAndCorruptShards runs three nodes that repair
// within seconds and a mount that talks to a follower, and breaks them:
//
//  1. kill -9 of that follower in the middle of a copy of five files of
//     8–40 MiB: every file whose close returned 0 reads back
//     byte-identical through the survivors, and a file written after the
//     copy too; status counts degraded chunks and none lost;
//  2. the node comes back: status counts every chunk protected again
//     (those written while it was down had a shard missing, so this takes
//     the leader's repair), and everything reads back;
//  3. one byte flipped near the end of every shard file of that node (or
//     another, if that one holds no parity shard of over 1 MiB): every
//     file reads back byte-identical (the corrupt data shards are set aside
//     as they are read and the chunks rebuilt from parity), "shoal node
//     scrub" reports exactly the corrupt shards reads never touched (the
//     parity shards), repair rewrites them all (a second scrub finds
//     nothing wrong), and everything reads back once more.
func TestFaultsKillDuringCopyAndCorruptShards(t *testing.T) {
	testStart := time.Now()
	base := t.TempDir()
	nodes, r := startThree(t, base, faultFlags...)
	secret := filepath.Join(nodes["a"].data, "cluster-secret")
	var victimID string
	for _, id := range []string{"a", "b", "c"} {
		if id != r.Leader {
			victimID = id
			break
		}
	}
	victim := nodes[victimID]
	// The mount names the victim first, so it talks to the victim and has
	// to move to another node when it dies.
	order := []string{victim.addr}
	var live []string
	for _, id := range []string{"a", "b", "c"} {
		if id != victimID {
			order = append(order, nodes[id].addr)
			live = append(live, nodes[id].addr)
		}
	}
	all := strings.Join(order, ",")
	liveAddrs := strings.Join(live, ",")
	t.Logf("leader %s; the mount talks to %s, which is killed mid-copy", r.Leader, victimID)
	mnt := filepath.Join(base, "mnt")
	startMount(t, all, mnt)

	// 1. Kill the mount's node in the middle of the second file.
	names := []string{"f8", "f23", "f40", "f12", "f32"}
	sizes := []int{8<<20 + 1000, 23 << 20, 40 << 20, 12<<20 + 77777, 32<<20 + 5}
	mid := make(chan struct{})
	results := make(chan copyResult, len(names))
	copyStart := time.Now()
	go copyFiles(mnt, names, sizes, 1, mid, results)
	select {
	case <-mid:
	case <-time.After(3 * time.Minute):
		t.Fatal("the copy did not get half-way through its second file within 3 minutes")
	}
	victim.kill()
	killed := time.Now()
	t.Logf("killed node %s %v into the copy", victimID, killed.Sub(copyStart).Round(time.Millisecond))

	want := map[string][32]byte{}
	var files [][]byte
	deadline := time.After(5 * time.Minute)
	for done := false; !done; {
		select {
		case res, ok := <-results:
			if !ok {
				done = true
				break
			}
			if res.err != nil {
				t.Logf("copy of %s (%d bytes) failed after %v: %v", res.name, len(res.data), res.took, res.err)
				continue
			}
			t.Logf("copied %s (%d MiB) in %v", res.name, len(res.data)>>20, res.took.Round(time.Millisecond))
			want[res.name] = sha256.Sum256(res.data)
			files = append(files, res.data)
		case <-deadline:
			t.Fatalf("the copy did not finish within 5 minutes of the kill (%d files done)", len(want))
		}
	}
	if len(want) < 3 {
		t.Fatalf("%d of %d files copied with one node of three killed, want at least the 3 written after the kill", len(want), len(names))
	}
	t.Logf("copy ended %v after the kill; %d of %d files closed cleanly", time.Since(killed).Round(time.Millisecond), len(want), len(names))
	// A file written entirely while the node is down: its chunks are
	// placed on two nodes only, one shard missing each.
	down := randomBytes(200, 9<<20+4321)
	writeFile(t, filepath.Join(mnt, "written-while-down"), down)
	want["written-while-down"] = sha256.Sum256(down)
	files = append(files, down)
	readBack(t, liveAddrs, "with "+victimID+" down", want)

	r = waitStatus(t, liveAddrs, "degraded chunks counted while "+victimID+" is down", func(r *status.Report) bool {
		return r.Up == 2 && r.Health != nil && r.Health.Degraded > 0
	})
	t.Logf("status with %s down: %+v", victimID, *r.Health)
	if r.Health.Lost != 0 {
		t.Errorf("status with one node of three down: %d chunks lost, want 0", r.Health.Lost)
	}

	// 2. The node comes back; repair fills in the shards it missed.
	victim.restart(t, append([]string{"--id", victimID}, faultFlags...)...)
	restarted := time.Now()
	r = waitStatusWithin(t, 2*time.Minute, all, "every chunk protected again after "+victimID+" restarted, on every node", healedAndCaughtUp)
	t.Logf("all protected %v after the restart: %+v", time.Since(restarted).Round(time.Millisecond), *r.Health)
	if n := countChunks(files); r.Health.Protected < n {
		t.Errorf("protected chunks after repair: got %d, want at least the %d chunks of the files", r.Health.Protected, n)
	}
	// Every node up and every shard in place: the mount reads the data
	// shards from their holders, never through its node.
	if direct, fallback := readBack(t, all, "after "+victimID+" came back", want); direct == 0 || fallback != 0 {
		t.Errorf("reading back with every shard in place: %v chunks read from shard holders, %v through the node; want some and none", direct, fallback)
	}

	// 3. Damage every large shard file of one node: the one that was down,
	// unless it holds no data or no parity shards of more than 1 MiB
	// (which shard of a chunk lands where is up to the pushes).
	keys := shardIndex(files)
	shardFiles := func(dir string) (data, parity []string) {
		for _, path := range largeChunkFiles(t, dir) {
			key, err := chunkstore.ParseID(filepath.Base(path))
			if err != nil {
				t.Fatalf("chunk file %s: %v", path, err)
			}
			i, ok := keys[key]
			switch {
			case !ok:
				t.Fatalf("chunk file %s of more than 1 MiB is no shard of the files written", path)
			case i < 2:
				data = append(data, path)
			default:
				parity = append(parity, path)
			}
		}
		return data, parity
	}
	var badID string
	var dataFiles, parityFiles []string
	for _, id := range []string{victimID, "a", "b", "c"} {
		if dataFiles, parityFiles = shardFiles(nodes[id].data); len(dataFiles) > 0 && len(parityFiles) > 0 {
			badID = id
			break
		}
	}
	if badID == "" {
		t.Fatal("no node holds both data and parity shards of more than 1 MiB")
	}
	bad := nodes[badID]
	q0 := quarantined(t, bad.data)
	for _, path := range append(dataFiles, parityFiles...) {
		flipNearEnd(t, path)
	}
	dataFlipped, parityFlipped := len(dataFiles), len(parityFiles)
	t.Logf("flipped a byte in %d data shards and %d parity shards on %s", dataFlipped, parityFlipped, badID)
	// A holder finds its shard corrupt and answers that it lacks it: the
	// mount then reads that chunk through its node, which rebuilds it.
	if _, fallback := readBack(t, all, "with corrupt shards on "+badID, want); fallback != float64(dataFlipped) {
		t.Errorf("reading back with %d corrupt data shards: %v chunks read through the node after a holder failed, want %d", dataFlipped, fallback, dataFlipped)
	}
	// Reads fetch the data shards, and set aside each corrupt one they
	// find; the parity shards were not needed.
	if got := quarantined(t, bad.data) - q0; got != dataFlipped {
		t.Errorf("corrupt shard files set aside by reads: got %d, want the %d data shards damaged", got, dataFlipped)
	}

	rep := scrubNode(t, bad.addr, secret)
	t.Logf("scrub of %s: %+v", badID, rep)
	if rep.Node != badID || rep.Checked == 0 {
		t.Errorf("scrub: node %q checked %d shards, want node %s and shards checked", rep.Node, rep.Checked, badID)
	}
	// The data shards reads found corrupt are no longer placed on the node
	// (or were rewritten by repair already, or are missing until their
	// loss is recorded); the parity shards are found now.
	if rep.Corrupt != parityFlipped || rep.Missing > dataFlipped {
		t.Errorf("scrub of %s: %d corrupt, %d missing; want the %d damaged parity shards corrupt and at most %d missing",
			badID, rep.Corrupt, rep.Missing, parityFlipped, dataFlipped)
	}
	if got := quarantined(t, bad.data) - q0; got != dataFlipped+parityFlipped {
		t.Errorf("corrupt shard files set aside after the scrub: got %d, want all %d damaged", got, dataFlipped+parityFlipped)
	}
	r = waitStatusWithin(t, 2*time.Minute, all, "every chunk protected again after the scrub, on every node", healedAndCaughtUp)
	t.Logf("status after repair of the corrupt shards: %+v", *r.Health)
	if rep := scrubNode(t, bad.addr, secret); rep.Corrupt != 0 || rep.Missing != 0 || rep.Checked < dataFlipped+parityFlipped {
		t.Errorf("second scrub of %s: %+v; want nothing corrupt or missing, and every rewritten shard checked (%d)", badID, rep, dataFlipped+parityFlipped)
	}
	if out, err := shoalOutput(t, "node", "scrub", "--node", bad.addr, "--secret-file", secret); err != nil ||
		!strings.Contains(out, "scrubbed node "+badID+" ("+bad.addr+"): ") || !strings.Contains(out, " 0 missing, 0 corrupt\n") {
		t.Errorf("shoal node scrub: printed %q, %v; want a line naming the node and 0 missing, 0 corrupt", out, err)
	}
	readBack(t, all, "after the corrupt shards were rewritten", want)
	t.Logf("test took %v", time.Since(testStart).Round(time.Millisecond))
}

// TestNodeRepairCommand starts three nodes that never repair on their own,
// stops one, writes a file (its chunks get two shards of three), starts
// the node again and checks that the chunks stay degraded until "shoal
// node repair" (through a follower) rebuilds their missing shards.
func TestNodeRepairCommand(t *testing.T) {
	base := t.TempDir()
	nodes, r := startThree(t, base, "--repair-interval=-1s")
	secret := filepath.Join(nodes["a"].data, "cluster-secret")
	var followers []string
	for _, id := range []string{"a", "b", "c"} {
		if id != r.Leader {
			followers = append(followers, id)
		}
	}
	victim, through := nodes[followers[0]], nodes[followers[1]]
	victim.kill()
	mnt := filepath.Join(base, "mnt")
	startMount(t, through.addr, mnt)
	data := randomBytes(300, 3*faultBlock+5000)
	writeFile(t, filepath.Join(mnt, "f"), data)
	want := map[string][32]byte{"f": sha256.Sum256(data)}
	if n := repairNow(t, through.addr, secret); n != 0 {
		t.Errorf("repair with one node of three down: %d shards rebuilt, want 0 (every node up holds a shard of each chunk)", n)
	}

	victim.restart(t, "--id", followers[0], "--repair-interval=-1s")
	r = waitStatus(t, through.addr, "all up, the chunks written meanwhile still degraded", func(r *status.Report) bool {
		return r.Up == 3 && r.Health != nil && r.Health.Degraded >= 3
	})
	// Without repair passes of its own, the leader leaves them so.
	time.Sleep(3 * time.Second)
	if r = clusterStatus(t, through.addr); r == nil || r.Health == nil || r.Health.Degraded < 3 {
		t.Fatalf("status 3 s later, with no repair passes: %+v, want the 3 chunks still degraded", r)
	}
	if n := repairNow(t, through.addr, secret); n != 3 {
		t.Errorf("shoal node repair: %d shards rebuilt, want 3 (one per chunk of the file)", n)
	}
	r = waitStatus(t, through.addr, "every chunk protected after the repair, on every node", healedAndCaughtUp)
	if r.Health.Protected < 3 {
		t.Errorf("protected chunks after the repair: got %d, want at least 3", r.Health.Protected)
	}
	// The rebuilt shards are where the placements say: the node that was
	// down holds them now, so a scrub of it finds them all.
	if rep := scrubNode(t, victim.addr, secret); rep.Checked < 3 || rep.Missing != 0 || rep.Corrupt != 0 {
		t.Errorf("scrub of the node repaired onto: %+v, want at least 3 shards checked, none missing or corrupt", rep)
	}
	readBack(t, through.addr, "after the repair", want)
	if n := repairNow(t, through.addr, secret); n != 0 {
		t.Errorf("a second repair pass: %d shards rebuilt, want 0", n)
	}
}
