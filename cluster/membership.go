package cluster

// This file holds cluster membership on the node: joining a cluster at
// start, adding and removing voters on the leader (OpJoin, OpLeave), the
// leader's own record, and what a node says about the members
// (OpMembers) and itself (OpNodeStatus).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"shoal/wire"
)

// doCluster handles what is about the cluster rather than the namespace,
// and forwarding, before Do's namespace path. It returns ok false when the
// request is for that path: a namespace request on a ready leader.
// peer says the request came on an authenticated peer stream.
func (n *Node) doCluster(ctx context.Context, req *MetaRequest, peer bool) (resp *MetaResponse, err error, ok bool) {
	switch req.Op {
	case wire.OpNodeStatus:
		return &MetaResponse{Node: n.Status()}, nil, true
	case wire.OpMembers:
		m, leader := n.Members()
		return &MetaResponse{Members: m, Leader: leader}, nil, true
	case wire.OpGCMark, wire.OpGCDone:
		return nil, fmt.Errorf("meta %s: internal to the cluster: %w", req.Op, syscall.EPERM), true
	case wire.OpJoin, wire.OpLeave, wire.OpPlace, wire.OpDisplace, wire.OpLocate, wire.OpDropShards, wire.OpScrub, wire.OpRepair:
		if !peer {
			return nil, fmt.Errorf("meta %s: needs the cluster secret (peer service): %w", req.Op, syscall.EPERM), true
		}
	}
	switch req.Op {
	case wire.OpDropShards:
		resp, err = n.dropShards(ctx, req)
		return resp, err, true
	case wire.OpScrub:
		resp, err = n.Scrub(ctx)
		return resp, err, true
	}
	if n.ready.Load() {
		switch req.Op {
		case wire.OpJoin:
			resp, err = n.addVoter(ctx, req)
			return resp, err, true
		case wire.OpLeave:
			resp, err = n.removeVoter(ctx, req)
			return resp, err, true
		case wire.OpRepair:
			repaired, err := n.Repair(ctx)
			return &MetaResponse{Repaired: repaired}, err, true
		}
		return nil, nil, false
	}
	if req.Forwarded {
		return nil, fmt.Errorf("meta %s: forwarded here, but this node is not the leader: %w", req.Op, ErrNotLeader), true
	}
	if req.Now == 0 && !IsReadOnly(req.Op) {
		req.Now = time.Now().UnixNano()
	}
	resp, err = n.forward(ctx, req)
	return resp, err, true
}

// addVoter makes req.Node a Raft voter and records its addresses. Only the
// leader calls it.
func (n *Node) addVoter(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	nd := req.Node
	if nd == nil || nd.ID == "" || nd.Addr == "" || nd.RaftAddr == "" {
		return nil, fmt.Errorf("add node: id, address and raft address are required: %w", syscall.EINVAL)
	}
	f := n.raft.AddVoter(raft.ServerID(nd.ID), raft.ServerAddress(nd.RaftAddr), 0, proposeTimeout)
	if err := raftErr(f.Error()); err != nil {
		return nil, fmt.Errorf("add node %s: %w", nd.ID, err)
	}
	if req.Now == 0 {
		req.Now = time.Now().UnixNano()
	}
	resp, err := n.propose(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("add node %s: record: %w", nd.ID, err)
	}
	n.log.Info("node added", "id", nd.ID, "addr", nd.Addr, "raft", nd.RaftAddr)
	return resp, ResponseError(req, resp)
}

// removeVoter forgets node req.Name's record, then removes it from the
// Raft configuration. Only the leader calls it; removing itself, it steps
// down once the change commits.
func (n *Node) removeVoter(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	id := string(req.Name)
	if id == "" {
		return nil, fmt.Errorf("remove node: no id given: %w", syscall.EINVAL)
	}
	if !n.isMember(id) {
		return nil, fmt.Errorf("remove node %s: not a member: %w", id, syscall.ENOENT)
	}
	if req.Now == 0 {
		req.Now = time.Now().UnixNano()
	}
	resp, err := n.propose(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("remove node %s: %w", id, err)
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, proposeTimeout)
	if err := raftErr(f.Error()); err != nil {
		return nil, fmt.Errorf("remove node %s: %w", id, err)
	}
	n.log.Info("node removed", "id", id)
	return resp, ResponseError(req, resp)
}

