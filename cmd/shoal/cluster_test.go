package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shoal/cluster"
	"shoal/ops/status"
)

// clusterStatus runs "shoal status --json" against addr; nil if it fails.
func clusterStatus(t *testing.T, addr string) *status.Report {
	t.Helper()
	out, err := exec.Command(shoalBinary(t), "status", "--json", "--node", addr, "--timeout", "2s").Output()
	if err != nil {
		t.Logf("shoal status --node %s: %v", addr, err)
		return nil
	}
	var r status.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("shoal status --json: %v\n%s", err, out)
	}
	return &r
}

// waitStatus polls "shoal status" until cond holds for its report.
func waitStatus(t *testing.T, addr, what string, cond func(r *status.Report) bool) *status.Report {
	t.Helper()
	return waitStatusWithin(t, 30*time.Second, addr, what, cond)
}

// waitStatusWithin is waitStatus with a deadline of its own.
func waitStatusWithin(t *testing.T, within time.Duration, addr, what string, cond func(r *status.Report) bool) *status.Report {
	t.Helper()
	var r *status.Report
	waitForWithin(t, within, what, func() bool {
		r = clusterStatus(t, addr)
		return r != nil && cond(r)
	}, nil)
	return r
}

// leaders counts the nodes that are up and say they lead.
func leaders(r *status.Report) int {
	n := 0
	for _, nd := range r.Nodes {
		if nd.Up && nd.Status.Role == "leader" {
			n++
		}
	}
	return n
}

// startThree starts node a, which bootstraps, and b and c, which join
// (c through b, a follower or the leader), each with the extra flags, and
// waits until "shoal status" shows all three up with a leader.
func startThree(t *testing.T, base string, extra ...string) (map[string]*node, *status.Report) {
	t.Helper()
	a := startNode(t, filepath.Join(base, "a"), append([]string{"--id", "a"}, extra...)...)
	secret := filepath.Join(a.data, "cluster-secret")
	waitFor(t, "node a's cluster secret", func() bool { _, err := os.Stat(secret); return err == nil }, a.proc)
	b := startNode(t, filepath.Join(base, "b"), append([]string{"--id", "b", "--join", a.addr, "--secret-file", secret}, extra...)...)
	c := startNode(t, filepath.Join(base, "c"), append([]string{"--id", "c", "--join", b.addr, "--secret-file", secret}, extra...)...)
	r := waitStatus(t, c.addr, "3 nodes up with a leader", func(r *status.Report) bool {
		return len(r.Nodes) == 3 && r.Up == 3 && r.Leader != ""
	})
	return map[string]*node{"a": a, "b": b, "c": c}, r
}

// converged reports whether all three nodes are up, one leads, and all
// have applied the same log index.
func converged(r *status.Report) bool {
	if r.Up != 3 || leaders(r) != 1 {
		return false
	}
	for _, nd := range r.Nodes {
		if nd.Status.Applied != r.Nodes[0].Status.Applied {
			return false
		}
	}
	return true
}

