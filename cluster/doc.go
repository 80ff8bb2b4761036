// Package cluster is shoal's metadata Raft group, the node server and the
// client library everything else uses. It builds on wire and chunkstore.
//
// # State
//
// State (state*.go) is the namespace as the Raft log builds it: inodes,
// directory entries, block layouts, xattrs and chunk reference counts,
// changed only by applying MetaRequests, deterministically (the proposer
// stamps times). Next to it the FSM (fsm.go) keeps the node records
// (members.go): each member's id, wire address and Raft address, so that
// every node and every client can find the others. Raft's own
// configuration stays the truth about who votes; the records are the
// address book. Both go into snapshots.
//
// # Nodes and membership
//
// A Node (node.go) runs Raft (its own TCP port), a chunk store and the wire
// server. A new data directory bootstraps a one-node cluster, unless
// NodeConfig.Join names a member of an existing cluster: the node then
// asks it to add it as a voter (OpJoin; membership.go). Joins and removals
// (OpLeave) are done by the leader: AddVoter or RemoveServer on Raft's
// configuration plus a log entry for the record. They are accepted only on
// the peer service, whose streams start with an HMAC challenge-response
// proving the cluster secret (peer.go, secret.go), so a stranger cannot
// join or remove anyone. Every connection to the Raft port starts with the
// same handshake under other role strings (transport.go), so a stranger
// cannot speak Raft to a member either: no votes, entries or snapshots.
//
// # Forwarding
//
// Any node accepts any metadata request. The leader answers it (reads from
// its applied state once it has applied every entry of earlier terms,
// writes through the log); a follower forwards it, reads included, to the
// leader on a peer stream and relays the answer (forward.go), so every
// answer is the leader's and reads are as fresh as writes. While no leader is known the answer is
// "unavailable" (ErrNotLeader), which clients retry. A minority cannot
// commit: its proposals fail and are answered "unavailable" too.
//
// # Group commit
//
// The leader keeps one batch of proposals in Raft at a time (propose.go):
// the requests that arrive meanwhile wait and then go as one log entry, a
// batch of MetaRequests that every replica applies in order. A lone
// request goes at once as a plain entry; under load each log write, fsync
// and AppendEntries carries many requests. Where commits are slow (they
// wait for a follower's log write), a batch waits up to 2 ms for the
// proposers it expects back, so that requesters taking turns do not split
// into groups that each wait for two commits. A request is encoded as on the
// metadata stream: JSON, or a meta envelope when it carries inline chunk
// bytes (wire.EncodeMetaRequest); a batch is a JSON array of plain ones,
// else a batch envelope (encodeBatch).
//
// # Client
//
// Client (client.go) speaks the wire protocol to one node at a time. It
// learns all members' addresses (OpMembers) and moves to the next node when
// its connection breaks or its node keeps answering "unavailable", all
// within the RetryFor budget of an operation, so a leader change is a
// pause, not an error.
//
// # Shards
//
// The node a chunk is pushed to is its coordinator (coord.go): it splits the
// chunk into k data and m parity shards (chunkstore.Scheme; small chunks
// are copied instead), stores shard i on the i-th member in rendezvous
// order of the chunk id (the next one if that fails), over the
// authenticated shard service, and commits the placement (OpPlace, in the
// State next to the namespace, state_place.go) before acknowledging. A
// commit may only name placed chunks. Reads fetch the data shards, or
// parity too and rebuild, and verify the chunk id; a mount's reads get
// the placement and a grant from the node instead and fetch the data
// shards from their holders themselves (grant.go, directread.go). The
// leader probes the members and repairs degraded chunks onto spare nodes;
// every node scrubs its shards and sweeps strays (repair.go); the
// collector deletes shards on every member (gc.go). wire/PROTOCOL.md §6
// has the details.
package cluster