// isMember reports whether id is in the Raft configuration or the records.
func (n *Node) isMember(id string) bool {
	m, _ := n.Members()
	for _, nd := range m {
		if nd.ID == id {
			return true
		}
	}
	return false
}

// raftErr maps Raft's leadership errors to ErrNotLeader.
func raftErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return fmt.Errorf("%v: %w", err, ErrNotLeader)
	}
	return err
}

// Members returns every node this node knows of, sorted by id: the
// recorded ones and any in the Raft configuration without a record yet,
// each marked Voter if the configuration says so, and the leader's id ("" if
// none is known). It reads this node's state, which may lag the leader's.
func (n *Node) Members() ([]NodeInfo, string) {
	recs := n.fsm.nodes()
	var servers []raft.Server
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		servers = f.Configuration().Servers
	}
	byID := map[string]int{}
	for i, r := range recs {
		byID[r.ID] = i
	}
	for _, s := range servers {
		i, ok := byID[string(s.ID)]
		if !ok {
			recs = append(recs, NodeInfo{ID: string(s.ID), RaftAddr: string(s.Address)})
			i = len(recs) - 1
			byID[string(s.ID)] = i
		}
		recs[i].Voter = s.Suffrage == raft.Voter
	}
	slices.SortFunc(recs, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	_, leader := n.raft.LeaderWithID()
	return recs, string(leader)
}

// Status returns what this node says about itself (OpNodeStatus).
func (n *Node) Status() *NodeStatus {
	_, leader := n.raft.LeaderWithID()
	st := &NodeStatus{
		ID:        n.cfg.ID,
		Addr:      n.wireAddr,
		RaftAddr:  string(n.trans.LocalAddr()),
		Role:      strings.ToLower(n.raft.State().String()),
		Term:      n.raft.CurrentTerm(),
		Applied:   n.raft.AppliedIndex(),
		LastIndex: n.raft.LastIndex(),
		Leader:    string(leader),
	}
	st.Health = n.Health()
	if u, err := n.store.Stat(context.Background()); err == nil {
		st.Chunks, st.Bytes, st.Capacity, st.Available = u.Chunks, u.Bytes, u.Capacity, u.Available
	}
	return st
}

// self is this node's own record.
func (n *Node) self() *NodeInfo {
	return &NodeInfo{ID: n.cfg.ID, Addr: n.wireAddr, RaftAddr: string(n.trans.LocalAddr())}
}

// recordSelf makes sure a new leader's own addresses are recorded (the
// first node of a cluster has nobody else to record it; a node restarted
// on new addresses updates them).
func (n *Node) recordSelf() {
	defer n.wg.Done()
	me := n.self()
	n.fsm.mu.RLock()
	rec, ok := n.fsm.members[me.ID]
	n.fsm.mu.RUnlock()
	if ok && rec.Addr == me.Addr && rec.RaftAddr == me.RaftAddr {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
	defer cancel()
	if _, err := n.propose(ctx, &MetaRequest{Op: wire.OpJoin, Node: me, Now: time.Now().UnixNano()}); err != nil {
		n.log.Warn("record own addresses", "err", err)
	}
}

// joinCluster asks the cluster at cfg.Join (any member; it forwards to the
// leader) to add this node as a voter, retrying transient failures for
// cfg.JoinTimeout.
func (n *Node) joinCluster() error {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.JoinTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := Dial(ctx, n.cfg.Join, ClientConfig{Secret: n.cfg.Secret, Logger: n.log, RetryFor: n.cfg.JoinTimeout})
	if err != nil {
		return fmt.Errorf("join cluster at %s: %w", n.cfg.Join, err)
	}
	defer c.Close()
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpJoin, Node: n.self()}); err != nil {
		return fmt.Errorf("join cluster at %s: %w", n.cfg.Join, err)
	}
	n.log.Info("joined cluster", "via", n.cfg.Join)
	return nil
}
