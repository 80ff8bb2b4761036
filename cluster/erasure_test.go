package cluster

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

// placedOn returns the placement of chunk id in nd's applied state.
func placedOn(nd *Node, id chunkstore.ID) (Placement, bool) {
	var p Placement
	var ok bool
	nd.fsm.read(func(s *State) { p, ok = s.Placed(id) })
	return p, ok
}

// nodeByID returns the index of the running node with id.
func (tc *testCluster) nodeByID(id string) int {
	for i, cfg := range tc.cfgs {
		if cfg.ID == id {
			return i
		}
	}
	tc.t.Fatalf("no node %q", id)
	return -1
}

// shardFiles counts the nodes whose store holds the shards p names for
// them, and fails the test if a named holder lacks its shard.
func (tc *testCluster) checkShards(p Placement) int {
	tc.t.Helper()
	scheme := chunkstore.Scheme{Data: int(p.Data), Parity: int(p.Parity)}
	n := 0
	for i, h := range p.Nodes {
		if h == "" {
			continue
		}
		nd := tc.nodes[tc.nodeByID(h)]
		if nd == nil {
			continue
		}
		ok, err := nd.Store().Has(context.Background(), chunkstore.ShardKey(chunkstore.ID(p.ID), scheme, i))
		if err != nil || !ok {
			tc.t.Errorf("chunk %s shard %d: holder %s lacks it (%v)", chunkstore.ID(p.ID), i, h, err)
			continue
		}
		n++
	}
	return n
}

