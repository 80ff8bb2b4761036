package main

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	var r *status.Report
	waitFor(t, what, func() bool {
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

// TestThreeNodeClusterSurvivesLeaderKill joins three real node processes
// into a cluster, mounts it, kills the leader with SIGKILL and checks that
// a new leader is elected and the mount keeps working.
func TestThreeNodeClusterSurvivesLeaderKill(t *testing.T) {
	base := t.TempDir()
	a := startNode(t, filepath.Join(base, "a"), "--id", "a")
	secret := filepath.Join(a.data, "cluster-secret")
	waitFor(t, "node a's cluster secret", func() bool { _, err := os.Stat(secret); return err == nil }, a.proc)
	b := startNode(t, filepath.Join(base, "b"), "--id", "b", "--join", a.addr, "--secret-file", secret)
	c := startNode(t, filepath.Join(base, "c"), "--id", "c", "--join", b.addr, "--secret-file", secret)
	nodes := map[string]*node{"a": a, "b": b, "c": c}

	r := waitStatus(t, c.addr, "3 nodes up with a leader", func(r *status.Report) bool {
		return len(r.Nodes) == 3 && r.Up == 3 && r.Leader != ""
	})
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
	waitStatus(t, survivor, "all 3 nodes up again", func(r *status.Report) bool {
		if r.Up != 3 || leaders(r) != 1 {
			return false
		}
		for _, nd := range r.Nodes {
			if nd.Status.Applied != r.Nodes[0].Status.Applied {
				return false
			}
		}
		return true
	})
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
