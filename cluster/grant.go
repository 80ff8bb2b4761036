package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"syscall"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

// Read grants let a mount read a chunk's data shards straight from the
// nodes holding them (wire.ShardRequest), as DESIGN.md's data path has
// it, rather than through the node it talks to, which would fetch them,
// join them and send the chunk on. Mounts hold no cluster secret, so a
// member that knows the chunk's placement vouches for the read: asked
// for the chunk with REQUEST's DIRECT flag, it answers SHARDS, the
// placement with the holders' addresses and a grant, an HMAC-SHA-256
// under a key derived from the cluster secret of the chunk's id, its
// scheme and an expiry. A holder serves a shard (SHARD_REQUEST) only of a
// chunk a valid grant names; no one without the secret can make one. A grant

// opens nothing a mount could not read anyway (any chunk, through the
// chunk service), and lapses after grantLife, which also bounds how long
// the members' clocks may disagree.

// grantLife is how long a read grant is valid.
const grantLife = 2 * time.Minute

// grantKey derives the key of read grants from the cluster secret; nil
// if there is none (a single node without one grants nothing).
func grantKey(secret []byte) []byte {
	if len(secret) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("shoal read grant\x00"))
	return m.Sum(nil)
}

// grantMAC returns the MAC of a grant to read the shards of chunk id,
// erasure-coded k+m, until expires.
func (n *Node) grantMAC(id [32]byte, k, m uint8, expires int64) []byte {
	h := hmac.New(sha256.New, n.grantKey)
	var b [8 + 32 + 2]byte
	binary.LittleEndian.PutUint64(b[:], uint64(expires))
	copy(b[8:], id[:])
	b[40], b[41] = k, m
	h.Write(b[:])
	return h.Sum(nil)
}

// shardsFor returns the SHARDS answer to a REQUEST with
// CasyncRequestDirect for chunk id: its placement as this node's state
// has it, with the holders' addresses and a grant. ok is false if the
// chunk is not erasure-coded as far as this node knows (copies, inline
// chunks, a placement not applied here yet) or this node has no secret to
// grant with: the chunk is then sent whole.
func (n *Node) shardsFor(id chunkstore.ID) (m *wire.Shards, ok bool) {
	if n.grantKey == nil {
		return nil, false
	}
	var p Placement
	n.fsm.read(func(s *State) { p, ok = s.Placed(id) })
	if !ok || p.Data < 2 {
		return nil, false
	}
	m = &wire.Shards{ID: id, Size: p.Size, Data: p.Data, Parity: p.Parity, Expires: time.Now().Add(grantLife).UnixNano(), Holders: make([]string, len(p.Nodes))}
	m.Grant = [32]byte(n.grantMAC(m.ID, m.Data, m.Parity, m.Expires))
	for i, node := range p.Nodes {
		if node != "" {
			m.Holders[i] = n.nodeAddr(node)
		}
	}
	return m, true
}

// checkGrant checks the grant of a SHARD_REQUEST and returns the key of
// the shard it asks for.
func (n *Node) checkGrant(r *wire.ShardRequest) (chunkstore.ID, error) {
	scheme := chunkstore.Scheme{Data: int(r.Data), Parity: int(r.Parity)}
	id := chunkstore.ID(r.Chunk)
	switch {
	case n.grantKey == nil:
		return chunkstore.ID{}, fmt.Errorf("shard request for chunk %s: this node grants no reads (no cluster secret): %w", id, syscall.EPERM)
	case !hmac.Equal(r.Grant[:], n.grantMAC(r.Chunk, r.Data, r.Parity, r.Expires)):
		return chunkstore.ID{}, fmt.Errorf("shard request for chunk %s: grant not made by a member: %w", id, syscall.EPERM)
	case time.Now().UnixNano() > r.Expires:
		return chunkstore.ID{}, fmt.Errorf("shard request for chunk %s: grant expired %v ago: %w", id, time.Since(time.Unix(0, r.Expires)).Round(time.Millisecond), syscall.EACCES)
	case scheme.Validate() != nil || int(r.Index) >= scheme.Shards():
		return chunkstore.ID{}, fmt.Errorf("shard request for chunk %s: no shard %d in scheme %d+%d: %w", id, r.Index, r.Data, r.Parity, syscall.EINVAL)
	}
	return chunkstore.ShardKey(id, scheme, int(r.Index)), nil
}
