package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/hashicorp/raft"
)

// fsm adapts a State to raft.FSM. Each log entry is one JSON-encoded
// MetaRequest, stamped by the proposing node; Apply returns the
// *MetaResponse, which Propose hands back to the proposer.
type fsm struct {
	mu      sync.RWMutex
	state   *State
	members members // node records (members.go)
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(cfg StateConfig) *fsm { return &fsm{state: NewState(cfg), members: members{}} }

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var req MetaRequest
	if err := json.Unmarshal(l.Data, &req); err != nil {
		// A log entry we cannot decode was written by a newer or broken
		// proposer; every replica skips it alike.
		return &MetaResponse{Errno: uint32(syscall.EINVAL), Reason: fmt.Sprintf("decode log entry %d: %v", l.Index, err)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if isMembershipOp(req.Op) {
		return f.members.apply(&req)
	}
	return f.state.Apply(&req)
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
	return &fsmSnapshot{data: buf.Bytes()}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, m, err := loadSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore metadata snapshot: %w", err)
	}
	f.mu.Lock()
	f.state, f.members = s, m
	f.mu.Unlock()
	return nil
}

type fsmSnapshot struct{ data []byte }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist metadata snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
