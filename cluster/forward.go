package cluster

// This file holds forwarding: a node that is not the leader relays each
// metadata request it gets (reads too, so that every answer is the
// leader's, linearizable) to the leader on the peer service and passes the
// answer back. While there is no leader it answers "unavailable", and the
// client retries.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"shoal/wire"
)

// forwardTimeout bounds one forwarded request; a leader that does not
// answer in time (stopped, or cut off) gets the request answered
// "unavailable", and the client retries, by then through a new leader.
const forwardTimeout = 10 * time.Second

// repairForwardTimeout bounds a forwarded OpRepair, which answers only
// when the leader's repair pass is done ("shoal node repair" sent to a
// follower).
const repairForwardTimeout = 30 * time.Minute

// forward sends req to the leader and returns its answer. Failures to
// reach it wrap ErrNotLeader: they are transient.
func (n *Node) forward(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	_, leader := n.raft.LeaderWithID()
	if leader == "" {
		return nil, fmt.Errorf("no leader known: %w", ErrNotLeader)
	}
	if string(leader) == n.cfg.ID {
		return nil, fmt.Errorf("leading, but not yet caught up with earlier terms: %w", ErrNotLeader)
	}
	addr := n.nodeAddr(string(leader))
	if addr == "" {
		return nil, fmt.Errorf("meta %s: leader %s has no recorded address yet: %w", req.Op, leader, ErrNotLeader)
	}
	if len(n.cfg.Secret) == 0 {
		return nil, fmt.Errorf("meta %s: cannot forward to leader %s without a cluster secret: %w", req.Op, leader, ErrNotLeader)
	}
	pc := n.peerClient(addr)
	timeout := forwardTimeout
	if req.Op == wire.OpRepair {
		timeout = repairForwardTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fwd := *req
	fwd.Forwarded = true
	resp, err := pc.doOnce(ctx, &fwd)
	if err != nil {
		if errors.Is(err, ErrBadSecret) {
			n.log.Error("leader refused our cluster secret", "leader", leader, "addr", addr)
		}
		return nil, fmt.Errorf("forward to leader %s: %v: %w", leader, err, ErrNotLeader)
	}
	forwarded.Inc()
	return resp, ResponseError(req, resp)
}

// nodeAddr returns the recorded wire address of node id, or "".
func (n *Node) nodeAddr(id string) string {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	return n.fsm.members[id].Addr
}

// peerClient returns the (lazily dialling) peer client for the node at addr.
func (n *Node) peerClient(addr string) *Client {
	n.peerMu.Lock()
	defer n.peerMu.Unlock()
	if c := n.peers[addr]; c != nil {
		return c
	}
	c := newClient(addr, ClientConfig{Secret: n.cfg.Secret, Logger: n.log, RetryFor: forwardTimeout, OpTimeout: forwardTimeout})
	if n.peers == nil { // closed: the client fails every operation
		c.Close()
		return c
	}
	n.peers[addr] = c
	return c
}

// closePeers closes the peer clients (at Close).
func (n *Node) closePeers() {
	n.peerMu.Lock()
	defer n.peerMu.Unlock()
	for _, c := range n.peers {
		c.Close()
	}
	for _, c := range n.shardPeers {
		c.Close()
	}
	n.peers, n.shardPeers = nil, nil
}
