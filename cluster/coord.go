package cluster

// This file holds the node's side of erasure coding (DESIGN.md, "Data
// path"): the node a client pushes a chunk to splits it into shards, stores
// each on the node rendezvous hashing names for it and records the
// placement through Raft before it acknowledges the push; the node a client
// asks for a chunk fetches its data shards (or enough shards to rebuild it)
// and joins them.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

// replicateBelow is the size under which a chunk is copied whole
// (Data 1) rather than split: its shards would be tiny.
const replicateBelow = 64 << 10

// DefaultScheme returns the erasure scheme for a cluster of n members: no
// redundancy for one node, two copies for two, 2+1 for three to five and
// 4+2 from six on.
func DefaultScheme(n int) chunkstore.Scheme {
	switch {
	case n <= 1:
		return chunkstore.Scheme{Data: 1}
	case n == 2:
		return chunkstore.Scheme{Data: 1, Parity: 1}
	case n < 6:
		return chunkstore.Scheme{Data: 2, Parity: 1}
	}
	return chunkstore.Scheme{Data: 4, Parity: 2}
}

// clusterScheme returns the scheme of new chunks in a cluster of members
// nodes: the root directory's SchemeXattr, else NodeConfig.Scheme, else
// DefaultScheme.
func (n *Node) clusterScheme(members int) chunkstore.Scheme {
	var s chunkstore.Scheme
	var ok bool
	n.fsm.read(func(st *State) { s, ok = st.SchemeOf(wire.RootIno) })
	switch {
	case ok:
		return s
	case n.cfg.Scheme.Data != 0:
		return n.cfg.Scheme
	}
	return DefaultScheme(members)
}

// fitScheme adapts scheme s to a chunk of size bytes: a small chunk is
// copied (one data shard) as many times as s has shards of parity, plus
// one.
func fitScheme(s chunkstore.Scheme, size int) chunkstore.Scheme {
	if size < replicateBelow {
		return chunkstore.Scheme{Data: 1, Parity: s.Parity}
	}
	return s
}

// desiredScheme returns the scheme chunk p should have: the one its
// directory asks for, else base (the cluster's), fitted to its size.
func desiredScheme(p *Placement, base chunkstore.Scheme) chunkstore.Scheme {
	if p.WantData != 0 {
		base = chunkstore.Scheme{Data: int(p.WantData), Parity: int(p.WantParity)}
	}
	return fitScheme(base, int(p.Size))
}

// placedScheme returns the scheme chunk p is stored with.
func placedScheme(p *Placement) chunkstore.Scheme {
	return chunkstore.Scheme{Data: int(p.Data), Parity: int(p.Parity)}
}

// misencoded returns the scheme chunk p should have (desiredScheme) and
// whether it is stored with another one, so that repair re-encodes it
// once enough members are up to hold all the new shards.
func misencoded(p *Placement, base chunkstore.Scheme) (chunkstore.Scheme, bool) {
	d := desiredScheme(p, base)
	return d, d != placedScheme(p)
}

// rendezvous orders nodes by their highest-random-weight score for chunk
// id: shard i of the chunk belongs on the i-th. Every node computes the
// same order from the same members.
func rendezvous(id chunkstore.ID, nodes []string) []string {
	type scored struct {
		node  string
		score uint64
	}
	s := make([]scored, len(nodes))
	for i, node := range nodes {
		h := sha256.New()
		h.Write(id[:])
		h.Write([]byte(node))
		s[i] = scored{node, binary.BigEndian.Uint64(h.Sum(nil))}
	}
	slices.SortFunc(s, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return bytes.Compare([]byte(a.node), []byte(b.node))
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].node
	}
	return out
}

