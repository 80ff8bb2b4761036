package cluster

// This file holds what keeps the shards of the cluster complete: the
// leader's probes of the members and its repair passes, which rebuild the
// shards of degraded chunks onto nodes that are up; each node's scrub,
// which reads back every shard it should hold and reports those it lost;
// and each node's sweep, which deletes shards no placement names any more.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

// liveness is the leader's view of which members are up, from its probes.
type liveness struct {
	mu        sync.Mutex
	up        map[string]bool      // node id → answered the last probe
	downSince map[string]time.Time // node id → first failed probe in a row
}

// probeTimeout bounds one probe of one member.
const probeTimeout = 2 * time.Second

// probe asks every member for its status and records who answered.
func (n *Node) probe(ctx context.Context) {
	ids := n.shardNodes()
	up := make(map[string]bool, len(ids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		if id == n.cfg.ID {
			up[id] = true
			continue
		}
		addr := n.nodeAddr(id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			_, err := n.peerClient(addr).doOnce(pctx, &MetaRequest{Op: wire.OpNodeStatus})
			mu.Lock()
			up[id] = err == nil
			mu.Unlock()
		}()
	}
	wg.Wait()
	l := &n.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.downSince == nil {
		l.downSince = map[string]time.Time{}
	}
	now := time.Now()
	for id, ok := range up {
		if ok {
			delete(l.downSince, id)
			n.markUp(id)
			continue
		}
		n.markDown(id)
		if _, was := l.downSince[id]; !was {
			l.downSince[id] = now
		}
	}
	for id := range l.downSince {
		if _, member := up[id]; !member {
			delete(l.downSince, id)
		}
	}
	l.up = up
}

// upNodes returns the members the last probe found up, and those that
// have been down for longer than RepairDelay (their shards are moved).
func (n *Node) upNodes() (up map[string]bool, gone map[string]bool) {
	l := &n.live
	l.mu.Lock()
	defer l.mu.Unlock()
	up, gone = map[string]bool{n.cfg.ID: true}, map[string]bool{}
	for id, ok := range l.up {
		up[id] = up[id] || ok
	}
	for id, t := range l.downSince {
		if time.Since(t) > n.cfg.RepairDelay {
			gone[id] = true
		}
	}
	return up, gone
}

// forget drops what the probes found, when a node loses leadership: its
// next probe (every node probes every 2 s) starts afresh, so that health
// is never computed from results older than that.
func (l *liveness) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.up, l.downSince = nil, nil
}

// probed reports whether a probe has completed since leadership was last
// lost (or the node started).
func (l *liveness) probed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up != nil
}

// Health counts the placed chunks by how many of their shards sit on
// members the last probe found up, and those awaiting re-encoding to the
// scheme they should have. Only a leader that has probed the members
// since it became leader knows; it returns nil before.
func (n *Node) Health() *wire.ChunkHealth {
	if !n.ready.Load() || !n.live.probed() {
		return nil
	}
	up, _ := n.upNodes()
	base := n.clusterScheme(len(n.shardNodes()))
	h := &wire.ChunkHealth{}
	n.fsm.read(func(s *State) {
		s.EachPlaced(func(p Placement, doomed bool) bool {
			if doomed {
				return true
			}
			if _, wrong := misencoded(&p, base); wrong {
				h.Recoding++
			}
			live := 0
			for _, node := range p.Nodes {
				if node != "" && up[node] {
					live++
				}
			}
			switch {
			case live == len(p.Nodes):
				h.Protected++
			case live >= int(p.Data):
				h.Degraded++
			default:
				h.Lost++
			}
			return true
		})
	})
	return h
}

