package cluster

import (
	"context"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

// gcLoop collects garbage chunks on the leader every GCInterval.
func (n *Node) gcLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if _, err := n.CollectGarbage(context.Background()); err != nil {
			n.log.Warn("garbage collection", "err", err)
		}
	}
}

// CollectGarbage deletes the chunks no file references any more and returns
// how many it deleted. Only the leader collects; elsewhere it does nothing.
//
// It runs in three steps so that it never deletes a chunk a client is about
// to commit: OpGCMark dooms the unreferenced chunks at time T (a commit
// naming a doomed chunk fails with EAGAIN, and the client uploads it again);
// each doomed chunk is deleted only if its last upload was before T; OpGCDone
// lifts the doom. A commit after that finds the chunk absent and is also
// answered EAGAIN (see checkChunks).
func (n *Node) CollectGarbage(ctx context.Context) (int, error) {
	if addr, _ := n.raft.LeaderWithID(); string(addr) != string(n.trans.LocalAddr()) {
		return 0, nil
	}
	var garbage [][32]byte
	n.fsm.read(func(s *State) { garbage = s.Garbage() })
	if len(garbage) == 0 {
		return 0, nil
	}
	mark := time.Now()
	resp, err := n.propose(ctx, &MetaRequest{Op: wire.OpGCMark, Chunks: garbage, Now: mark.UnixNano()})
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, id := range resp.Chunks {
		ok, err := n.store.Delete(ctx, chunkstore.ID(id), mark)
		if err != nil {
			n.log.Warn("delete garbage chunk", "chunk", chunkstore.ID(id).String(), "err", err)
			continue
		}
		if ok {
			deleted++
			gcDeleted.Inc()
		}
	}
	if _, err := n.propose(ctx, &MetaRequest{Op: wire.OpGCDone, Chunks: resp.Chunks, Now: time.Now().UnixNano()}); err != nil {
		return deleted, err
	}
	n.log.Info("garbage collected", "chunks", deleted)
	return deleted, nil
}
