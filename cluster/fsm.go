package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"shoal/chunkstore"
	"shoal/wire"
)

// fsm adapts a State to raft.FSM. Each log entry is one JSON-encoded
// MetaRequest, stamped by the proposing node, or a JSON array of them that
// the leader grouped (propose.go); Apply returns the *MetaResponse of each,
// which propose hands back to its proposer.
//
// Inline chunks: a commit's inline chunks (see inline.go) go into chunks
// with PutLazy as the commit is applied, so every replica holds them. They
// need not be durable then, because the log entry is, and replaying the log
// stores them again; but a snapshot lets the log go, so Persist first makes
// them durable with chunks.Sync.
type fsm struct {
	chunks chunkstore.LazyPutter
	log    *slog.Logger
	cfg    StateConfig

	// restored, if set, is signalled (without blocking) after a snapshot
	// is restored: this replica did not apply the commits the snapshot
	// covers, so it may lack their inline chunks.
	restored chan<- struct{}
	// recode, if set, gets the chunks an applied commit names that are
	// not in the scheme their directory asks for (State.Recodable). It
	// must not block.
	recode func(ids [][32]byte)

	mu      sync.RWMutex
	state   *State
	members members // node records (members.go)
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(cfg StateConfig, chunks chunkstore.LazyPutter, log *slog.Logger) *fsm {
	return &fsm{state: NewState(cfg), members: members{}, chunks: chunks, log: log, cfg: cfg}
}

// Apply implements raft.FSM. An entry is one MetaRequest, answered with
// its *MetaResponse, or a batch of them (propose.go), answered with a
// batchResponse of one answer each, applied in order.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	start := time.Now()
	defer func() { applySeconds.Observe(time.Since(start).Seconds()) }()
	if isBatch(l.Data) {
		reqs, err := decodeBatch(l.Data)
		if err != nil {
			return undecodable(l, err)
		}
		out := make(batchResponse, len(reqs))
		for i := range reqs {
			out[i] = f.apply(l.Index, &reqs[i])
		}
		return out
	}
	var req MetaRequest
	if err := wire.DecodeMetaRequest(l.Data, &req); err != nil {
		return undecodable(l, err)
	}
	return f.apply(l.Index, &req)
}

// undecodable answers a log entry that does not decode. Such an entry was
// written by a newer or broken proposer; every replica skips it alike.
func undecodable(l *raft.Log, err error) *MetaResponse {
	return &MetaResponse{Errno: uint32(syscall.EINVAL), Reason: fmt.Sprintf("decode log entry %d: %v", l.Index, err)}
}

// apply applies one request of log entry index.
func (f *fsm) apply(index uint64, req *MetaRequest) *MetaResponse {
	f.mu.Lock()
	if isMembershipOp(req.Op) {
		defer f.mu.Unlock()
		return f.members.apply(req)
	}
	resp := f.state.Apply(req)
	var recode [][32]byte
	if req.Op == wire.OpCommit && resp.Errno == 0 && f.recode != nil {
		recode = f.state.Recodable(req.Blocks)
	}
	f.mu.Unlock()
	if len(recode) > 0 {
		f.recode(recode)
	}
	if req.Op == wire.OpCommit && resp.Errno == 0 {
		if err := storeInline(context.Background(), f.chunks.PutLazy, req.Blocks); err != nil {
			// The entry is committed and the chunk stays in the log; the
			// scrub finds this replica short of it.
			f.log.Error("apply commit: inline chunk not stored", "index", index, "ino", req.Ino, "err", err)
		}
	}
	return resp
}

// nodes returns the node records, sorted by id.
func (f *fsm) nodes() []NodeInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.members.list()
}

// read runs fn on the applied state under the read lock.
func (f *fsm) read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Snapshot implements raft.FSM. Raft calls it between Applies, so the
// state is encoded here, in full; Persist only writes the bytes.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	var buf bytes.Buffer
	f.mu.RLock()
	err := saveMembers(&buf, f.members)
	if err == nil {
		err = f.state.Save(&buf)
	}
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("snapshot metadata: %w", err)
	}
	return &fsmSnapshot{data: buf.Bytes(), sync: f.chunks.Sync}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, m, err := loadSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore metadata snapshot: %w", err)
	}
	s.requirePlaced = f.cfg.RequirePlaced
	f.mu.Lock()
	f.state, f.members = s, m
	f.mu.Unlock()
	if f.restored != nil {
		select {
		case f.restored <- struct{}{}:
		default:
		}
	}
	return nil
}

type fsmSnapshot struct {
	data []byte
	sync func(context.Context) error // makes the applied inline chunks durable
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.sync(context.Background()); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist metadata snapshot: %w", err)
	}
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist metadata snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
