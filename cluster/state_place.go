package cluster

// This file holds the placement side of State: which nodes hold the shards
// of each erasure-coded chunk (wire.Placement). A node that stores a chunk
// pushed to it records the chunk's placement with OpPlace before it
// acknowledges the push; a commit may name only chunks that are placed (or
// that it carries inline), so a chunk the collector removed is pushed
// again, never assumed. Repair and scrub change placements with OpPlace
// and OpDisplace; OpGCDone forgets the placement of a collected chunk.

import (
	"slices"
	"syscall"

	"shoal/chunkstore"
	"shoal/wire"
)

// Placement says where the shards of one chunk live (see wire.Placement).
type Placement = wire.Placement

// stPlace is a chunk's placement in the state.
type stPlace struct {
	size   uint32
	scheme chunkstore.Scheme
	nodes  []string // holder of each shard, "" if none
	at     int64    // when it was first placed (req.Now), for the collector
}

// placement returns p as a wire.Placement for chunk id.
func (p *stPlace) placement(id [32]byte) Placement {
	return Placement{ID: id, Size: p.size, Data: uint8(p.scheme.Data), Parity: uint8(p.scheme.Parity), Nodes: slices.Clone(p.nodes)}
}

// checkPlacement reports whether p is well formed: a valid scheme whose
// shards fit in bytes (at most 255), one entry per shard, no node twice.
func checkPlacement(p *Placement) bool {
	s := chunkstore.Scheme{Data: int(p.Data), Parity: int(p.Parity)}
	if s.Validate() != nil || s.Shards() > 255 || len(p.Nodes) != s.Shards() || p.Size > chunkstore.MaxChunkSize {
		return false
	}
	for i, n := range p.Nodes {
		if n != "" && slices.Contains(p.Nodes[:i], n) {
			return false
		}
	}
	return true
}

// place applies OpPlace: for each placement, a new chunk is recorded as
// given; a placed chunk with the same scheme gets each slot the request
// names a holder for (the other slots keep theirs); a placed chunk with
// another scheme is replaced only if it has too few holders to be read.
// A doomed chunk cannot be placed until it is collected: the whole request
// then fails with EAGAIN and changes nothing.
func (s *State) place(req *MetaRequest) *MetaResponse {
	for i := range req.Places {
		p := &req.Places[i]
		if !checkPlacement(p) {
			return stErr(syscall.EINVAL, "place: bad placement")
		}
		if _, doomed := s.doomed[p.ID]; doomed {
			return stErr(syscall.EAGAIN, "place: chunk is being collected")
		}
	}
	for i := range req.Places {
		p := &req.Places[i]
		scheme := chunkstore.Scheme{Data: int(p.Data), Parity: int(p.Parity)}
		cur := s.placed[p.ID]
		if cur != nil && cur.scheme == scheme {
			for j, n := range p.Nodes {
				if n == "" {
					continue
				}
				// A node holds at most one shard of a chunk: a slot it
				// takes over from elsewhere is cleared there.
				if k := slices.Index(cur.nodes, n); k >= 0 {
					cur.nodes[k] = ""
				}
				cur.nodes[j] = n
			}
			continue
		}
		if cur != nil && holders(cur.nodes) >= cur.scheme.Data {
			continue
		}
		s.placed[p.ID] = &stPlace{size: p.Size, scheme: scheme, nodes: slices.Clone(p.Nodes), at: req.Now}
	}
	return &MetaResponse{}
}

// displace applies OpDisplace: each slot whose holder the request names is
// cleared if that node still holds it. Unknown chunks are skipped.
func (s *State) displace(req *MetaRequest) *MetaResponse {
	for i := range req.Places {
		p := &req.Places[i]
		cur := s.placed[p.ID]
		if cur == nil || len(p.Nodes) != len(cur.nodes) {
			continue
		}
		for j, n := range p.Nodes {
			if n != "" && cur.nodes[j] == n {
				cur.nodes[j] = ""
			}
		}
	}
	return &MetaResponse{}
}

// locate answers OpLocate: the placements of the chunks asked for that are
// placed and not doomed.
func (s *State) locate(req *MetaRequest) *MetaResponse {
	resp := &MetaResponse{}
	for _, id := range req.Chunks {
		if p, ok := s.Placed(id); ok {
			resp.Places = append(resp.Places, p)
		}
	}
	return resp
}

// Placed returns the placement of chunk id, if it is placed and not doomed.
func (s *State) Placed(id [32]byte) (Placement, bool) {
	p := s.placed[id]
	if p == nil {
		return Placement{}, false
	}
	if _, doomed := s.doomed[id]; doomed {
		return Placement{}, false
	}
	return p.placement(id), true
}

// EachPlaced calls fn with the placement of every placed chunk, doomed ones
// included, in no particular order, until fn returns false. fn must not
// keep p.Nodes past its call.
func (s *State) EachPlaced(fn func(p Placement, doomed bool) bool) {
	for id, p := range s.placed {
		_, doomed := s.doomed[id]
		if !fn(Placement{ID: id, Size: p.size, Data: uint8(p.scheme.Data), Parity: uint8(p.scheme.Parity), Nodes: p.nodes}, doomed) {
			return
		}
	}
}

// IsReferenced reports whether a block of a file (orphans included) names
// chunk id, or the collector has it doomed and not yet collected: its
// copies must be kept.
func (s *State) IsReferenced(id [32]byte) bool {
	_, doomed := s.doomed[id]
	return s.refs[id] > 0 || doomed
}

// holders counts the non-empty entries of nodes.
func holders(nodes []string) int {
	n := 0
	for _, h := range nodes {
		if h != "" {
			n++
		}
	}
	return n
}