// TestThreeNodeClusterSurvivesLeaderKill joins three real node processes
// into a cluster, mounts it, checks that a directory's user.shoal.ec takes
// effect, kills the leader with SIGKILL and checks that a new leader is
// elected and the mount keeps working.
func TestThreeNodeClusterSurvivesLeaderKill(t *testing.T) {
	base := t.TempDir()
	// No repair pass during the test: only the re-encoding that follows a
	// commit can give the chunk below its three copies.
	nodes, r := startThree(t, base, "--repair-interval", "1h")
	if r.Voters != 3 || leaders(r) != 1 {
		t.Fatalf("status: got %d voters and %d leaders, want 3 and 1: %+v", r.Voters, leaders(r), r)
	}
	for _, nd := range r.Nodes {
		if want := nodes[nd.ID]; want == nil || nd.Addr != want.addr || nd.RaftAddr != want.raft {
			t.Errorf("status lists node %s at %s / %s, want one of a, b, c at their addresses", nd.ID, nd.Addr, nd.RaftAddr)
		}
	}
	oldLeader := r.Leader
	t.Logf("leader: %s, term %d", oldLeader, r.Term)

	// Mount through a follower, naming every node.
	var mountNode *node
	var all []string
	for _, id := range []string{"a", "b", "c"} {
		all = append(all, nodes[id].addr)
		if id != oldLeader && mountNode == nil {
			mountNode = nodes[id]
		}
	}
	mnt := filepath.Join(base, "mnt")
	startMount(t, strings.Join(append([]string{mountNode.addr}, all...), ","), mnt)
	want := map[string][32]byte{}
	before := randomBytes(1, 3<<20)
	writeFile(t, filepath.Join(mnt, "before"), before)
	want["before"] = sha256.Sum256(before)

	// A directory asking for three whole copies (user.shoal.ec): its
	// file's chunk is re-encoded from the cluster's 2+1 to a full copy on
	// every node right after the close, long before a repair pass.
	precious := filepath.Join(mnt, "precious")
	if err := os.Mkdir(precious, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(precious, cluster.SchemeXattr, []byte("1+2"), 0); err != nil {
		t.Fatalf("setxattr %s: %v", cluster.SchemeXattr, err)
	}
	copies := randomBytes(3, 1<<20) // one block: the chunk is the whole file
	writeFile(t, filepath.Join(precious, "copies"), copies)
	sum := sha256.Sum256(copies)
	want["precious/copies"] = sum
	id := hex.EncodeToString(sum[:])
	waitForWithin(t, 15*time.Second, "a whole copy of the chunk in every node's store", func() bool {
		for _, nd := range nodes {
			if _, err := os.Stat(filepath.Join(nd.data, "chunks", "chunks", id[:2], id)); err != nil {
				return false
			}
		}
		return true
	}, nil)

	// Kill the leader.
	nodes[oldLeader].kill()
	killed := time.Now()
	survivor := mountNode.addr
	r = waitStatus(t, survivor, "a new leader", func(r *status.Report) bool {
		return r.Leader != "" && r.Leader != oldLeader
	})
	t.Logf("new leader %s in term %d, seen %v after the kill", r.Leader, r.Term, time.Since(killed))
	if r.Up != 2 {
		t.Errorf("status after the kill: got %d nodes up, want 2", r.Up)
	}
	for _, nd := range r.Nodes {
		if nd.ID == oldLeader && nd.Up {
			t.Errorf("status after the kill: killed node %s shows as up", nd.ID)
		}
	}

	// The mount keeps working: new files, a directory, a rename, and the
	// old file still reads back.
	after := randomBytes(2, 1<<20)
	if err := os.Mkdir(filepath.Join(mnt, "dir"), 0o755); err != nil {
		t.Fatalf("mkdir after the leader was killed: got %v, want success", err)
	}
	writeFile(t, filepath.Join(mnt, "dir", "after"), after)
	if err := os.Rename(filepath.Join(mnt, "dir", "after"), filepath.Join(mnt, "dir", "renamed")); err != nil {
		t.Fatalf("rename after the leader was killed: got %v, want success", err)
	}
	want["dir/renamed"] = sha256.Sum256(after)
	checkSums(t, mnt, want)

	// The killed node comes back, catches up and follows.
	nodes[oldLeader].restart(t, "--id", oldLeader)
	waitStatus(t, survivor, "all 3 nodes up again and caught up", converged)
}

// mkdirVia makes directory name in the root through the node at addr only.
func mkdirVia(t *testing.T, addr, name string, retryFor time.Duration) error {
	t.Helper()
	c, err := cluster.Dial(context.Background(), addr, cluster.ClientConfig{Pin: true, RetryFor: retryFor})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Do(context.Background(), &cluster.MetaRequest{Op: cluster.OpMkdir, Ino: cluster.RootIno, Name: cluster.Name(name), Mode: 0o755})
	return err
}

// TestStoppedNodesCannotSplitTheCluster freezes processes with SIGSTOP, as
// a network partition would cut them off: a leader left alone refuses
// writes; a frozen leader is replaced; after SIGCONT every node agrees.
func TestStoppedNodesCannotSplitTheCluster(t *testing.T) {
	nodes, r := startThree(t, t.TempDir())
	leader := nodes[r.Leader]
	var followers []*node
	for id, n := range nodes {
		if id != r.Leader {
			followers = append(followers, n)
		}
	}

	// The leader in a minority of one refuses to commit.
	for _, f := range followers {
		f.cmd.Process.Signal(syscall.SIGSTOP)
	}
	err := mkdirVia(t, leader.addr, "minority", 5*time.Second)
	if err == nil || !cluster.IsTransient(err) {
		t.Errorf("mkdir on a leader cut off from both followers: got %v, want a transient failure", err)
	}
	for _, f := range followers {
		f.cmd.Process.Signal(syscall.SIGCONT)
	}
	waitStatus(t, leader.addr, "the cluster to heal", converged)

	// A frozen leader is replaced; the others go on.
	r = clusterStatus(t, leader.addr)
	if r == nil {
		t.Fatal("no status after healing")
	}
	frozen := nodes[r.Leader]
	frozen.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { frozen.cmd.Process.Signal(syscall.SIGCONT) })
	var survivor *node
	for id, n := range nodes {
		if id != r.Leader {
			survivor = n
		}
	}
	waitStatus(t, survivor.addr, "a new leader while the old one is frozen", func(s *status.Report) bool {
		return s.Leader != "" && s.Leader != r.Leader
	})
	if err := mkdirVia(t, survivor.addr, "majority", 20*time.Second); err != nil {
		t.Fatalf("mkdir through a survivor while the leader is frozen: got %v, want success", err)
	}
	frozen.cmd.Process.Signal(syscall.SIGCONT)
	waitStatus(t, survivor.addr, "the old leader to rejoin and catch up", converged)
	if err := mkdirVia(t, frozen.addr, "majority", 20*time.Second); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("mkdir of an existing name through the old leader: got %v, want EEXIST", err)
	}
}

// TestJoinWithWrongSecretFails starts a node with a secret the cluster does
// not know: it must not join.
func TestJoinWithWrongSecretFails(t *testing.T) {
	base := t.TempDir()
	a := startNode(t, filepath.Join(base, "a"), "--id", "a")
	bad := filepath.Join(base, "bad-secret")
	if err := os.WriteFile(bad, []byte("this is not the cluster secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(shoalBinary(t), "node", "--id", "x", "--data", filepath.Join(base, "x"),
		"--listen", freeAddr(t), "--raft", freeAddr(t), "--join", a.addr, "--secret-file", bad).CombinedOutput()
	if err == nil {
		t.Fatalf("node with a wrong secret: exited 0, want a failure\n%s", out)
	}
	if !strings.Contains(string(out), "secret") {
		t.Errorf("node with a wrong secret: output does not mention the secret:\n%s", out)
	}
	r := waitStatus(t, a.addr, "status", func(r *status.Report) bool { return true })
	if len(r.Nodes) != 1 {
		t.Errorf("members after a stranger tried to join: got %d, want 1", len(r.Nodes))
	}
}