// startShardingCluster starts three nodes and waits for a leader and
// for every node to know all three as places for shards; it returns the
// cluster and the leader's index.
func startShardingCluster(t *testing.T) (*testCluster, int) {
	t.Helper()
	tc := startCluster(t, 3)
	leader := tc.waitLeader()
	for _, nd := range tc.nodes {
		waitUntil(t, "every node to know all three members", func() bool { return len(nd.shardNodes()) == 3 })
	}
	return tc, leader
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestClusterErasureCoding follows chunks through a 3-node cluster: split
// 2+1 across the three nodes, read with a node down (rebuilt from
// parity), written with a node down (degraded), repaired once it is back,
// a corrupt shard found by a read and by a scrub and rewritten, and the
// shards of a deleted file collected on every node.
func TestClusterErasureCoding(t *testing.T) {
	tc, leader := startShardingCluster(t)
	ctx := context.Background()
	dial := func(i int) *Client {
		c, err := Dial(ctx, tc.nodes[i].Addr(), ClientConfig{RetryFor: 10 * time.Second, Pin: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	follower := (leader + 1) % 3
	other := (leader + 2) % 3
	c := dial(follower)

	big := randomBytes(1, 1<<20+3)
	small := randomBytes(2, 10<<10)
	bigID, smallID := chunkstore.Sum(big), chunkstore.Sum(small)
	for _, data := range [][]byte{big, small} {
		if err := c.Put(ctx, chunkstore.Sum(data), data); err != nil {
			t.Fatalf("put through a follower: %v", err)
		}
	}
	pb, ok := placedOn(tc.nodes[leader], bigID)
	if !ok || pb.Data != 2 || pb.Parity != 1 || holders(pb.Nodes) != 3 {
		t.Fatalf("big chunk placement: %+v %v, want 2+1 on three nodes", pb, ok)
	}
	if got := tc.checkShards(pb); got != 3 {
		t.Fatalf("big chunk: %d shards stored, want 3", got)
	}
	ps, ok := placedOn(tc.nodes[leader], smallID)
	if !ok || ps.Data != 1 || ps.Parity != 1 || holders(ps.Nodes) != 2 {
		t.Fatalf("small chunk placement: %+v %v, want two copies", ps, ok)
	}
	tc.checkShards(ps)
	// No node holds the big chunk whole: it is split, not copied.
	for i, nd := range tc.nodes {
		if ok, _ := nd.Store().Has(ctx, bigID); ok {
			t.Errorf("node %d holds the big chunk whole", i+1)
		}
	}

	// A commit may name placed chunks only.
	alloc, err := c.Do(ctx, &MetaRequest{Op: wire.OpAllocInodes, Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	ino := alloc.FirstIno
	create := &MetaRequest{Op: wire.OpCreate, Ino: RootIno, Name: "f", Mode: syscall.S_IFREG | 0o644, NewIno: ino}
	unplaced := chunkstore.Sum([]byte("never pushed"))
	_, err = c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: ino, Size: 100, Create: create, Blocks: []Block{{ID: ChunkID(unplaced), Len: 12}}})
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("commit naming a chunk never pushed: got %v, want EAGAIN", err)
	}
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: ino, Size: uint64(len(big)), Create: create,
		Blocks: []Block{{ID: ChunkID(bigID), Len: uint32(len(big))}}}); err != nil {
		t.Fatalf("commit: %v", err)
	}

	read := func(c *Client, id chunkstore.ID, want []byte, what string) {
		t.Helper()
		got, err := c.Get(ctx, id)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: got %d bytes, %v; want the %d bytes written", what, len(got), err, len(want))
		}
	}
	read(dial(other), bigID, big, "read through another node")

	// Stop a node that holds a data shard of the big chunk and is not the
	// leader; read through a node that is up.
	victim := -1
	for _, h := range pb.Nodes[:2] {
		if i := tc.nodeByID(h); i != leader {
			victim = i
			break
		}
	}
	reader := 3 - leader - victim
	cr := dial(reader)
	tc.stop(victim)
	read(cr, bigID, big, "read with a data shard's node down")
	read(cr, smallID, small, "read a copied chunk with a node down")

	// A chunk written with the node down is degraded: two of three shards.
	deg := randomBytes(3, 300<<10)
	degID := chunkstore.Sum(deg)
	if err := cr.Put(ctx, degID, deg); err != nil {
		t.Fatalf("put with a node down: %v", err)
	}
	pd, _ := placedOn(tc.nodes[leader], degID)
	if holders(pd.Nodes) != 2 {
		t.Fatalf("chunk written with a node down: placement %+v, want two holders", pd)
	}
	tc.nodes[leader].probe(ctx)
	if h := tc.nodes[leader].Health(); h == nil || h.Degraded < 1 || h.Lost != 0 {
		t.Fatalf("health with a node down: %+v, want degraded chunks and none lost", h)
	}

	// Back up, repair completes the chunk.
	tc.restart(victim)
	waitUntil(t, "the node to catch up", func() bool { _, ok := placedOn(tc.nodes[victim], bigID); return ok })
	waitUntil(t, "the leader to see the node again", func() bool {
		tc.nodes[leader].probe(ctx)
		up, _ := tc.nodes[leader].upNodes()
		return up[tc.cfgs[victim].ID]
	})
	n, err := tc.nodes[leader].Repair(ctx)
	if err != nil || n < 1 {
		t.Fatalf("repair: rebuilt %d shards, %v; want at least 1", n, err)
	}
	pd, _ = placedOn(tc.nodes[leader], degID)
	if got := tc.checkShards(pd); got != 3 {
		t.Fatalf("after repair: %d of 3 shards stored (%+v)", got, pd)
	}
	if h := tc.nodes[leader].Health(); h.Degraded != 0 || h.Lost != 0 || h.Protected < 3 {
		t.Fatalf("health after repair: %+v, want everything protected", h)
	}

	// A corrupt shard found by a scrub, and one found by a read: each is
	// reported lost and rewritten by repair, and reads return the chunk
	// meanwhile (from parity).
	scheme := chunkstore.Scheme{Data: 2, Parity: 1}
	corrupt := func(shard int) (*Node, chunkstore.ID) {
		t.Helper()
		holder := tc.nodes[tc.nodeByID(pb.Nodes[shard])]
		key := chunkstore.ShardKey(bigID, scheme, shard)
		path := holder.Store().Path(key)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-10] ^= 0xff
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return holder, key
	}
	repaired := func(shard int, holder *Node, key chunkstore.ID) {
		t.Helper()
		waitUntil(t, "the lost shard to be displaced", func() bool { p, _ := placedOn(tc.nodes[leader], bigID); return p.Nodes[shard] == "" })
		if n, err := tc.nodes[leader].Repair(ctx); err != nil || n != 1 {
			t.Fatalf("repair of shard %d: rebuilt %d, %v; want 1", shard, n, err)
		}
		pb, _ = placedOn(tc.nodes[leader], bigID)
		if got := tc.checkShards(pb); got != 3 {
			t.Fatalf("after repair of shard %d: %d of 3 shards (%+v)", shard, got, pb)
		}
		if got, err := holder.Store().Get(ctx, key); err != nil || len(got) != (len(big)+1)/2 {
			t.Fatalf("rewritten shard %d: %d bytes, %v", shard, len(got), err)
		}
	}
	holder, key := corrupt(1)
	resp, err := holder.Scrub(ctx)
	if err != nil {
		t.Fatalf("scrub: %v", err)
	}
	if r := resp.Scrubbed; r.Checked < 1 || r.Corrupt != 1 || r.Missing != 0 {
		t.Fatalf("scrub: %+v, want the one corrupt shard found", r)
	}
	repaired(1, holder, key)
	holder, key = corrupt(0)
	read(dial(leader), bigID, big, "read with a corrupt shard")
	repaired(0, holder, key)

	// Unlink the file: the collector deletes the big chunk's shards on
	// every node and forgets its placement.
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpUnlink, Ino: RootIno, Name: "f"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpDrop, Ino: ino}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the doom must postdate the shards' files
	if _, err := tc.nodes[leader].CollectGarbage(ctx); err != nil {
		t.Fatalf("collect garbage: %v", err)
	}
	if _, ok := placedOn(tc.nodes[leader], bigID); ok {
		t.Fatal("collected chunk still placed")
	}
	for i, nd := range tc.nodes {
		for s := range 3 {
			if ok, _ := nd.Store().Has(ctx, chunkstore.ShardKey(bigID, chunkstore.Scheme{Data: 2, Parity: 1}, s)); ok {
				t.Errorf("node %d still holds shard %d of the collected chunk", i+1, s)
			}
		}
	}
	// Chunks pushed but never committed stay until PlaceGrace.
	if _, ok := placedOn(tc.nodes[leader], degID); !ok {
		t.Error("an uncommitted chunk younger than PlaceGrace was collected")
	}
	if slices.Contains(pb.Nodes, "") {
		t.Error("placement lost a holder")
	}
}

