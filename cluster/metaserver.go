package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"shoal/wire"
)

// ErrNotLeader means this node cannot commit metadata because it is not the
// Raft leader (and could not forward the request). It is transient.
var ErrNotLeader = errors.New("not the raft leader")

// serveMeta answers metadata requests on one stream, one at a time, until
// the client closes it.
func (n *Node) serveMeta(st *wire.Stream, remote string) {
	for {
		var req MetaRequest
		if err := wire.ReadMetaRequest(st, &req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, wire.ErrSessionClosed) {
				n.log.Warn("meta stream", "peer", remote, "err", err)
			}
			return
		}
		start := time.Now()
		resp, err := n.Do(context.Background(), &req)
		if err != nil && (resp == nil || resp.Errno == 0) {
			resp = &MetaResponse{Errno: uint32(errnoOf(err)), Reason: err.Error(), Unavailable: errors.Is(err, ErrNotLeader)}
		}
		countMeta(&req, resp, start)
		if err := wire.WriteJSON(st, resp); err != nil {
			n.log.Warn("meta stream write", "peer", remote, "err", err)
			return
		}
	}
}

// errnoOf picks the errno a client gets for a node-side failure, in a
// metadata response or a chunk stream's ABORT. A full chunk store wraps
// syscall.ENOSPC (chunkstore.ErrNoSpace), so it maps to ENOSPC here.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrNotLeader):
		return syscall.EAGAIN
	default:
		return syscall.EIO
	}
}

// Do implements Metadata on the node itself: read-only requests are answered
// from the applied state, the rest are stamped and proposed to Raft.
// Unlike the other implementations, Do returns the response together with
// the error for file-system errors, so the server can pass it on unchanged.
func (n *Node) Do(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	req.Forwarded = false // only peers forward (doPeer)
	return n.do(ctx, req, false)
}

// doPeer is Do for a request on an authenticated peer stream: it admits
// membership changes and forwarded requests.
func (n *Node) doPeer(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	return n.do(ctx, req, true)
}

func (n *Node) do(ctx context.Context, req *MetaRequest, peer bool) (*MetaResponse, error) {
	if req.Op == wire.OpStatfs {
		return n.statfs()
	}
	if resp, err, ok := n.doCluster(ctx, req, peer); ok {
		return resp, err
	}
	if !n.ready.Load() {
		return nil, fmt.Errorf("meta %s: node is not serving yet: %w", req.Op, ErrNotLeader)
	}
	if IsReadOnly(req.Op) {
		var resp *MetaResponse
		n.fsm.read(func(s *State) { resp = s.Read(req) })
		return resp, ResponseError(req, resp)
	}
	switch req.Op {
	case wire.OpGCMark, wire.OpGCDone:
		return nil, fmt.Errorf("meta %s: internal to the cluster: %w", req.Op, syscall.EPERM)
	case wire.OpCommit:
		if err := checkInline(req.Blocks); err != nil {
			return nil, err
		}
		// Stored here first so that a full disk fails the commit; each
		// replica (this one again) stores them when it applies the entry.
		start := time.Now()
		if err := storeInline(ctx, n.store.PutLazy, req.Blocks); err != nil {
			return nil, err
		}
		inlineSeconds.Observe(time.Since(start).Seconds())
	}
	if req.Now == 0 {
		req.Now = time.Now().UnixNano()
	}
	resp, err := n.propose(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp, ResponseError(req, resp)
}

// propose appends req to the Raft log and returns the state machine's
// answer once it is committed by a majority and applied here.
func (n *Node) propose(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	data, err := wire.EncodeMetaRequest(req)
	if err != nil {
		return nil, fmt.Errorf("propose op %d: %w", req.Op, err)
	}
	timeout := proposeTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	start := time.Now()
	answer, err := n.proposer.propose(data, timeout)
	proposeSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return nil, fmt.Errorf("propose op %d: %w", req.Op, ErrNotLeader)
		}
		return nil, fmt.Errorf("propose op %d: %w", req.Op, err)
	}
	resp, ok := answer.(*MetaResponse)
	if !ok {
		return nil, fmt.Errorf("propose op %d: state machine returned %T", req.Op, answer)
	}
	return resp, nil
}

// statfs combines the namespace's counts with the chunk store's disk.
func (n *Node) statfs() (*MetaResponse, error) {
	const bsize = 4096
	u, err := n.store.Stat(context.Background())
	if err != nil {
		return nil, fmt.Errorf("statfs: %w", err)
	}
	var inodes uint64
	n.fsm.read(func(s *State) { inodes, _ = s.Counts() })
	const maxFiles = 1 << 40
	sf := Statfs{
		Bsize:   bsize,
		Blocks:  u.Capacity / bsize,
		Bfree:   u.Available / bsize,
		Bavail:  u.Available / bsize,
		Files:   maxFiles,
		Ffree:   maxFiles - inodes,
		Namelen: 255,
	}
	return &MetaResponse{Statfs: sf}, nil
}
