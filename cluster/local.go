package cluster

import (
	"context"
	"sync"
	"time"

	"shoal/chunkstore"
)

// Local is a Metadata served in-process from a State, with no Raft and no
// network: what the fs package's unit tests mount. Read-only requests run
// concurrently; mutating ones one at a time. Safe for concurrent use.
type Local struct {
	chunks ChunkPutter // where commits' inline chunks go

	mu sync.RWMutex
	s  *State
}

var _ Metadata = (*Local)(nil)

// A ChunkPutter stores chunks durably, as chunkstore.Store's Put does.
type ChunkPutter interface {
	Put(ctx context.Context, id chunkstore.ID, data []byte) error
}

// NewLocal returns a Local over a new State configured by cfg. The inline
// chunks of commits are put into chunks, which should be the store the
// file system reads chunks from; with nil, inline chunks are dropped.
func NewLocal(cfg StateConfig, chunks ChunkPutter) *Local {
	return &Local{s: NewState(cfg), chunks: chunks}
}

// Do implements Metadata. It stamps a copy of req with the current time
// when req.Now is zero; req itself is not changed. An errno response comes
// back as ResponseError's error (wrapping the syscall.Errno) and a nil
// response.
func (l *Local) Do(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := *req
	if r.Now == 0 {
		r.Now = time.Now().UnixNano()
	}
	if r.Op == OpCommit && l.chunks != nil {
		if err := checkInline(r.Blocks); err != nil {
			return nil, err
		}
		if err := storeInline(ctx, l.chunks.Put, r.Blocks); err != nil {
			return nil, err
		}
	}
	var resp *MetaResponse
	if IsReadOnly(r.Op) {
		l.mu.RLock()
		resp = l.s.Read(&r)
		l.mu.RUnlock()
	} else {
		l.mu.Lock()
		resp = l.s.Apply(&r)
		l.mu.Unlock()
	}
	if err := ResponseError(&r, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// View calls fn with the state under the read lock, for tests and tools
// that inspect it (Garbage, Counts, Save). fn must not keep s or change it.
func (l *Local) View(fn func(s *State)) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	fn(l.s)
}