// putAndCommit pushes data as one chunk and commits it as the new file
// name in directory dir, through c; it returns the chunk's id.
func putAndCommit(t *testing.T, c *Client, dir uint64, name string, data []byte) chunkstore.ID {
	t.Helper()
	ctx := context.Background()
	id := chunkstore.Sum(data)
	if err := c.Put(ctx, id, data); err != nil {
		t.Fatalf("put: %v", err)
	}
	alloc, err := c.Do(ctx, &MetaRequest{Op: wire.OpAllocInodes, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	create := &MetaRequest{Op: wire.OpCreate, Ino: dir, Name: Name(name), Mode: syscall.S_IFREG | 0o644, NewIno: alloc.FirstIno}
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: alloc.FirstIno, Create: create, Size: uint64(len(data)),
		Blocks: []Block{{ID: ChunkID(id), Len: uint32(len(data))}}}); err != nil {
		t.Fatalf("commit %s: %v", name, err)
	}
	return id
}

// wantCopyEverywhere checks that every node's store holds a whole copy of
// chunk id and that c reads it back as data.
func (tc *testCluster) wantCopyEverywhere(c *Client, id chunkstore.ID, data []byte) {
	t := tc.t
	t.Helper()
	ctx := context.Background()
	for i := range tc.nodes {
		if ok, _ := tc.nodes[i].Store().Has(ctx, id); !ok {
			t.Errorf("node %d has no copy of the chunk", i+1)
		}
	}
	if got, err := c.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read the chunk: %d bytes, %v", len(got), err)
	}
}

