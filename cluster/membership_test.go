package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"shoal/chunkstore"
	"shoal/wire"
)

var testSecret = []byte("a cluster secret for tests only")

// testCluster is a cluster of in-process nodes on loopback.
type testCluster struct {
	t     *testing.T
	cfgs  []NodeConfig
	nodes []*Node // nil while stopped
	// snapshotEvery, if set, makes nodes added later snapshot after that
	// many log entries, checked every 50 ms.
	snapshotEvery uint64
	// repairEvery, if set, is the RepairInterval of nodes added later
	// (else repair runs only when a test calls it).
	repairEvery time.Duration
}

// startCluster starts n nodes: the first bootstraps, the others join it.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	tc := &testCluster{t: t}
	for range n {
		tc.add()
	}
	return tc
}

// add starts one more node; all but the first join the first. Repair runs
// only when a test calls it, unless repairEvery is set.
func (tc *testCluster) add() *Node {
	t := tc.t
	t.Helper()
	i := len(tc.nodes)
	cfg := NodeConfig{
		ID:             fmt.Sprintf("n%d", i+1),
		DataDir:        t.TempDir(),
		Listen:         "127.0.0.1:0",
		RaftListen:     "127.0.0.1:0",
		GCInterval:     -1,
		RepairInterval: -1,
		Secret:         testSecret,
	}
	if i > 0 {
		cfg.Join = tc.nodes[0].Addr()
	}
	if tc.repairEvery > 0 {
		cfg.RepairInterval = tc.repairEvery
	}
	if tc.snapshotEvery > 0 {
		cfg.SnapshotThreshold, cfg.SnapshotInterval = tc.snapshotEvery, 50*time.Millisecond
	}
	nd, err := StartNode(cfg)
	if err != nil {
		t.Fatalf("start node %d: %v", i+1, err)
	}
	t.Cleanup(func() { nd.Close() })
	// Restarts reuse the ports.
	cfg.Listen, cfg.RaftListen, cfg.Join = nd.Addr(), string(nd.trans.LocalAddr()), ""
	tc.cfgs = append(tc.cfgs, cfg)
	tc.nodes = append(tc.nodes, nd)
	if i == 0 {
		tc.waitLeader()
	}
	return nd
}

// stop closes node i (as a crash would, for Raft: it just goes away).
func (tc *testCluster) stop(i int) {
	tc.t.Helper()
	tc.nodes[i].Close()
	tc.nodes[i] = nil
}

// restart starts node i again on its data directory and addresses.
func (tc *testCluster) restart(i int) {
	tc.t.Helper()
	nd, err := StartNode(tc.cfgs[i])
	if err != nil {
		tc.t.Fatalf("restart node %s: %v", tc.cfgs[i].ID, err)
	}
	tc.t.Cleanup(func() { nd.Close() })
	tc.nodes[i] = nd
}

