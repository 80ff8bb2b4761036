package wire

// Service names a SYN may ask for. New services get new names; a name is
// never reused for a different protocol.
const (
	// ServiceMeta carries metadata requests: MetaRequest and MetaResponse
	// messages in WriteJSON framing, one response per request, in order.
	ServiceMeta = "meta"

	// ServiceChunks carries the casync chunk protocol (WriteCasync):
	// pushes and pulls of chunks and shards.
	ServiceChunks = "chunks"

	// ServicePeer carries the same messages as ServiceMeta after a
	// handshake proving both sides know the cluster secret (PeerHello,
	// PeerChallenge, PeerProof, PeerResult); only there does a node accept
	// OpJoin, OpLeave and forwarded requests.
	ServicePeer = "peer"

	// ServiceShards carries the casync chunk protocol between members, after
	// the same handshake as ServicePeer: the ids are shard keys (see
	// chunkstore.ShardKey), not hashes of the bytes sent, so only members
	// may push or pull them.
	ServiceShards = "shards"
)