// TestClusterReencodes grows a one-node cluster to three: repair
// re-encodes the single copies written before into 2+1; then a directory
// asking for three copies (SchemeXattr) gets its file's chunk re-encoded
// so.
func TestClusterReencodes(t *testing.T) {
	tc := startCluster(t, 1)
	ctx := context.Background()
	c, err := Dial(ctx, tc.nodes[0].Addr(), ClientConfig{RetryFor: 10 * time.Second, Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	commit := func(name string, dir uint64, data []byte) chunkstore.ID {
		t.Helper()
		return putAndCommit(t, c, dir, name, data)
	}
	old := randomBytes(7, 1<<20)
	oldID := commit("old", RootIno, old)
	if p, _ := placedOn(tc.nodes[0], oldID); p.Data != 1 || p.Parity != 0 {
		t.Fatalf("one-node placement: %+v, want 1+0", p)
	}
	tc.add()
	tc.add()
	leader := tc.waitLeader()
	waitUntil(t, "three members", func() bool { return len(tc.nodes[leader].shardNodes()) == 3 })
	if n, err := tc.nodes[leader].Repair(ctx); err != nil || n != 3 {
		t.Fatalf("repair after growing: stored %d shards, %v; want 3", n, err)
	}
	p, _ := placedOn(tc.nodes[leader], oldID)
	if p.Data != 2 || p.Parity != 1 || tc.checkShards(p) != 3 {
		t.Fatalf("after growing: %+v, want 2+1 on three nodes", p)
	}
	if got, err := c.Get(ctx, oldID); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("read re-encoded chunk: %d bytes, %v", len(got), err)
	}
	// A second pass has nothing to do.
	if n, err := tc.nodes[leader].Repair(ctx); err != nil || n != 0 {
		t.Fatalf("second repair: stored %d, %v; want 0", n, err)
	}
	// The single copy written first is a stray now: the sweep deletes it
	// and nothing else.
	if ok, _ := tc.nodes[0].Store().Has(ctx, oldID); !ok {
		t.Fatal("the old copy is gone before the sweep")
	}
	before, _ := tc.nodes[0].Store().Stat(ctx)
	if n, err := tc.nodes[0].Sweep(ctx, 0); err != nil || n != 1 {
		t.Fatalf("sweep: deleted %d, %v; want the one old copy", n, err)
	}
	if ok, _ := tc.nodes[0].Store().Has(ctx, oldID); ok {
		t.Fatal("the sweep kept the old copy")
	}
	if after, _ := tc.nodes[0].Store().Stat(ctx); after.Chunks != before.Chunks-1 {
		t.Fatalf("sweep: %d files left of %d, want one fewer", after.Chunks, before.Chunks)
	}
	tc.checkShards(p)
	if got, err := c.Get(ctx, oldID); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("read after the sweep: %d bytes, %v", len(got), err)
	}

	mk, err := c.Do(ctx, &MetaRequest{Op: wire.OpMkdir, Ino: RootIno, Name: "copies", Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	dir := mk.Attr.Ino
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpSetXattr, Ino: dir, Name: SchemeXattr, Value: []byte("1+2")}); err != nil {
		t.Fatalf("set %s: %v", SchemeXattr, err)
	}
	data := randomBytes(8, 1<<20)
	id := commit("three-copies", dir, data)
	if h := tc.nodes[leader].Health(); h == nil || h.Recoding != 1 || h.Protected != 2 {
		t.Fatalf("health before repair: %+v, want 2 protected, 1 of them awaiting re-encoding", h)
	}
	if n, err := tc.nodes[leader].Repair(ctx); err != nil || n != 3 {
		t.Fatalf("repair for the directory's scheme: stored %d, %v; want 3", n, err)
	}
	if h := tc.nodes[leader].Health(); h == nil || h.Recoding != 0 || h.Protected != 2 {
		t.Fatalf("health after repair: %+v, want 2 protected, none awaiting re-encoding", h)
	}
	p, _ = placedOn(tc.nodes[leader], id)
	if p.Data != 1 || p.Parity != 2 || tc.checkShards(p) != 3 {
		t.Fatalf("in a 1+2 directory: %+v, want three copies", p)
	}
	tc.wantCopyEverywhere(c, id, data)
}