// repairLoop probes the members (every node does, so that it sends shards
// to members that are up first) and, on the leader, runs a repair pass
// every RepairInterval.
func (n *Node) repairLoop() {
	defer n.wg.Done()
	probe := time.NewTicker(probeTimeout)
	defer probe.Stop()
	last := time.Now()
	for {
		select {
		case <-n.stop:
			return
		case <-probe.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-n.stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		n.probe(ctx)
		if n.ready.Load() && n.cfg.RepairInterval > 0 && time.Since(last) >= n.cfg.RepairInterval {
			last = time.Now()
			if _, err := n.Repair(ctx); err != nil {
				n.log.Warn("repair", "err", err)
			}
		}
		cancel()
	}
}

// maxRepairPass bounds the chunks one repair pass rebuilds.
const maxRepairPass = 4096

// Repair runs one repair pass on the leader (elsewhere it does nothing):
// for each chunk with a shard that no member holds, or that a member down
// for longer than RepairDelay (or no longer a member) holds, it reads the
// chunk, rebuilds the shard and stores it on the next member in rendezvous
// order that holds nothing of the chunk, then records the new holder. A
// chunk whose scheme is not the one it should have (its directory's
// SchemeXattr, else the cluster's, which grows with the cluster) is
// re-encoded, if enough members are up to hold every new shard. It
// returns how many shards it stored.
func (n *Node) Repair(ctx context.Context) (int, error) {
	if !n.ready.Load() {
		return 0, nil
	}
	n.repairMu.Lock()
	defer n.repairMu.Unlock()
	ctx = chunkstore.Background(ctx) // its reads queue behind users' reads
	n.probe(ctx)
	members, live, gone := n.liveMembers()
	base := n.clusterScheme(len(members))
	var todo, recode []Placement
	n.fsm.read(func(s *State) {
		s.EachPlaced(func(p Placement, doomed bool) bool {
			if doomed {
				return true
			}
			if d, wrong := misencoded(&p, base); wrong && d.Shards() <= len(live) {
				p.Nodes = slices.Clone(p.Nodes)
				recode = append(recode, p)
				return len(todo)+len(recode) < maxRepairPass
			}
			for _, h := range p.Nodes {
				if h == "" || gone[h] || !slices.Contains(members, h) {
					p.Nodes = slices.Clone(p.Nodes)
					todo = append(todo, p)
					break
				}
			}
			return len(todo)+len(recode) < maxRepairPass
		})
	})
	repaired := 0
	var errs []error
	for _, p := range todo {
		if ctx.Err() != nil {
			break
		}
		c, err := n.repairChunk(ctx, p, live, gone, members)
		repaired += c
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range recode {
		if ctx.Err() != nil {
			break
		}
		c, err := n.recodeChunk(ctx, p, desiredScheme(&p, base), live)
		repaired += c
		if err != nil {
			errs = append(errs, err)
		}
	}
	if repaired > 0 || len(errs) > 0 {
		n.log.Info("repair pass", "chunks", len(todo), "recoded", len(recode), "shards_stored", repaired, "failed", len(errs))
	}
	shardsRepaired.Add(float64(repaired))
	return repaired, errors.Join(errs...)
}

// liveMembers returns the members, those of them up by the last probes
// (this node always), and those down for longer than RepairDelay.
func (n *Node) liveMembers() (members, live []string, gone map[string]bool) {
	up, gone := n.upNodes()
	members = n.shardNodes()
	for _, id := range members {
		if up[id] {
			live = append(live, id)
		}
	}
	return members, live, gone
}

// recodeBatchWait is how long the leader gathers more chunks to re-encode
// for their directory's scheme after a commit names the first ones.
const recodeBatchWait = 200 * time.Millisecond

// queueRecode hands chunks that a commit named to recodeLoop, on the
// leader, without blocking; if the queue is full, the next repair pass
// re-encodes them instead.
func (n *Node) queueRecode(ids [][32]byte) {
	if !n.ready.Load() {
		return
	}
	select {
	case n.recodeQ <- ids:
	default:
	}
}

// recodeLoop re-encodes, on the leader, the chunks that commits name in a
// directory whose SchemeXattr asks for another scheme than the one they
// were stored with. The node that takes a push does not know which file
// the chunk is for, so it stores it with the cluster's scheme; this brings
// it to its directory's right after the commit rather than at the next
// repair pass.
func (n *Node) recodeLoop() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(chunkstore.Background(context.Background()))
	defer cancel()
	go func() { // a pass under way stops with the node
		select {
		case <-n.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	for {
		var ids [][32]byte
		select {
		case <-n.stop:
			return
		case ids = <-n.recodeQ:
		}
		gather := time.After(recodeBatchWait)
	more:
		for {
			select {
			case <-n.stop:
				return
			case next := <-n.recodeQ:
				ids = append(ids, next...)
			case <-gather:
				break more
			}
		}
		if n.ready.Load() {
			n.recodeChunks(ctx, ids)
		}
	}
}

// recodeChunks re-encodes each of ids (once) that is misencoded, if the
// members up are enough to hold all its new shards.
func (n *Node) recodeChunks(ctx context.Context, ids [][32]byte) {
	n.repairMu.Lock()
	defer n.repairMu.Unlock()
	members, live, _ := n.liveMembers()
	base := n.clusterScheme(len(members))
	seen := make(map[[32]byte]bool, len(ids))
	chunks, stored := 0, 0
	probed := false
	var errs []error
	for _, id := range ids {
		if seen[id] || ctx.Err() != nil {
			continue
		}
		seen[id] = true
		var p Placement
		var ok bool
		n.fsm.read(func(s *State) { p, ok = s.Placed(id) })
		if !ok {
			continue
		}
		d, wrong := misencoded(&p, base)
		if !wrong {
			continue
		}
		if d.Shards() > len(live) && d.Shards() <= len(members) && !probed {
			// A new leader may not have heard from every member yet.
			n.probe(ctx)
			members, live, _ = n.liveMembers()
			probed = true
		}
		if d.Shards() > len(live) {
			continue
		}
		c, err := n.recodeChunk(ctx, p, d, live)
		stored += c
		if err != nil {
			errs = append(errs, err)
		} else {
			chunks++
		}
	}
	if chunks > 0 || len(errs) > 0 {
		n.log.Info("re-encoded chunks for their directory's scheme", "chunks", chunks, "shards_stored", stored, "failed", len(errs), "err", errors.Join(errs...))
	}
	shardsRepaired.Add(float64(stored))
}

// repairChunk rebuilds the missing shards of the chunk p places onto live
// members that hold none of it.
func (n *Node) repairChunk(ctx context.Context, p Placement, live []string, gone map[string]bool, members []string) (int, error) {
	id := chunkstore.ID(p.ID)
	scheme := placedScheme(&p)
	var slots []int
	want := slices.Clone(p.Nodes)
	for i, h := range p.Nodes {
		if h == "" || gone[h] || !slices.Contains(members, h) {
			slots = append(slots, i)
			want[i] = ""
		}
	}
	spare := 0
	for _, m := range live {
		if !slices.Contains(want, m) {
			spare++
		}
	}
	if spare == 0 {
		return 0, nil // nowhere to put them until a node is back
	}
	data, err := n.readPlaced(ctx, p)
	if err != nil {
		return 0, err
	}
	var shards [][]byte
	if scheme.Data == 1 {
		shards = slices.Repeat([][]byte{data}, scheme.Shards())
	} else if shards, err = scheme.Split(data); err != nil {
		return 0, err
	}
	np := p
	np.Nodes = want
	if _, err := n.pushShards(ctx, &np, shards, rendezvous(id, live), slots); err != nil {
		return 0, err
	}
	rebuilt := Placement{ID: p.ID, Size: p.Size, Data: p.Data, Parity: p.Parity, Nodes: make([]string, len(p.Nodes))}
	count := 0
	for _, i := range slots {
		if np.Nodes[i] != "" {
			rebuilt.Nodes[i] = np.Nodes[i]
			count++
		}
	}
	if count == 0 {
		return 0, nil
	}
	if err := n.recordPlacement(ctx, rebuilt); err != nil {
		return 0, err
	}
	return count, nil
}

// recodeChunk re-encodes the chunk p places with scheme d onto the live
// members in rendezvous order and records the new placement in place of
// the old (PlaceReplace). It gives up, storing nothing the placement
// names, unless every new shard finds a node. The old shards are left to
// the sweep.
func (n *Node) recodeChunk(ctx context.Context, p Placement, d chunkstore.Scheme, live []string) (int, error) {
	id := chunkstore.ID(p.ID)
	data, err := n.readPlaced(ctx, p)
	if err != nil {
		return 0, err
	}
	var shards [][]byte
	if d.Data == 1 {
		shards = slices.Repeat([][]byte{data}, d.Shards())
	} else if shards, err = d.Split(data); err != nil {
		return 0, err
	}
	np := Placement{ID: p.ID, Size: p.Size, Data: uint8(d.Data), Parity: uint8(d.Parity), Nodes: make([]string, d.Shards())}
	failed, err := n.pushShards(ctx, &np, shards, rendezvous(id, live), nil)
	if err != nil {
		return 0, err
	}
	if holders(np.Nodes) < d.Shards() {
		return 0, fmt.Errorf("re-encode chunk %s as %s: %d of %d shards stored: %w", id, d, holders(np.Nodes), d.Shards(), failed)
	}
	req := &MetaRequest{Op: wire.OpPlace, Flags: wire.PlaceReplace, Places: []Placement{np}}
	if _, err := n.do(ctx, req, true); err != nil {
		return 0, fmt.Errorf("re-encode chunk %s as %s: %w", id, d, err)
	}
	return d.Shards(), nil
}

// Scrub reads back every shard the placements say this node holds,
// verifying each (the store checks its checksum and sets a corrupt file
// aside), and reports the missing and corrupt ones lost (OpDisplace), so
// that repair rewrites them.
func (n *Node) Scrub(ctx context.Context) (*MetaResponse, error) {
	type mine struct {
		p Placement
		i int
	}
	var todo []mine
	n.fsm.read(func(s *State) {
		s.EachPlaced(func(p Placement, doomed bool) bool {
			if i := slices.Index(p.Nodes, n.cfg.ID); i >= 0 && !doomed {
				p.Nodes = nil
				todo = append(todo, mine{p, i})
			}
			return true
		})
	})
	rep := &wire.ScrubReport{}
	var lost []Placement
	for _, m := range todo {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		scheme := placedScheme(&m.p)
		key := chunkstore.ShardKey(chunkstore.ID(m.p.ID), scheme, m.i)
		rep.Checked++
		data, err := n.scrubRead(ctx, key)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		want := int(m.p.Size)
		if scheme.Data > 1 {
			want = scheme.ShardSize(want)
		}
		switch {
		case err == nil && len(data) == want:
			continue
		case err == nil || errors.Is(err, chunkstore.ErrCorrupt):
			rep.Corrupt++
			n.log.Error("scrub: corrupt shard", "chunk", chunkstore.ID(m.p.ID).String(), "shard", m.i, "err", err)
		case errors.Is(err, chunkstore.ErrNotFound):
			rep.Missing++
			n.log.Error("scrub: missing shard", "chunk", chunkstore.ID(m.p.ID).String(), "shard", m.i)
		default:
			return nil, err
		}
		l := m.p
		l.Nodes = make([]string, scheme.Shards())
		l.Nodes[m.i] = n.cfg.ID
		lost = append(lost, l)
	}
	if err := n.checkInline(ctx, rep, true); err != nil {
		return nil, err
	}
	if len(lost) > 0 {
		if _, err := n.do(ctx, &MetaRequest{Op: wire.OpDisplace, Places: lost}, true); err != nil {
			return &MetaResponse{Scrubbed: rep}, err
		}
	}
	n.log.Info("scrub done", "checked", rep.Checked, "missing", rep.Missing, "corrupt", rep.Corrupt, "refetched", rep.Refetched)
	return &MetaResponse{Scrubbed: rep}, nil
}

// scrubRead reads file key of this node's store for a scrub, as a
// background read that waits behind the shard reads users wait on.
func (n *Node) scrubRead(ctx context.Context, key chunkstore.ID) ([]byte, error) {
	if err := n.shardGate.acquire(ctx, true); err != nil {
		return nil, err
	}
	defer n.shardGate.release()
	return n.store.Get(ctx, key)
}

// checkInline makes sure this node holds a good copy of every inline
// chunk (a chunk that travelled in a commit; every node keeps one). A node
// that got its state from a snapshot (a new node, or one far behind) never
// applied those commits, so it copies what it lacks from another node. With
// read it reads and verifies each copy (scrub), else it only checks that
// the file is there. Counts go to rep.
func (n *Node) checkInline(ctx context.Context, rep *wire.ScrubReport, read bool) error {
	var ids [][32]byte
	n.fsm.read(func(s *State) { ids = s.InlineChunks() })
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		rep.Checked++
		var err error
		if read {
			if _, err = n.scrubRead(ctx, id); ctx.Err() != nil {
				return ctx.Err()
			}
		} else if ok, herr := n.store.Has(ctx, id); herr != nil {
			err = herr
		} else if !ok {
			err = chunkstore.ErrNotFound
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, chunkstore.ErrCorrupt):
			rep.Corrupt++
		case errors.Is(err, chunkstore.ErrNotFound):
			rep.Missing++
		default:
			return err
		}
		data, ok := n.fetchCopy(ctx, id)
		if !ok {
			n.log.Error("inline chunk missing here and on every other node reached", "chunk", chunkstore.ID(id).String(), "err", err)
			continue
		}
		if err := n.store.Put(ctx, id, data); err != nil {
			return fmt.Errorf("store inline chunk %s fetched from a peer: %w", chunkstore.ID(id), err)
		}
		rep.Refetched++
	}
	return nil
}

// Sweep deletes the files of this node's store that no placement names
// for this node and no file references, last written more than grace ago:
// shards left behind by a collection this node missed, by repair moving
// them, or by a push that was never recorded. It returns how many it
// deleted.
func (n *Node) Sweep(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := time.Now().Add(-grace)
	var old []chunkstore.ID
	err := n.store.List(ctx, func(id chunkstore.ID, mod time.Time) error {
		if mod.Before(cutoff) {
			old = append(old, id)
		}
		return nil
	})
	if err != nil || len(old) == 0 {
		return 0, err
	}
	// Keep this node's shards, copies of chunks being collected (the
	// collector deletes them), and copies of referenced chunks that are
	// not placed (inline chunks, which every node keeps).
	keep := map[chunkstore.ID]bool{}
	n.fsm.read(func(s *State) {
		s.EachPlaced(func(p Placement, doomed bool) bool {
			if i := slices.Index(p.Nodes, n.cfg.ID); i >= 0 {
				keep[chunkstore.ShardKey(chunkstore.ID(p.ID), placedScheme(&p), i)] = true
			}
			if doomed {
				keep[chunkstore.ID(p.ID)] = true
			}
			return true
		})
		for _, id := range old {
			if _, placed := s.placed[id]; !placed && s.IsReferenced(id) {
				keep[id] = true
			}
		}
	})
	deleted := 0
	for _, id := range old {
		if keep[id] {
			continue
		}
		ok, err := n.store.Delete(ctx, id, cutoff)
		if err != nil {
			return deleted, err
		}
		if ok {
			deleted++
		}
	}
	if deleted > 0 {
		n.log.Info("swept stray shards", "files", deleted)
	}
	return deleted, nil
}

// maintainLoop runs this node's scrub every ScrubInterval and its sweep
// every SweepInterval (a negative interval turns either off).
func (n *Node) maintainLoop() {
	defer n.wg.Done()
	tick := func(d time.Duration) <-chan time.Time {
		if d <= 0 {
			return nil
		}
		return time.Tick(d)
	}
	scrub, sweep := tick(n.cfg.ScrubInterval), tick(n.cfg.SweepInterval)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-n.stop
		cancel()
	}()
	for {
		select {
		case <-n.stop:
			return
		case <-scrub:
			if _, err := n.Scrub(ctx); err != nil {
				n.log.Warn("scrub", "err", err)
			}
		case <-sweep:
			if _, err := n.Sweep(ctx, n.cfg.PlaceGrace); err != nil {
				n.log.Warn("sweep", "err", err)
			}
		case <-n.restored:
			rep := &wire.ScrubReport{}
			if err := n.checkInline(ctx, rep, false); err != nil {
				n.log.Warn("copy inline chunks after a snapshot", "err", err)
			} else if rep.Refetched > 0 || rep.Missing > 0 {
				n.log.Info("copied inline chunks after a snapshot", "checked", rep.Checked, "missing", rep.Missing, "copied", rep.Refetched)
			}
		}
	}
}
