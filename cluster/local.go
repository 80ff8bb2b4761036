package cluster

import (
	"context"
	"sync"
	"time"
)

// Local is a Metadata served in-process from a State, with no Raft and no
// network: what the fs package's unit tests mount. Read-only requests run
// concurrently; mutating ones one at a time. Safe for concurrent use.
type Local struct {
	mu sync.RWMutex
	s  *State
}

var _ Metadata = (*Local)(nil)

// NewLocal returns a Local over a new State configured by cfg.
func NewLocal(cfg StateConfig) *Local {
	return &Local{s: NewState(cfg)}
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
