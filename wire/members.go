package wire

// This file holds the messages about the cluster itself: who its members
// are (OpMembers, OpJoin) and how one node is doing (OpNodeStatus).

// NodeInfo is one member of a cluster as the metadata records it: where
// mounts and peers reach it (Addr, the wire server) and where Raft reaches
// it (RaftAddr). Voter reports whether the node is a voter in the Raft
// configuration the answering node knows; Added is when the record was
// written (Unix nanoseconds, stamped by the proposer).
type NodeInfo struct {
	ID       string `json:"id"`
	Addr     string `json:"addr,omitempty"`
	RaftAddr string `json:"raft,omitempty"`
	Voter    bool   `json:"voter,omitempty"`
	Added    int64  `json:"added,omitempty"`
}

// NodeStatus is what a node says about itself: its Raft role ("leader",
// "follower", "candidate", "shutdown"), term, the last log index it applied
// to its state and the last one in its log, the leader it knows of (node
// id, empty if none), and its chunk store's size and use in bytes.
type NodeStatus struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	RaftAddr  string `json:"raft"`
	Role      string `json:"role"`
	Term      uint64 `json:"term"`
	Applied   uint64 `json:"applied"`
	LastIndex uint64 `json:"last_index"`
	Leader    string `json:"leader,omitempty"`
	Chunks    int64  `json:"chunks"`
	Bytes     int64  `json:"bytes"`
	Capacity  uint64 `json:"capacity"`
	Available uint64 `json:"available"`
	// Health counts the erasure-coded chunks by how well protected they
	// are; only the leader, which tracks which nodes are up, fills it in,
	// once it has probed them since its election.
	Health *ChunkHealth `json:"health,omitempty"`
}

// ChunkHealth counts chunks by how many of their shards sit on nodes that
// are up: Protected, all of them; Degraded, fewer, but enough to read the
// chunk (repair is due); Lost, too few to read it until nodes come back.
// Recoding counts, among all of those, the chunks stored with another
// scheme than the one they should have (their directory's user.shoal.ec,
// else the cluster's), which the leader re-encodes when enough nodes are
// up.
type ChunkHealth struct {
	Protected int64 `json:"protected"`
	Degraded  int64 `json:"degraded"`
	Lost      int64 `json:"lost"`
	Recoding  int64 `json:"recoding,omitempty"`
}
