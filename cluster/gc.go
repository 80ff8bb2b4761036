package cluster

import (
	"context"
	"sync"
	"time"

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

// CollectGarbage deletes the chunks no file references any more, with
// their shards on every member, and returns how many files it deleted.
// Only the leader collects; elsewhere it does nothing. Chunks pushed but
// never committed are collected once they are PlaceGrace old.
//
// It runs in three steps so that it never deletes a chunk a client is about
// to commit: OpGCMark dooms the unreferenced chunks at time T (a commit
// naming a doomed chunk fails with EAGAIN, and the client uploads it again);
// every member deletes its copies and shards of them last written before T
// (OpDropShards); OpGCDone forgets them and their placements. A commit
// after that finds the chunk not placed and is also answered EAGAIN.
// A member that cannot be reached keeps its shards; its sweep deletes them
// later (repair.go).
func (n *Node) CollectGarbage(ctx context.Context) (int, error) {
	if !n.ready.Load() {
		return 0, nil
	}
	var garbage [][32]byte
	before := time.Now().Add(-n.cfg.PlaceGrace).UnixNano()
	n.fsm.read(func(s *State) { garbage = s.Garbage(before) })
	if len(garbage) == 0 {
		return 0, nil
	}
	mark := time.Now()
	resp, err := n.propose(ctx, &MetaRequest{Op: wire.OpGCMark, Chunks: garbage, Now: mark.UnixNano()})
	if err != nil {
		return 0, err
	}
	drop := &MetaRequest{Op: wire.OpDropShards, Chunks: resp.Chunks, Places: resp.Places, Now: mark.UnixNano()}
	var mu sync.Mutex
	deleted := 0
	var wg sync.WaitGroup
	for _, id := range n.shardNodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r *MetaResponse
			var err error
			if id == n.cfg.ID {
				r, err = n.dropShards(ctx, drop)
			} else if addr := n.nodeAddr(id); addr != "" {
				r, err = n.peerClient(addr).doOnce(ctx, drop)
				if err == nil {
					err = ResponseError(drop, r)
				}
			}
			if err != nil {
				n.log.Warn("delete garbage shards", "node", id, "err", err)
			}
			if r != nil {
				mu.Lock()
				deleted += r.Deleted
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if _, err := n.propose(ctx, &MetaRequest{Op: wire.OpGCDone, Chunks: resp.Chunks, Now: time.Now().UnixNano()}); err != nil {
		return deleted, err
	}
	n.log.Info("garbage collected", "chunks", len(resp.Chunks), "files", deleted)
	return deleted, nil
}
