package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"shoal/chunkstore"
	"shoal/wire"
)

// directCount returns how many chunks clients read from the shard holders
// (result "direct") or through their node after a holder failed
// ("fallback"), as the metric counts them.
func directCount(result string) float64 {
	var m dto.Metric
	directReads.WithLabelValues(result).Write(&m)
	return m.GetCounter().GetValue()
}

// TestClientReadsShardsFromHolders reads erasure-coded chunks with
// DirectReads through one node of three: their data shards come from the
// holders, the bytes are those written, a small (copied) chunk comes whole
// from the node; with a data shard's holder stopped the read still
// returns the right bytes, through the node, which rebuilds from parity.
func TestClientReadsShardsFromHolders(t *testing.T) {
	tc, leader := startShardingCluster(t)
	through := (leader + 1) % 3
	ctx := context.Background()
	w := dialTestNode(t, tc.nodes[leader])
	r, err := Dial(ctx, tc.nodes[through].Addr(), ClientConfig{RetryFor: 10 * time.Second, Pin: true, DirectReads: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	// Chunks until one has a data shard on a node other than the one the
	// reader talks to and the leader: that node is stopped later.
	victim := 3 - leader - through
	var chunks [][]byte
	onVictim := -1
	for seed := uint64(1); onVictim < 0; seed++ {
		if seed > 50 {
			t.Fatalf("no chunk of 50 has a data shard on node %s", tc.cfgs[victim].ID)
		}
		data := randomBytes(seed, 1<<20+int(seed))
		id := chunkstore.Sum(data)
		if err := w.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the reader's node to know the placement", func() bool { _, ok := placedOn(tc.nodes[through], id); return ok })
		if p, _ := placedOn(tc.nodes[through], id); slices.Contains(p.Nodes[:p.Data], tc.cfgs[victim].ID) {
			onVictim = len(chunks)
		}
		chunks = append(chunks, data)
	}
	small := randomBytes(100, 10<<10)
	if err := w.Put(ctx, chunkstore.Sum(small), small); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reader's node to know the small chunk", func() bool { _, ok := placedOn(tc.nodes[through], chunkstore.Sum(small)); return ok })

	read := func(data []byte, what string) {
		t.Helper()
		got, err := r.Get(ctx, chunkstore.Sum(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: got %d bytes, %v; want the %d bytes written", what, len(got), err, len(data))
		}
	}
	direct, fallback := directCount("direct"), directCount("fallback")
	for _, data := range chunks {
		read(data, "erasure-coded chunk")
	}
	if got := directCount("direct") - direct; got != float64(len(chunks)) {
		t.Errorf("%v of %d erasure-coded chunks read from their holders, want all", got, len(chunks))
	}
	read(small, "copied chunk")
	if got := directCount("direct") - direct; got != float64(len(chunks)) {
		t.Errorf("the copied chunk counted as read from holders")
	}

	tc.stop(victim)
	read(chunks[onVictim], "chunk with a data shard's holder stopped")
	if got := directCount("fallback") - fallback; got != 1 {
		t.Errorf("%v reads fell back to the node, want 1", got)
	}
	// The holder counts as down for a while: the next read of such a
	// chunk goes through the node at once.
	read(chunks[onVictim], "the same chunk again")
	if got := directCount("fallback") - fallback; got != 1 {
		t.Errorf("%v reads fell back to the node after the holder failed once, want 1", got)
	}
}

// TestShardRequestNeedsGrant asks a holder for a shard with grants that
// are forged, expired, bent to another scheme, or sent where only members
// talk: each is refused with its errno, and the stream then closed. A
// valid grant reads the shard; asking a node that lacks it answers
// MISSING.
func TestShardRequestNeedsGrant(t *testing.T) {
	tc, leader := startShardingCluster(t)
	ctx := context.Background()
	w := dialTestNode(t, tc.nodes[leader])
	data := randomBytes(7, 1<<20)
	id := chunkstore.Sum(data)
	if err := w.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	p, ok := placedOn(tc.nodes[leader], id)
	if !ok || p.Data != 2 {
		t.Fatalf("placement %+v, %v; want 2+1", p, ok)
	}
	holder := tc.nodes[tc.nodeByID(p.Nodes[0])]
	notHolder := tc.nodes[tc.nodeByID(p.Nodes[2])] // holds parity, not shard 0
	good := func(expires int64) *wire.ShardRequest {
		return &wire.ShardRequest{Flags: wire.CasyncRequestChecksum, Expires: expires, Chunk: id, Data: 2, Parity: 1,
			Grant: [32]byte(tc.nodes[leader].grantMAC(id, 2, 1, expires))}
	}
	later := time.Now().Add(time.Minute).UnixNano()
	shardLen := chunkstore.Scheme{Data: 2, Parity: 1}.ShardSize(len(data))
	readShard := func(nd *Node, cfg ClientConfig, req *wire.ShardRequest) ([]byte, error) {
		c := newClient(nd.Addr(), cfg)
		defer c.Close()
		into := make([]byte, shardLen)
		return into, c.readShard(ctx, req, into)
	}
	mount := ClientConfig{Pin: true, RetryFor: time.Second}

	got, err := readShard(holder, mount, good(later))
	if err != nil || !bytes.Equal(got, data[:shardLen]) {
		t.Fatalf("shard 0 with a good grant: %v; bytes match: %v", err, bytes.Equal(got, data[:shardLen]))
	}
	if _, err := readShard(notHolder, mount, good(later)); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("shard 0 from a node that lacks it: got %v, want ErrNotFound", err)
	}

	forged := good(later)
	forged.Grant[0] ^= 1
	bent := good(later)
	bent.Data, bent.Parity = 1, 0 // shard 0 of 1+0 is the whole chunk under its own id
	stretched := good(later)
	stretched.Expires += int64(time.Hour)
	for _, tt := range []struct {
		name string
		cfg  ClientConfig
		req  *wire.ShardRequest
		want error
	}{
		{"forged grant", mount, forged, syscall.EPERM},
		{"grant bent to another scheme", mount, bent, syscall.EPERM},
		{"grant stretched", mount, stretched, syscall.EPERM},
		{"expired grant", mount, good(time.Now().Add(-time.Second).UnixNano()), syscall.EACCES},
		{"on the shard service", ClientConfig{Pin: true, RetryFor: time.Second, Shards: true, Secret: tc.cfgs[leader].Secret}, good(later), syscall.EPROTO},
	} {
		if _, err := readShard(holder, tt.cfg, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

// proxy forwards connections on a new loopback port to addr, as a port
// published for a container does, and returns the new port's address.
func proxy(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				continue
			}
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return ln.Addr().String()
}

// TestClientReadsShardsAtGivenAddresses gives a DirectReads client only
// other addresses for the nodes than those they advertise (as a mount on
// the host of a compose cluster has): it learns which node answers at
// each, and reads shards there.
func TestClientReadsShardsAtGivenAddresses(t *testing.T) {
	tc, leader := startShardingCluster(t)
	ctx := context.Background()
	var given []string
	published := map[string]string{}
	for _, nd := range tc.nodes {
		p := proxy(t, nd.Addr())
		given = append(given, p)
		published[nd.Addr()] = p
	}
	r, err := Dial(ctx, strings.Join(given, ","), ClientConfig{RetryFor: 10 * time.Second, DirectReads: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	r.mu.Lock()
	via := maps.Clone(r.via)
	r.mu.Unlock()
	if !maps.Equal(via, published) {
		t.Fatalf("addresses learned for the members: %v, want %v", via, published)
	}

	data := randomBytes(11, 2<<20)
	id := chunkstore.Sum(data)
	if err := dialTestNode(t, tc.nodes[leader]).Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	for _, nd := range tc.nodes {
		waitUntil(t, "every node to know the placement", func() bool { _, ok := placedOn(nd, id); return ok })
	}
	direct := directCount("direct")
	if got, err := r.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: got %d bytes, %v; want the %d bytes written", len(got), err, len(data))
	}
	if directCount("direct") != direct+1 {
		t.Errorf("the chunk was not read from its holders")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for addr, h := range r.holders {
		if h.node() != published[addr] {
			t.Errorf("holder %s read at %s, want %s", addr, h.node(), published[addr])
		}
	}
}