// waitLeader waits until one running node is a ready leader and returns
// its index.
func (tc *testCluster) waitLeader() int {
	tc.t.Helper()
	leader := -1
	waitUntil(tc.t, "a ready leader", func() bool {
		for i, nd := range tc.nodes {
			if nd != nil && nd.ready.Load() {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lookup looks name up in the root directory of nd's own applied state.
func lookup(nd *Node, name string) bool {
	var resp *MetaResponse
	nd.fsm.read(func(s *State) { resp = s.Read(&MetaRequest{Op: wire.OpLookup, Ino: RootIno, Name: Name(name)}) })
	return resp.Errno == 0
}

// snapshotBytes returns nd's applied state and node records, encoded.
func snapshotBytes(t *testing.T, nd *Node) []byte {
	t.Helper()
	var buf bytes.Buffer
	nd.fsm.read(func(s *State) {
		if err := saveMembers(&buf, nd.fsm.members); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(&buf); err != nil {
			t.Fatal(err)
		}
	})
	return buf.Bytes()
}

func mkdir(ctx context.Context, m Metadata, name string) error {
	_, err := m.Do(ctx, &MetaRequest{Op: wire.OpMkdir, Ino: RootIno, Name: Name(name), Mode: 0o755})
	return err
}

func TestClusterJoinReplicatesAndForwards(t *testing.T) {
	tc := startCluster(t, 3)
	leader := tc.waitLeader()
	follower := (leader + 1) % 3
	// Every node learns all three members, with addresses, as voters.
	for i, nd := range tc.nodes {
		waitUntil(t, fmt.Sprintf("node %d to know 3 members", i+1), func() bool {
			m, _ := nd.Members()
			return len(m) == 3 && m[0].Addr != "" && m[1].Addr != "" && m[2].Addr != ""
		})
		m, lead := nd.Members()
		for _, rec := range m {
			if !rec.Voter {
				t.Errorf("node %d: member %s is not a voter, want a voter", i+1, rec.ID)
			}
		}
		if lead == "" {
			t.Errorf("node %d knows no leader, want one", i+1)
		}
	}
	// A client pinned to a follower writes; only forwarding to the leader
	// can make that work.
	c, err := Dial(context.Background(), tc.nodes[follower].Addr(), ClientConfig{RetryFor: 5 * time.Second, Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := mkdir(ctx, c, "via-follower"); err != nil {
		t.Fatalf("mkdir through follower %s: got %v, want success", tc.cfgs[follower].ID, err)
	}
	// A file-system error comes back as such, not as "unavailable".
	if err := mkdir(ctx, c, "via-follower"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("second mkdir through follower: got %v, want EEXIST", err)
	}
	// Reads through the follower see the write (they are forwarded too).
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpLookup, Ino: RootIno, Name: "via-follower"}); err != nil {
		t.Errorf("lookup through follower: got %v, want success", err)
	}
	for i, nd := range tc.nodes {
		waitUntil(t, fmt.Sprintf("node %d to apply the mkdir", i+1), func() bool { return lookup(nd, "via-follower") })
	}
	// A client that is not pinned learns every member's address.
	free, err := Dial(context.Background(), tc.nodes[follower].Addr(), ClientConfig{RetryFor: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { free.Close() })
	if got := len(free.Addrs()); got != 3 {
		t.Errorf("client knows %d addresses (%v), want 3", got, free.Addrs())
	}
	st, err := c.NodeStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != tc.cfgs[follower].ID || st.Role != "follower" || st.Term == 0 || st.Applied == 0 {
		t.Errorf("status of the follower: got %+v, want id %s, role follower, term and applied index > 0", st, tc.cfgs[follower].ID)
	}
}

func TestClusterLeaderLossElectsNewLeader(t *testing.T) {
	tc := startCluster(t, 3)
	old := tc.waitLeader()
	// The client first talks to the leader; it must fail over when it dies.
	c, err := Dial(context.Background(), tc.nodes[old].Addr(), ClientConfig{RetryFor: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := mkdir(ctx, c, "before"); err != nil {
		t.Fatal(err)
	}
	tc.stop(old)
	start := time.Now()
	leader := tc.waitLeader()
	t.Logf("new leader %s after %v", tc.cfgs[leader].ID, time.Since(start))
	if leader == old {
		t.Fatalf("leader: got the stopped node %d, want another", old+1)
	}
	if err := mkdir(ctx, c, "after"); err != nil {
		t.Fatalf("mkdir after the leader stopped: got %v, want success", err)
	}
	for i, nd := range tc.nodes {
		if nd == nil {
			continue
		}
		waitUntil(t, fmt.Sprintf("node %d to apply both mkdirs", i+1), func() bool { return lookup(nd, "before") && lookup(nd, "after") })
	}
	// The old leader comes back as a follower and catches up.
	tc.restart(old)
	waitUntil(t, "the restarted node to catch up", func() bool { return lookup(tc.nodes[old], "after") })
}

func TestClusterMinorityCannotCommit(t *testing.T) {
	tc := startCluster(t, 3)
	leader := tc.waitLeader()
	a, b := (leader+1)%3, (leader+2)%3
	tc.stop(a)
	tc.stop(b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := mkdir(ctx, tc.nodes[leader], "lonely")
	if err == nil {
		t.Fatalf("mkdir on a leader cut off from its majority: got success, want an error")
	}
	t.Logf("minority write: %v", err)
	if lookup(tc.nodes[leader], "lonely") {
		t.Errorf("minority node applied a write it could not commit")
	}
	// Healing: every node ends with the same state, and the cluster works.
	tc.restart(a)
	tc.restart(b)
	tc.waitLeader()
	c, err := Dial(context.Background(), tc.nodes[a].Addr(), ClientConfig{RetryFor: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := mkdir(context.Background(), c, "healed"); err != nil {
		t.Fatalf("mkdir after healing: got %v, want success", err)
	}
	waitUntil(t, "all nodes to converge", func() bool {
		want := snapshotBytes(t, tc.nodes[0])
		for _, nd := range tc.nodes[1:] {
			if !lookup(nd, "healed") || !bytes.Equal(snapshotBytes(t, nd), want) {
				return false
			}
		}
		return lookup(tc.nodes[0], "healed")
	})
}

func TestStrangerCannotJoin(t *testing.T) {
	tc := startCluster(t, 1)
	_, err := StartNode(NodeConfig{
		ID: "intruder", DataDir: t.TempDir(), Listen: "127.0.0.1:0", RaftListen: "127.0.0.1:0",
		GCInterval: -1, Secret: []byte("not the cluster secret at all"), Join: tc.nodes[0].Addr(), JoinTimeout: 5 * time.Second,
	})
	if !errors.Is(err, ErrBadSecret) {
		t.Errorf("join with a wrong secret: got %v, want ErrBadSecret", err)
	}
	// Without the peer service, membership ops are refused.
	c := dialTestNode(t, tc.nodes[0])
	err = c.AddNode(context.Background(), NodeInfo{ID: "intruder", Addr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"})
	if !errors.Is(err, syscall.EPERM) {
		t.Errorf("add node without the secret: got %v, want EPERM", err)
	}
	if m, _ := tc.nodes[0].Members(); len(m) != 1 {
		t.Errorf("members after the attempts: got %v, want only n1", m)
	}
}

// TestStrangerCannotSpeakRaft sends a member of a running cluster a vote
// request with a huge term on its Raft port, as a stranger who reaches
// the port could: it must get no answer, and the cluster's term and
// leader must not move (plain Raft would step the leader down).
func TestStrangerCannotSpeakRaft(t *testing.T) {
	tc := startCluster(t, 3)
	leader := tc.waitLeader()
	target := tc.nodes[(leader+1)%len(tc.nodes)]
	term := func(nd *Node) string { return nd.raft.Stats()["term"] }
	before := term(target)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stranger := raft.NewNetworkTransportWithLogger(plainLayer{ln}, 1, 2*time.Second, hclog.NewNullLogger())
	defer stranger.Close()
	vote := &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("stranger"), Addr: []byte(ln.Addr().String())}, Term: 1 << 40, LastLogIndex: 1 << 40, LastLogTerm: 1 << 40}
	var resp raft.RequestVoteResponse
	if err := stranger.RequestVote("target", target.trans.LocalAddr(), vote, &resp); err == nil {
		t.Errorf("vote request from a stranger: answered (term %d, granted %v), want an error", resp.Term, resp.Granted)
	}
	time.Sleep(500 * time.Millisecond)
	if after := term(target); after != before {
		t.Errorf("term of the node asked: %s before, %s after a stranger's vote request", before, after)
	}
	if now := tc.waitLeader(); now != leader {
		t.Errorf("leader changed from node %d to %d after a stranger's vote request", leader, now)
	}
}

func TestAddAndRemoveNode(t *testing.T) {
	tc := startCluster(t, 3)
	leader := tc.waitLeader()
	follower := (leader + 1) % 3
	ctx := context.Background()
	if err := mkdir(ctx, tc.nodes[leader], "early"); err != nil {
		t.Fatal(err)
	}
	// A node that waits to be added, added by an operator through a follower.
	n4, err := StartNode(NodeConfig{ID: "n4", DataDir: t.TempDir(), Listen: "127.0.0.1:0", RaftListen: "127.0.0.1:0",
		GCInterval: -1, Secret: testSecret, NoBootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n4.Close() })
	admin, err := Dial(ctx, tc.nodes[follower].Addr(), ClientConfig{Secret: testSecret, RetryFor: 10 * time.Second, Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.AddNode(ctx, NodeInfo{ID: "n4", Addr: n4.Addr(), RaftAddr: string(n4.trans.LocalAddr())}); err != nil {
		t.Fatalf("add n4 through a follower: got %v, want success", err)
	}
	waitUntil(t, "n4 to replicate the log", func() bool { return lookup(n4, "early") })
	if m, _, _ := admin.Members(ctx); len(m) != 4 {
		t.Errorf("members after adding n4: got %d, want 4", len(m))
	}
	// Removing it leaves three voters; removing an unknown node is ENOENT.
	if err := admin.RemoveNode(ctx, "n4"); err != nil {
		t.Fatalf("remove n4: got %v, want success", err)
	}
	if err := admin.RemoveNode(ctx, "n4"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("remove n4 again: got %v, want ENOENT", err)
	}
	waitUntil(t, "every node to drop n4", func() bool {
		for _, nd := range tc.nodes {
			if m, _ := nd.Members(); len(m) != 3 {
				return false
			}
		}
		return true
	})
	if err := mkdir(ctx, admin, "after-removal"); err != nil {
		t.Errorf("mkdir after removing n4: got %v, want success", err)
	}
}

// TestClusterInlineChunksOnEveryNode commits a new small file through a
// follower, its create and its chunk inside the commit: every node applies
// the create and holds the chunk in its own store, so the small file's
// data is replicated as its metadata is.
func TestClusterInlineChunksOnEveryNode(t *testing.T) {
	tc := startCluster(t, 3)
	leader := tc.waitLeader()
	follower := (leader + 1) % 3
	c, err := Dial(context.Background(), tc.nodes[follower].Addr(), ClientConfig{RetryFor: 5 * time.Second, Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	alloc, err := c.Do(ctx, &MetaRequest{Op: wire.OpAllocInodes, Size: 8})
	if err != nil {
		t.Fatalf("alloc inodes through a follower: %v", err)
	}
	ino := alloc.FirstIno
	data := []byte("small and replicated")
	id := chunkstore.Sum(data)
	create := &MetaRequest{Op: wire.OpCreate, Ino: RootIno, Name: "small", Mode: syscall.S_IFREG | 0o644, NewIno: ino}
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: ino, Size: uint64(len(data)), Create: create,
		Blocks: []Block{{ID: ChunkID(id), Len: uint32(len(data)), Data: data}}}); err != nil {
		t.Fatalf("commit with create and inline chunk through a follower: %v", err)
	}
	for i, nd := range tc.nodes {
		waitUntil(t, fmt.Sprintf("node %d to apply the commit", i+1), func() bool { return lookup(nd, "small") })
		// The chunk is stored just after the commit is applied.
		waitUntil(t, fmt.Sprintf("node %d to store the inline chunk", i+1), func() bool {
			ok, err := nd.Store().Has(ctx, id)
			return err == nil && ok
		})
		got, err := nd.Store().Get(ctx, id)
		if err != nil || string(got) != string(data) {
			t.Errorf("node %d store: got %q, %v; want %q", i+1, got, err, data)
		}
	}
	// The same create again: the name exists, and nothing changes.
	_, err = c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: ino + 1, Size: 0, Create: &MetaRequest{Op: wire.OpCreate, Ino: RootIno, Name: "small", Mode: syscall.S_IFREG | 0o644, NewIno: ino + 1}})
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("second create of the name: got %v, want EEXIST", err)
	}
}

// TestNodeCopiesInlineChunksItLacks checks that a node that got its state
// from a snapshot, and so never applied the commits that carried inline
// chunks, copies those chunks from another node on its own; and that a
// scrub copies again an inline chunk lost or corrupted on disk.
func TestNodeCopiesInlineChunksItLacks(t *testing.T) {
	tc := &testCluster{t: t, snapshotEvery: 16}
	first := tc.add()
	c := dialTestNode(t, first)
	ctx := context.Background()
	alloc, err := c.Do(ctx, &MetaRequest{Op: wire.OpAllocInodes, Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	var ids []chunkstore.ID
	for i := range 40 {
		ino := alloc.FirstIno + uint64(i)
		data := fmt.Appendf(nil, "small file %d", i)
		id := chunkstore.Sum(data)
		ids = append(ids, id)
		create := &MetaRequest{Op: wire.OpCreate, Ino: RootIno, Name: Name(fmt.Sprintf("f%d", i)), Mode: syscall.S_IFREG | 0o644, NewIno: ino}
		if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: ino, Size: uint64(len(data)), Create: create,
			Blocks: []Block{{ID: ChunkID(id), Len: uint32(len(data)), Data: data}}}); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	waitUntil(t, "a snapshot that lets the early log go", func() bool {
		first, err := first.boltdb.FirstIndex()
		return err == nil && first > 1
	})
	second := tc.add()
	waitUntil(t, "the new node to hold every inline chunk", func() bool {
		for _, id := range ids {
			if ok, err := second.Store().Has(ctx, id); err != nil || !ok {
				return false
			}
		}
		return true
	})
	// Lose one chunk file and corrupt another on the new node: a scrub
	// finds both and copies them again.
	if err := os.Remove(second.Store().Path(ids[0])); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(second.Store().Path(ids[1]), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := second.Scrub(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep := resp.Scrubbed; rep.Missing != 1 || rep.Corrupt != 1 || rep.Refetched != 2 {
		t.Fatalf("scrub: %+v, want 1 missing, 1 corrupt, 2 copied again", rep)
	}
	for _, id := range ids[:2] {
		if got, err := second.Store().Get(ctx, id); err != nil || chunkstore.Sum(got) != id {
			t.Fatalf("chunk %s after the scrub: %v", id, err)
		}
	}
}
