package cluster

// This file holds the client's view of the cluster itself: its members,
// each node's status, and the operator's membership changes.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"shoal/wire"
)

// learn asks the node for the cluster's members and adds their wire
// addresses to the ones the client fails over to. Failures are only logged:
// the given addresses still work. It returns the members, nil if it failed.
func (c *Client) learn(ctx context.Context) []NodeInfo {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.doOnce(ctx, &MetaRequest{Op: wire.OpMembers})
	if err == nil {
		err = ResponseError(&MetaRequest{Op: wire.OpMembers}, resp)
	}
	if err != nil {
		c.log.Debug("learn cluster members", "err", err)
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range resp.Members {
		if m.Addr != "" && !slices.Contains(c.addrs, m.Addr) {
			c.addrs = append(c.addrs, m.Addr)
		}
	}
	return resp.Members
}

// Members returns the members of the cluster as the node the client talks
// to knows them (sorted by id), and the leader's id ("" if none).
func (c *Client) Members(ctx context.Context) ([]NodeInfo, string, error) {
	resp, err := c.Do(ctx, &MetaRequest{Op: wire.OpMembers})
	if err != nil {
		return nil, "", fmt.Errorf("cluster members: %w", err)
	}
	return resp.Members, resp.Leader, nil
}

// StatusAt asks the node at addr, and only it, for its status, in one
// attempt bounded by timeout: a node that does not answer is down.
func StatusAt(ctx context.Context, addr string, timeout time.Duration, log *slog.Logger) (*NodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := Dial(ctx, addr, ClientConfig{RetryFor: time.Millisecond, OpTimeout: timeout, Pin: true, Logger: log})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.NodeStatus(ctx)
}

// NodeStatus returns the status of the node the client talks to. Use a
// client dialled to that node alone (one address, or StatusAt) to ask a
// given node.
func (c *Client) NodeStatus(ctx context.Context) (*NodeStatus, error) {
	resp, err := c.Do(ctx, &MetaRequest{Op: wire.OpNodeStatus})
	if err != nil {
		return nil, fmt.Errorf("node status: %w", err)
	}
	if resp.Node == nil {
		return nil, fmt.Errorf("node status from %s: empty answer", c.node())
	}
	return resp.Node, nil
}

// AddNode asks the cluster to add node as a voter and record its
// addresses. The client needs the cluster secret (ClientConfig.Secret); the
// node must be running without a cluster of its own (it was started to
// join, or with NoBootstrap).
func (c *Client) AddNode(ctx context.Context, node NodeInfo) error {
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpJoin, Node: &node}); err != nil {
		return fmt.Errorf("add node %s: %w", node.ID, err)
	}
	return nil
}

// RemoveNode asks the cluster to remove node id from its voters and
// records. The client needs the cluster secret. The error wraps
// syscall.ENOENT if id is not a member.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpLeave, Name: Name(id)}); err != nil {
		return fmt.Errorf("remove node %s: %w", id, err)
	}
	return nil
}

// Scrub asks the node the client talks to to verify every shard it should
// hold now (OpScrub, never forwarded: dial that node alone, with Pin), and
// returns what it found; the missing and corrupt shards are already
// reported lost, so that repair rewrites them. The client needs the cluster
// secret. A scrub reads every shard: give the client an OpTimeout and
// MetaTimeout long enough for that.
func (c *Client) Scrub(ctx context.Context) (*ScrubReport, error) {
	resp, err := c.Do(ctx, &MetaRequest{Op: wire.OpScrub})
	if err != nil {
		return nil, fmt.Errorf("scrub node %s: %w", c.node(), err)
	}
	if resp.Scrubbed == nil {
		return nil, fmt.Errorf("scrub node %s: empty answer", c.node())
	}
	return resp.Scrubbed, nil
}

// Repair asks the leader (through the node the client talks to) to run one
// repair pass now (OpRepair), and returns how many shards it rebuilt. The
// client needs the cluster secret.
func (c *Client) Repair(ctx context.Context) (int, error) {
	resp, err := c.Do(ctx, &MetaRequest{Op: wire.OpRepair})
	if err != nil {
		return 0, fmt.Errorf("repair through node %s: %w", c.node(), err)
	}
	return resp.Repaired, nil
}