// shardNodes returns the ids of the members that can hold shards: every
// member with a recorded wire address, this node always.
func (n *Node) shardNodes() []string {
	ids := []string{n.cfg.ID}
	for _, m := range n.fsm.nodes() {
		if m.Addr != "" && m.ID != n.cfg.ID {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// downFor is how long a node that failed a shard transfer is tried only
// after the others.
const downFor = 10 * time.Second

func (n *Node) markDown(id string) { n.down.Store(id, time.Now().Add(downFor)) }
func (n *Node) markUp(id string)   { n.down.Delete(id) }

// isDown reports whether node id failed a shard transfer lately.
func (n *Node) isDown(id string) bool {
	v, ok := n.down.Load(id)
	return ok && time.Now().Before(v.(time.Time))
}

// shardClient returns the (lazily dialling) shard client for node id, or
// an error if the node has no recorded address or this node no secret.
func (n *Node) shardClient(id string) (*Client, error) {
	addr := n.nodeAddr(id)
	if addr == "" {
		return nil, fmt.Errorf("node %s has no recorded address: %w", id, ErrUnavailable)
	}
	if len(n.cfg.Secret) == 0 {
		return nil, fmt.Errorf("node %s: no cluster secret to move shards with: %w", id, ErrUnavailable)
	}
	n.peerMu.Lock()
	defer n.peerMu.Unlock()
	if c := n.shardPeers[addr]; c != nil {
		return c, nil
	}
	c := newClient(addr, ClientConfig{Secret: n.cfg.Secret, Logger: n.log, Shards: true, Pin: true, RetryFor: 500 * time.Millisecond, OpTimeout: shardTimeout, Buffers: n.bufs})
	if n.shardPeers == nil { // closed
		c.Close()
		return c, nil
	}
	n.shardPeers[addr] = c
	return c, nil
}

// shardTimeout bounds one shard transfer between nodes.
const shardTimeout = 15 * time.Second

// putShard stores shard data under key on node id, durably.
func (n *Node) putShard(ctx context.Context, id string, key chunkstore.ID, data []byte) error {
	if id == n.cfg.ID {
		return n.store.Put(ctx, key, data)
	}
	c, err := n.shardClient(id)
	if err != nil {
		return err
	}
	if err := c.Put(ctx, key, data); err != nil {
		return fmt.Errorf("put shard %s on node %s: %w", key, id, err)
	}
	return nil
}

// getShard reads the shard stored under key on node id. A node that
// answers that it lacks the shard (or found it corrupt) gives an error
// wrapping chunkstore.ErrNotFound.
func (n *Node) getShard(ctx context.Context, id string, key chunkstore.ID) ([]byte, error) {
	if id == n.cfg.ID {
		data, err := n.store.Get(ctx, key)
		if errors.Is(err, chunkstore.ErrCorrupt) {
			n.log.Error("corrupt shard on disk", "shard", key.String(), "err", err)
			return nil, fmt.Errorf("get shard %s: %w: %w", key, err, chunkstore.ErrNotFound)
		}
		return data, err
	}
	c, err := n.shardClient(id)
	if err != nil {
		return nil, err
	}
	data, err := c.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get shard %s from node %s: %w", key, id, err)
	}
	return data, nil
}

// chunkPlaced reports whether chunk id is placed and not doomed in this
// node's state: a push need not send it again.
func (n *Node) chunkPlaced(ctx context.Context, id chunkstore.ID) (bool, error) {
	var ok bool
	n.fsm.read(func(s *State) { _, ok = s.Placed(id) })
	return ok, nil
}

// storeChunk erasure-codes chunk id (already checked against its id),
// stores its shards on the nodes rendezvous hashing names, moving a shard
// that a node fails to take to the next node in that order, and records
// the placement. It fails unless at least Data shards are stored on
// distinct nodes; fewer than all makes a degraded chunk, which repair
// completes once nodes are back.
func (n *Node) storeChunk(ctx context.Context, id chunkstore.ID, data []byte) error {
	nodes := n.shardNodes()
	scheme := fitScheme(n.clusterScheme(len(nodes)), len(data))
	if scheme.Data > len(nodes) {
		// Too few nodes to read it back: write what this cluster can
		// hold now; repair re-encodes it once there are enough.
		scheme = fitScheme(DefaultScheme(len(nodes)), len(data))
	}
	var shards [][]byte
	if scheme.Data == 1 {
		shards = make([][]byte, scheme.Shards())
		for i := range shards {
			shards[i] = data
		}
	} else {
		var owned [][]byte
		var err error
		if shards, owned, err = scheme.SplitInto(data, n.bufs.Get); err != nil {
			return fmt.Errorf("store chunk %s: %w", id, err)
		}
		defer func() {
			// The pushes are over: nothing refers to the shards any more.
			for _, sh := range owned {
				n.bufs.Put(sh)
			}
		}()
	}
	p := Placement{ID: wire.ChunkID(id), Size: uint32(len(data)), Data: uint8(scheme.Data), Parity: uint8(scheme.Parity), Nodes: make([]string, scheme.Shards())}
	failed, err := n.pushShards(ctx, &p, shards, rendezvous(id, nodes), nil)
	if err != nil {
		return err
	}
	if got := holders(p.Nodes); got < scheme.Data {
		// A full disk anywhere makes it ENOSPC: what the writer must hear.
		cause := error(syscall.EIO)
		if errors.Is(failed, chunkstore.ErrNoSpace) {
			cause = chunkstore.ErrNoSpace
		}
		return fmt.Errorf("store chunk %s: only %d of %d shards stored (%s needs %d nodes): %w (%v)", id, got, scheme.Shards(), scheme, scheme.Data, cause, failed)
	}
	return n.recordPlacement(ctx, p)
}

// pushShards stores shards[i] for each slot i of p that is empty and
// listed in slots (all empty slots if slots is nil), each on the next
// node of order that holds nothing of the chunk yet. It fills in p.Nodes
// for the shards stored; a shard no node took leaves its slot empty. It
// returns the failures met on the way (nil if there were none), and an
// error only if ctx ended.
//
// Nodes that failed a transfer lately (isDown) are tried only if the
// others leave fewer than p.Data shards stored: a chunk on p.Data nodes
// is readable (degraded, and repair completes it once the node is back),
// whereas trying a node that is down costs every chunk the shard client's
// retry budget on it.
func (n *Node) pushShards(ctx context.Context, p *Placement, shards [][]byte, order []string, slots []int) (failed, err error) {
	var up, down []string
	for _, id := range order {
		switch {
		case slices.Contains(p.Nodes, id):
		case n.isDown(id):
			down = append(down, id)
		default:
			up = append(up, id)
		}
	}
	if slots == nil {
		for i, h := range p.Nodes {
			if h == "" {
				slots = append(slots, i)
			}
		}
	}
	errs := n.pushTo(ctx, p, shards, up, slots)
	if holders(p.Nodes) < int(p.Data) {
		var rest []int
		for _, i := range slots {
			if p.Nodes[i] == "" {
				rest = append(rest, i)
			}
		}
		errs = append(errs, n.pushTo(ctx, p, shards, down, rest)...)
	}
	return errors.Join(errs...), ctx.Err()
}

// pushTo stores shards[i] for each slot i in slots, concurrently, and
// records the holders in p.Nodes: the k-th slot goes to cands[k] (the
// rendezvous order), and a shard whose node fails moves on to the next
// candidate no slot has taken yet. A node that fails a push is marked down
// (unless it is only full). It returns the failures.
func (n *Node) pushTo(ctx context.Context, p *Placement, shards [][]byte, cands []string, slots []int) []error {
	scheme := placedScheme(p)
	var mu sync.Mutex
	var errs []error
	next := min(len(slots), len(cands)) // cands from next on are spares
	take := func() string {
		mu.Lock()
		defer mu.Unlock()
		if next >= len(cands) {
			return ""
		}
		next++
		return cands[next-1]
	}
	var wg sync.WaitGroup
	for k, i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := chunkstore.ShardKey(chunkstore.ID(p.ID), scheme, i)
			first := ""
			if k < len(cands) {
				first = cands[k]
			} else {
				first = take()
			}
			for node := first; node != "" && ctx.Err() == nil; node = take() {
				if err := n.putShard(ctx, node, key, shards[i]); err != nil {
					n.log.Warn("shard not stored, trying the next node", "chunk", chunkstore.ID(p.ID).String(), "shard", i, "node", node, "err", err)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					if !errors.Is(err, chunkstore.ErrNoSpace) {
						n.markDown(node)
					}
					continue
				}
				n.markUp(node)
				mu.Lock()
				p.Nodes[i] = node
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	return errs
}

// recordPlacement records p through Raft (forwarded to the leader if need
// be). While the chunk is being collected (EAGAIN) it waits and tries again
// for a few seconds.
func (n *Node) recordPlacement(ctx context.Context, p Placement) error {
	req := &MetaRequest{Op: wire.OpPlace, Places: []Placement{p}}
	for attempt := 0; ; attempt++ {
		r := *req
		_, err := n.do(ctx, &r, true)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EAGAIN) || attempt >= 50 {
			return fmt.Errorf("record placement of chunk %s: %w", chunkstore.ID(p.ID), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// placement returns the placement of chunk id in this node's state, or, if
// this node does not know it (it may lag behind the leader), the leader's.
// It fails, with an error wrapping ErrNotLeader, only if the leader had to
// be asked and could not be (an election): the chunk may well be placed.
func (n *Node) placement(ctx context.Context, id chunkstore.ID) (Placement, bool, error) {
	var p Placement
	var ok bool
	n.fsm.read(func(s *State) { p, ok = s.Placed(id) })
	if ok || len(n.shardNodes()) < 2 {
		return p, ok, nil
	}
	resp, err := n.do(ctx, &MetaRequest{Op: wire.OpLocate, Chunks: [][32]byte{id}}, true)
	switch {
	case err != nil && IsTransient(err):
		return Placement{}, false, fmt.Errorf("locate chunk %s: %w", id, err)
	case err != nil || len(resp.Places) != 1 || resp.Places[0].ID != wire.ChunkID(id):
		return Placement{}, false, nil
	}
	return resp.Places[0], true, nil
}

// loadChunk reads chunk id for a client: from its shards if it is placed,
// else from this node's store (inline chunks, and chunks stored before
// placements existed), else from a copy on another member. If none has it
// and the leader could not be asked for its placement, the error wraps
// ErrNotLeader.
func (n *Node) loadChunk(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	p, ok, lerr := n.placement(ctx, id)
	if ok {
		return n.readPlaced(ctx, p)
	}
	data, err := n.store.Get(ctx, id)
	if err == nil || (!errors.Is(err, chunkstore.ErrNotFound) && !errors.Is(err, chunkstore.ErrCorrupt)) {
		return data, err
	}
	if data, ok := n.fetchCopy(ctx, id); ok {
		return data, nil
	}
	if lerr != nil {
		// No copy here, and the leader, which may know where the shards
		// are, could not be asked: the client retries rather than hear
		// that the chunk does not exist.
		return nil, lerr
	}
	return nil, err
}

// fetchCopy reads a whole copy of chunk id from another member (an inline
// chunk, or a copy kept under the chunk's own id), verified against id.
func (n *Node) fetchCopy(ctx context.Context, id chunkstore.ID) ([]byte, bool) {
	for _, node := range n.shardNodes()[1:] {
		data, err := n.getShard(ctx, node, id)
		if err == nil && chunkstore.Sum(data) == id {
			return data, true
		}
	}
	return nil, false
}

// readPlaced reads the chunk p places: a copy from the first holder that
// has one (this node first), or the data shards, with parity shards
// standing in for the missing ones. Holders that answer that they lack
// their shard are reported lost (OpDisplace), so repair rebuilds it;
// holders that cannot be reached are marked down, so that the next reads
// go to the others first rather than wait for them again.
func (n *Node) readPlaced(ctx context.Context, p Placement) ([]byte, error) {
	id := chunkstore.ID(p.ID)
	scheme := placedScheme(&p)
	lost := Placement{ID: p.ID, Size: p.Size, Data: p.Data, Parity: p.Parity, Nodes: make([]string, len(p.Nodes))}
	defer func() {
		if holders(lost.Nodes) > 0 {
			go n.reportLost(lost)
		}
	}()
	if scheme.Data == 1 {
		// This node's copy first, copies on nodes that failed lately last.
		order := slices.Clone(p.Nodes)
		rank := func(node string) int {
			switch {
			case node == n.cfg.ID:
				return 0
			case n.isDown(node):
				return 2
			}
			return 1
		}
		slices.SortStableFunc(order, func(a, b string) int { return rank(a) - rank(b) })
		var errs []error
		for _, node := range order {
			if node == "" {
				continue
			}
			data, err := n.getShard(ctx, node, id)
			if err == nil && len(data) == int(p.Size) {
				return data, nil
			}
			switch {
			case err == nil || errors.Is(err, chunkstore.ErrNotFound):
				lost.Nodes[slices.Index(p.Nodes, node)] = node
			case node != n.cfg.ID && ctx.Err() == nil:
				n.markDown(node)
			}
			errs = append(errs, err)
		}
		return nil, fmt.Errorf("read chunk %s: no copy could be read: %w: %w", id, errors.Join(errs...), chunkstore.ErrNotFound)
	}
	shards := make([][]byte, scheme.Shards())
	want := scheme.ShardSize(int(p.Size))
	fetch := func(idx []int) {
		var wg sync.WaitGroup
		for _, i := range idx {
			node := p.Nodes[i]
			if node == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				data, err := n.getShard(ctx, node, chunkstore.ShardKey(id, scheme, i))
				switch {
				case err == nil && len(data) == want:
					shards[i] = data
				case err == nil || errors.Is(err, chunkstore.ErrNotFound):
					lost.Nodes[i] = node
				case node != n.cfg.ID && ctx.Err() == nil:
					n.markDown(node) // read the others' shards first for a while
				}
			}()
		}
		wg.Wait()
	}
	// The data shards first; parity shards only for missing data shards;
	// shards on nodes that failed lately only if that is not enough.
	var first, parity, down []int
	for i := range shards {
		switch {
		case n.isDown(p.Nodes[i]):
			down = append(down, i)
		case i < scheme.Data:
			first = append(first, i)
		default:
			parity = append(parity, i)
		}
	}
	count := func(shards [][]byte) int {
		got := 0
		for _, sh := range shards {
			if sh != nil {
				got++
			}
		}
		return got
	}
	fetch(first)
	for _, more := range [][]int{parity, down} {
		if count(shards) < scheme.Data {
			fetch(more)
		}
	}
	rebuilt := count(shards[:scheme.Data]) < scheme.Data
	data, err := scheme.JoinInto(n.bufs.Get(want*scheme.Data), shards, int(p.Size))
	for _, sh := range shards {
		// Copied into data: the shards, read or rebuilt for this call
		// alone, are free.
		n.bufs.Put(sh)
	}
	if err != nil {
		return nil, fmt.Errorf("read chunk %s: %w: %w", id, err, chunkstore.ErrNotFound)
	}
	if rebuilt && chunkstore.Sum(data) != id {
		n.log.Error("chunk rebuilt from parity does not match its id", "chunk", id.String())
		return nil, fmt.Errorf("read chunk %s: rebuilt from parity: %w", id, chunkstore.ErrCorrupt)
	}
	return data, nil
}

// reportLost tells the metadata that the holders lost names no longer hold
// their shards, so that repair rebuilds them.
func (n *Node) reportLost(lost Placement) {
	ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
	defer cancel()
	n.log.Warn("shards lost, reporting them for repair", "chunk", chunkstore.ID(lost.ID).String(), "holders", lost.Nodes)
	if _, err := n.do(ctx, &MetaRequest{Op: wire.OpDisplace, Places: []Placement{lost}}, true); err != nil {
		n.log.Warn("report lost shards", "chunk", chunkstore.ID(lost.ID).String(), "err", err)
	}
}

// dropShards performs OpDropShards on this node: it deletes its copies and
// shards of the chunks named that were not written since req.Now.
func (n *Node) dropShards(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	before := time.Unix(0, req.Now)
	keys := slices.Clone(req.Chunks)
	for _, p := range req.Places {
		scheme := placedScheme(&p)
		keys = append(keys, p.ID)
		for i := range scheme.Shards() {
			keys = append(keys, chunkstore.ShardKey(chunkstore.ID(p.ID), scheme, i))
		}
	}
	slices.SortFunc(keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	keys = slices.Compact(keys)
	deleted := 0
	for _, k := range keys {
		ok, err := n.store.Delete(ctx, chunkstore.ID(k), before)
		if err != nil {
			return &MetaResponse{Deleted: deleted}, fmt.Errorf("drop shard %s: %w", chunkstore.ID(k), err)
		}
		if ok {
			deleted++
			gcDeleted.Inc()
		}
	}
	return &MetaResponse{Deleted: deleted}, nil
}