// TestClusterEncodesForDirectoryAfterCommit: a chunk pushed for a file in
// a directory that asks for three copies (SchemeXattr) is stored with the
// cluster's 2+1 first (the push does not say which file it is for) and
// re-encoded by the leader right after the commit names it, long before
// the next repair pass (an hour away here). A file in the root, which
// asks for nothing, keeps 2+1.
func TestClusterEncodesForDirectoryAfterCommit(t *testing.T) {
	tc := &testCluster{t: t, repairEvery: time.Hour}
	for range 3 {
		tc.add()
	}
	leader := tc.waitLeader()
	ctx := context.Background()
	c, err := Dial(ctx, tc.nodes[leader].Addr(), ClientConfig{RetryFor: 10 * time.Second, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	mk, err := c.Do(ctx, &MetaRequest{Op: wire.OpMkdir, Ino: RootIno, Name: "copies", Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpSetXattr, Ino: mk.Attr.Ino, Name: SchemeXattr, Value: []byte("1+2")}); err != nil {
		t.Fatalf("set %s: %v", SchemeXattr, err)
	}
	commit := func(name string, dir uint64, data []byte) chunkstore.ID {
		t.Helper()
		id := putAndCommit(t, c, dir, name, data)
		if p, _ := placedOn(tc.nodes[leader], id); p.Data != 2 || p.Parity != 1 {
			// Pushed with the cluster's scheme, or already re-encoded.
			if !(dir != RootIno && p.Data == 1 && p.Parity == 2) {
				t.Fatalf("chunk of %s placed %d+%d, want 2+1 (or 1+2 once re-encoded)", name, p.Data, p.Parity)
			}
		}
		return id
	}
	// The leader re-encodes only with every member known to be up.
	waitUntil(t, "the leader's probes", func() bool {
		_, live, _ := tc.nodes[leader].liveMembers()
		return len(live) == 3
	})
	data := randomBytes(21, 1<<20)
	id := commit("three-copies", mk.Attr.Ino, data)
	plain := randomBytes(22, 1<<20)
	plainID := commit("plain", RootIno, plain)

	waitUntil(t, "three copies of the chunk", func() bool {
		p, _ := placedOn(tc.nodes[leader], id)
		return p.Data == 1 && p.Parity == 2 && holders(p.Nodes) == 3
	})
	p, _ := placedOn(tc.nodes[leader], id)
	if n := tc.checkShards(p); n != 3 {
		t.Fatalf("copies on disk: %d, want 3", n)
	}
	tc.wantCopyEverywhere(c, id, data)
	if p, _ := placedOn(tc.nodes[leader], plainID); p.Data != 2 || p.Parity != 1 {
		t.Errorf("chunk of a file in the root re-encoded to %d+%d, want 2+1 kept", p.Data, p.Parity)
	}
}

// TestFollowerReadDuringElectionIsRetried: a node asked for a chunk it
// knows nothing of says MISSING while the leader can tell it that no such
// chunk is placed, but while there is no leader to ask the answer is
// ErrNotLeader (EAGAIN on the wire, which clients retry): the chunk may
// have been placed by entries this node has not applied yet.
func TestFollowerReadDuringElectionIsRetried(t *testing.T) {
	tc := startCluster(t, 3)
	leader := tc.waitLeader()
	f := (leader + 1) % 3
	ctx := context.Background()
	unknown := chunkstore.Sum([]byte("never stored"))
	if _, err := tc.nodes[f].loadChunk(ctx, unknown); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("unknown chunk with a leader: got %v, want ErrNotFound", err)
	}
	tc.stop(leader)
	tc.stop(3 - leader - f)
	_, err := tc.nodes[f].loadChunk(ctx, unknown)
	if !errors.Is(err, ErrNotLeader) || errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("unknown chunk with no leader: got %v, want ErrNotLeader", err)
	}
	if errnoOf(err) != syscall.EAGAIN {
		t.Fatalf("errno sent for %v: %v, want EAGAIN", err, errnoOf(err))
	}
}

// TestStrangerCannotTouchShards: the shard service, and the placement ops,
// are for members only.
func TestStrangerCannotTouchShards(t *testing.T) {
	tc := startCluster(t, 1)
	ctx := context.Background()
	data := randomBytes(9, 1<<20)
	id := chunkstore.Sum(data)
	c := dialTestNode(t, tc.nodes[0])
	if err := c.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	p, _ := placedOn(tc.nodes[0], id)
	key := chunkstore.ShardKey(id, chunkstore.Scheme{Data: int(p.Data), Parity: int(p.Parity)}, 0)
	for _, secret := range [][]byte{[]byte("not the cluster secret at all"), nil} {
		s := newClient(tc.nodes[0].Addr(), ClientConfig{Secret: secret, Shards: true, Pin: true, RetryFor: time.Second})
		if _, err := s.Get(ctx, key); !errors.Is(err, ErrBadSecret) {
			t.Errorf("get a shard with secret %q: got %v, want ErrBadSecret", secret, err)
		}
		if err := s.Put(ctx, chunkstore.ShardKey(id, chunkstore.Scheme{Data: 2, Parity: 1}, 1), []byte("forged")); !errors.Is(err, ErrBadSecret) {
			t.Errorf("put a shard with secret %q: got %v, want ErrBadSecret", secret, err)
		}
		s.Close()
	}
	// On the meta service, the placement ops are refused.
	for _, req := range []*MetaRequest{
		{Op: wire.OpPlace, Places: []Placement{{ID: ChunkID(id), Size: 1, Data: 1, Nodes: []string{"x"}}}},
		{Op: wire.OpDisplace, Places: []Placement{p}},
		{Op: wire.OpLocate, Chunks: [][32]byte{id}},
		{Op: wire.OpDropShards, Chunks: [][32]byte{id}},
		{Op: wire.OpScrub},
		{Op: wire.OpRepair},
	} {
		if _, err := c.Do(ctx, req); !errors.Is(err, syscall.EPERM) {
			t.Errorf("op %d without the secret: got %v, want EPERM", req.Op, err)
		}
	}
	if got, err := c.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the chunk after the attempts: %d bytes, %v", len(got), err)
	}
}

