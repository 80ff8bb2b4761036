package cluster

// This file holds the node records the metadata Raft group keeps next to
// the namespace: each member's id and addresses, so that every node and
// every client can learn where the others are. Raft's own configuration
// stays the truth about who votes; the records are the address book.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"syscall"

	"shoal/wire"
)

// NodeInfo, NodeStatus and ChunkHealth describe cluster members (see
// wire/members.go).
type (
	NodeInfo    = wire.NodeInfo
	NodeStatus  = wire.NodeStatus
	ChunkHealth = wire.ChunkHealth
)

// members is the set of node records, keyed by node id. Like State, it is
// changed only by applying log entries, deterministically, and is not safe
// for concurrent use (the fsm guards it).
type members map[string]NodeInfo

// apply performs an OpJoin (record or replace req.Node, Added = req.Now) or
// an OpLeave (forget node req.Name; forgetting an unknown node is not an
// error).
func (m members) apply(req *MetaRequest) *MetaResponse {
	switch req.Op {
	case wire.OpJoin:
		if req.Node == nil || req.Node.ID == "" || req.Node.Addr == "" || req.Node.RaftAddr == "" {
			return stErr(syscall.EINVAL, "join: node id, address and raft address are required")
		}
		rec := NodeInfo{ID: req.Node.ID, Addr: req.Node.Addr, RaftAddr: req.Node.RaftAddr, Added: req.Now}
		m[rec.ID] = rec
		return &MetaResponse{Members: m.list()}
	case wire.OpLeave:
		delete(m, string(req.Name))
		return &MetaResponse{Members: m.list()}
	}
	return stErr(syscall.EINVAL, "not a membership op")
}

// list returns the records sorted by id.
func (m members) list() []NodeInfo {
	out := make([]NodeInfo, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// isMembershipOp reports whether op changes the node records rather than
// the namespace.
func isMembershipOp(op MetaOp) bool { return op == wire.OpJoin || op == wire.OpLeave }

// # Snapshot container
//
// A metadata snapshot written since node records exist is
//
//	magic    "SHOALCLU"
//	version  1 (uvarint)
//	nnodes (uvarint), then per node in id order: id addr raftaddr added
//	         (strings as uvarint length + bytes, added as a zig-zag varint)
//	the State's own snapshot (state_snapshot.go), to the end
//
// A snapshot that starts with the State's magic instead is one written
// before: it holds no node records.

const (
	membersMagic   = "SHOALCLU"
	membersVersion = 1
	maxMembers     = 1 << 16
)

// saveMembers writes the container's header and node records to w.
func saveMembers(w io.Writer, m members) error {
	buf := binary.AppendUvarint([]byte(membersMagic), membersVersion)
	buf = binary.AppendUvarint(buf, uint64(len(m)))
	for _, n := range m.list() {
		for _, s := range []string{n.ID, n.Addr, n.RaftAddr} {
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		}
		buf = binary.AppendVarint(buf, n.Added)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("save node records: %w", err)
	}
	return nil
}

// loadSnapshot reads a metadata snapshot, with or without node records.
func loadSnapshot(r io.Reader) (*State, members, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(len(membersMagic))
	if err != nil {
		return nil, nil, fmt.Errorf("load snapshot: %w: %w", ErrStateFormat, err)
	}
	m := members{}
	if bytes.Equal(head, []byte(membersMagic)) {
		br.Discard(len(membersMagic))
		if m, err = loadMembers(br); err != nil {
			return nil, nil, err
		}
	}
	s, err := LoadState(br)
	if err != nil {
		return nil, nil, err
	}
	return s, m, nil
}

func loadMembers(br *bufio.Reader) (members, error) {
	fail := func(what string, err error) (members, error) {
		if err == nil {
			err = errors.New("out of range")
		}
		return nil, fmt.Errorf("load node records: %s: %w: %v", what, ErrStateFormat, err)
	}
	v, err := binary.ReadUvarint(br)
	if err != nil || v != membersVersion {
		return fail(fmt.Sprintf("version %d", v), err)
	}
	count, err := binary.ReadUvarint(br)
	if err != nil || count > maxMembers {
		return fail("count", err)
	}
	m := members{}
	for range count {
		var f [3]string
		for i := range f {
			l, err := binary.ReadUvarint(br)
			if err != nil || l > 1024 {
				return fail("string length", err)
			}
			b := make([]byte, l)
			if _, err := io.ReadFull(br, b); err != nil {
				return fail("string", err)
			}
			f[i] = string(b)
		}
		added, err := binary.ReadVarint(br)
		if err != nil {
			return fail("time", err)
		}
		if f[0] == "" {
			return fail("empty node id", nil)
		}
		m[f[0]] = NodeInfo{ID: f[0], Addr: f[1], RaftAddr: f[2], Added: added}
	}
	return m, nil
}
