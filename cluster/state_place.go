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
	nodes  []string          // holder of each shard, "" if none
	at     int64             // when it was first placed (req.Now), for the collector
	want   chunkstore.Scheme // the scheme a directory asks for (SchemeXattr); zero: the cluster's
}

// SchemeXattr is the extended attribute that sets the erasure scheme
// ("k+m", e.g. "4+2") of the files committed below a directory; on the root
// directory it sets the cluster's. Repair re-encodes chunks written with
// another scheme.
const SchemeXattr = "user.shoal.ec"

// parseScheme parses a SchemeXattr value.
func parseScheme(v []byte) (chunkstore.Scheme, error) {
	return chunkstore.ParseScheme(string(v))
}

// SchemeOf returns the scheme SchemeXattr sets for files in directory dir:
// that of dir or of its nearest ancestor that has one. ok is false if
// none does (or dir is not a directory).
func (s *State) SchemeOf(dir uint64) (scheme chunkstore.Scheme, ok bool) {
	for range 4096 { // deeper than any path can be; a guard, not a limit
		n := s.inodes[dir]
		if n == nil || !n.isDir() {
			return chunkstore.Scheme{}, false
		}
		if v, has := n.xattrs[SchemeXattr]; has {
			if sc, err := parseScheme(v); err == nil {
				return sc, true
			}
		}
		if dir == wire.RootIno {
			break
		}
		dir = n.parent
	}
	return chunkstore.Scheme{}, false
}

// wantSchemes records, for the placed chunks a commit names, the scheme
// the commit's directory asks for (SchemeXattr; a commit carries its
// file's directory in NewParent, or in the create it carries).
func (s *State) wantSchemes(req *MetaRequest) {
	dir := req.NewParent
	if req.Create != nil {
		dir = req.Create.Ino
	}
	want, _ := s.SchemeOf(dir)
	for _, b := range req.Blocks {
		if p := s.placed[b.ID]; p != nil && b.Data == nil {
			p.want = want
		}
	}
}

// Recodable returns the chunks among blocks (those pushed, not inline)
// whose placement has another scheme than the one their directory asks
// for (SchemeXattr): those a commit leaves for the leader to re-encode.
func (s *State) Recodable(blocks []Block) [][32]byte {
	var ids [][32]byte
	for _, b := range blocks {
		p := s.placed[b.ID]
		if p == nil || b.Data != nil || p.want.Data == 0 {
			continue
		}
		if fitScheme(p.want, int(p.size)) != p.scheme && !slices.Contains(ids, [32]byte(b.ID)) {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// placement returns p as a wire.Placement for chunk id.
func (p *stPlace) placement(id [32]byte) Placement {
	return Placement{ID: id, Size: p.size, Data: uint8(p.scheme.Data), Parity: uint8(p.scheme.Parity), Nodes: slices.Clone(p.nodes),
		WantData: uint8(p.want.Data), WantParity: uint8(p.want.Parity)}
}

// checkPlacement reports whether p is well formed: a valid scheme whose
// shards fit in bytes (at most 255), one entry per shard, no node twice.
func checkPlacement(p *Placement) bool {
	s := placedScheme(p)
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
// another scheme is replaced if the request says PlaceReplace (repair
// re-encoded it) or if it has too few holders to be read.
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
		scheme := placedScheme(p)
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
		if cur != nil {
			if req.Flags&wire.PlaceReplace == 0 && holders(cur.nodes) >= cur.scheme.Data {
				continue
			}
			cur.size, cur.scheme, cur.nodes = p.Size, scheme, slices.Clone(p.Nodes)
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
		if !fn(Placement{ID: id, Size: p.size, Data: uint8(p.scheme.Data), Parity: uint8(p.scheme.Parity), Nodes: p.nodes,
			WantData: uint8(p.want.Data), WantParity: uint8(p.want.Parity)}, doomed) {
			return
		}
	}
}

// InlineChunks returns the chunks files reference that are not placed and
// not being collected: those that travelled inline in commits, of which
// every node keeps a copy.
func (s *State) InlineChunks() [][32]byte {
	var ids [][32]byte
	for id := range s.refs {
		if id == ([32]byte{}) {
			continue
		}
		if _, placed := s.placed[id]; placed {
			continue
		}
		if _, doomed := s.doomed[id]; doomed {
			continue
		}
		ids = append(ids, id)
	}
	return ids
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