// TestClusterDoesNotWaitForADownNode stops one node of three and times
// reads and writes through another: once a transfer to the stopped node
// has failed, chunks with a data shard on it are rebuilt from parity
// without asking it first, and new chunks are stored degraded on the two
// nodes up without trying it, rather than each read and write waiting out
// the shard client's retry budget (2 s) on it.
func TestClusterDoesNotWaitForADownNode(t *testing.T) {
	tc, leader := startShardingCluster(t)
	victim, through := (leader+1)%3, (leader+2)%3
	ctx := context.Background()
	c, err := Dial(ctx, tc.nodes[through].Addr(), ClientConfig{RetryFor: 10 * time.Second, Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	put := func(seed uint64) ([]byte, chunkstore.ID) {
		t.Helper()
		data := randomBytes(seed, 256<<10+int(seed))
		id := chunkstore.Sum(data)
		if err := c.Put(ctx, id, data); err != nil {
			t.Fatalf("put: %v", err)
		}
		return data, id
	}
	const n = 5
	// Chunks with a data shard on the node about to stop: one to find it
	// down, n to time.
	var stored [][]byte
	for seed := uint64(1); len(stored) < n+1; seed++ {
		if seed > 100 {
			t.Fatalf("only %d of 100 chunks have a data shard on node %s", len(stored), tc.cfgs[victim].ID)
		}
		data, id := put(seed)
		if p, _ := placedOn(tc.nodes[leader], id); slices.Contains(p.Nodes[:p.Data], tc.cfgs[victim].ID) {
			stored = append(stored, data)
		}
	}
	tc.stop(victim)
	read := func(data []byte) {
		t.Helper()
		got, err := c.Get(ctx, chunkstore.Sum(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read with a data shard's node down: got %d bytes, %v; want the %d bytes written", len(got), err, len(data))
		}
	}
	read(stored[0])
	start := time.Now()
	for _, data := range stored[1:] {
		read(data)
	}
	// Each read that asked the stopped node first took at least 2 s.
	took := time.Since(start)
	t.Logf("%d reads with a data shard's node down: %v", n, took)
	if took > n*time.Second {
		t.Errorf("%d reads with a data shard's node down took %v, want well under the %v that waiting 2 s on it for each takes", n, took, n*2*time.Second)
	}

	put(1000) // finds the node down, if the reads did not
	start = time.Now()
	for i := range n {
		_, id := put(uint64(1001 + i))
		p, ok := placedOn(tc.nodes[leader], id)
		if !ok || holders(p.Nodes) != 2 || slices.Contains(p.Nodes, tc.cfgs[victim].ID) {
			t.Fatalf("chunk written with a node down: placement %+v, %v; want two holders, not the stopped node", p, ok)
		}
	}
	took = time.Since(start)
	t.Logf("%d writes with a node down: %v", n, took)
	if took > n*time.Second {
		t.Errorf("%d chunk writes with a node down took %v, want well under the %v that waiting 2 s on it for each takes", n, took, n*2*time.Second)
	}
}

// TestClusterHealthUnknownUntilProbed stops the leader of three and asks
// the new leader for the chunk health as soon as it serves: until it has
// probed the members it must not count the chunks whose shards sit on the
// nodes it has not heard from yet as lost.
func TestClusterHealthUnknownUntilProbed(t *testing.T) {
	tc, leader := startShardingCluster(t)
	ctx := context.Background()
	c, err := Dial(ctx, tc.nodes[(leader+1)%3].Addr(), ClientConfig{RetryFor: 10 * time.Second, Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	data := randomBytes(1, 1<<20)
	if err := c.Put(ctx, chunkstore.Sum(data), data); err != nil {
		t.Fatal(err)
	}
	tc.stop(leader)
	next := tc.waitLeader()
	if h := tc.nodes[next].Health(); h != nil && (h.Lost != 0 || h.Protected+h.Degraded != 1) {
		t.Fatalf("health from a new leader before its first probe: %+v, want nil (unknown) or the chunk readable", h)
	}
	var h *wire.ChunkHealth
	waitUntil(t, "the new leader to count the chunks", func() bool { h = tc.nodes[next].Health(); return h != nil })
	if want := (wire.ChunkHealth{Degraded: 1}); *h != want {
		t.Errorf("health with the old leader down: got %+v, want %+v", *h, want)
	}
}
