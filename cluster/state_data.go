package cluster

// This file holds the data side of State: file layouts, commits, truncation,
// orphans and chunk reference counting for the garbage collector.

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"syscall"

	"shoal/wire"
)

// incref counts one more block referencing chunk id.
func (s *State) incref(id [32]byte) {
	if s.refs[id] == 0 {
		delete(s.garbage, id)
	}
	s.refs[id]++
}

// decref counts one block fewer referencing chunk id; at zero the chunk
// becomes garbage.
func (s *State) decref(id [32]byte) {
	c := s.refs[id]
	if c <= 1 {
		delete(s.refs, id)
		if _, doomed := s.doomed[id]; !doomed {
			s.garbage[id] = struct{}{}
		}
		return
	}
	s.refs[id] = c - 1
}

// truncate sets regular file n's size, dropping the blocks wholly past it
// and trimming the block that holds the new end.
func (s *State) truncate(n *stInode, size uint64) {
	if size < n.attr.Size {
		bs := uint64(s.blockSize)
		// Blocks from index k on start at or past size.
		k := sort.Search(len(n.blocks), func(i int) bool { return n.blocks[i].idx*bs >= size })
		for _, b := range n.blocks[k:] {
			s.decref(b.id)
		}
		clear(n.blocks[k:])
		n.blocks = n.blocks[:k]
		if k > 0 {
			// No overflow: every block ends by the old size.
			if b := &n.blocks[k-1]; b.idx*bs+uint64(b.len) > size {
				b.len = uint32(size - b.idx*bs)
			}
		}
		if len(n.blocks) == 0 {
			n.blocks = nil
		}
	}
	s.bytes = s.bytes - n.attr.Size + size
	n.attr.Size = size
}

// setBlock puts b in n's blocks, or removes block b.idx if b.id is zero,
// keeping the reference counts.
func (s *State) setBlock(n *stInode, b stBlock) {
	i, found := sort.Find(len(n.blocks), func(i int) int { return cmp.Compare(b.idx, n.blocks[i].idx) })
	zero := b.id == ([32]byte{})
	if !zero {
		s.incref(b.id)
	}
	switch {
	case found:
		s.decref(n.blocks[i].id)
		if zero {
			n.blocks = slices.Delete(n.blocks, i, i+1)
		} else {
			n.blocks[i] = b
		}
	case !zero:
		n.blocks = slices.Insert(n.blocks, i, b)
	}
	if len(n.blocks) == 0 {
		n.blocks = nil
	}
}

// regular returns regular file ino, or ENOENT, EISDIR or EINVAL.
func (s *State) regular(ino uint64) (*stInode, syscall.Errno) {
	n, e := s.inode(ino)
	switch {
	case e != 0:
		return nil, e
	case n.isDir():
		return nil, syscall.EISDIR
	case !n.isReg():
		return nil, syscall.EINVAL
	}
	return n, 0
}

func (s *State) layout(req *MetaRequest) *MetaResponse {
	n, e := s.regular(req.Ino)
	if e != 0 {
		return stErr(e, "layout")
	}
	l := Layout{Size: n.attr.Size, BlockSize: s.blockSize}
	if len(n.blocks) > 0 {
		l.Blocks = make([]Block, len(n.blocks))
		for i, b := range n.blocks {
			l.Blocks[i] = Block{Index: b.idx, ID: b.id, Len: b.len}
		}
	}
	return &MetaResponse{Layout: l}
}

// stCommitAttrs are the MetaRequest.Valid bits a commit may carry: the
// attribute changes made to a file while it had unsaved writes, which the
// client folds into the commit instead of sending each on its own. SetMtime
// says Mtime was set explicitly (utimens) after the last write.
const stCommitAttrs = wire.SetMode | wire.SetUid | wire.SetGid | wire.SetAtime | wire.SetMtime

func (s *State) commit(req *MetaRequest) *MetaResponse {
	if req.Create != nil {
		return s.createAndCommit(req)
	}
	n, e := s.regular(req.Ino)
	if e != 0 {
		return stErr(e, "commit")
	}
	if r := s.checkCommit(req); r != nil {
		return r
	}
	return s.applyCommit(n, req)
}

// createAndCommit applies a commit that carries the create of its file
// (MetaRequest.Create): both or neither.
func (s *State) createAndCommit(req *MetaRequest) *MetaResponse {
	c := *req.Create
	if c.Op != wire.OpCreate || c.NewIno == 0 || c.NewIno != req.Ino || c.Create != nil {
		return stErr(syscall.EINVAL, "commit: bad embedded create")
	}
	if r := s.checkCommit(req); r != nil {
		return r
	}
	if c.Now == 0 {
		c.Now = req.Now // else the time the client created the file
	}
	r := s.create(&c)
	if r.Errno != 0 {
		return r
	}
	// The new file is an empty regular file: the commit cannot fail now.
	resp := s.applyCommit(s.inodes[req.Ino], req)
	resp.Dir, resp.DirBefore = r.Dir, r.DirBefore
	return resp
}

// checkCommit returns a failure response if commit req cannot be applied
// to a regular file, else nil. It changes nothing.
func (s *State) checkCommit(req *MetaRequest) *MetaResponse {
	if req.Valid&^stCommitAttrs != 0 {
		return stErr(syscall.EINVAL, "commit: bad attribute bits")
	}
	bs := uint64(s.blockSize)
	for _, b := range req.Blocks {
		if b.ID == ([32]byte{}) {
			continue
		}
		l := uint64(b.Len)
		switch {
		case l == 0 || l > bs:
			return stErr(syscall.EINVAL, "commit: bad block length")
		case b.Index > (math.MaxUint64-l)/bs || b.Index*bs+l > req.Size:
			return stErr(syscall.EINVAL, "commit: block past the file size")
		}
	}
	for _, b := range req.Blocks {
		if _, doomed := s.doomed[b.ID]; doomed && b.Data == nil {
			return stErr(syscall.EAGAIN, "commit: chunk is being collected")
		}
		if s.requirePlaced && b.Data == nil && b.ID != ([32]byte{}) && s.placed[b.ID] == nil {
			return stErr(syscall.EAGAIN, "commit: chunk is not stored")
		}
	}
	return nil
}

// applyCommit applies commit req, checked by checkCommit, to regular file n.
func (s *State) applyCommit(n *stInode, req *MetaRequest) *MetaResponse {
	s.wantSchemes(req)
	for _, b := range req.Blocks {
		if _, doomed := s.doomed[b.ID]; doomed && b.Data != nil {
			s.revive(b.ID)
		}
		s.setBlock(n, stBlock{idx: b.Index, id: b.ID, len: b.Len})
	}
	// Blocks kept from before end by the old size and new ones by the new
	// size, so truncating to the new size restores the invariant that every
	// block ends by the size.
	s.truncate(n, req.Size)
	t := req.Mtime
	if t == 0 {
		t = req.Now
	}
	n.attr.Mtime = t
	n.attr.Ctime = t
	if v := req.Valid; v != 0 {
		n.setModeOwner(req)
		if v&wire.SetAtime != 0 {
			n.attr.Atime = req.Atime
		}
		// The attributes changed after the last write, so now.
		n.attr.Ctime = max(t, req.Now)
	}
	return &MetaResponse{Attr: n.attr}
}

func (s *State) drop(req *MetaRequest) *MetaResponse {
	n, e := s.inode(req.Ino)
	if e != 0 {
		return stErr(e, "drop")
	}
	if n.attr.Nlink == 0 && !n.isDir() {
		s.free(n)
	}
	return &MetaResponse{}
}

func (s *State) gcMark(req *MetaRequest) *MetaResponse {
	set := make(map[[32]byte]struct{})
	for _, id := range req.Chunks {
		if id == ([32]byte{}) || s.refs[id] > 0 {
			continue
		}
		delete(s.garbage, id)
		s.doomed[id] = struct{}{}
		set[id] = struct{}{}
	}
	resp := &MetaResponse{}
	if len(set) > 0 {
		resp.Chunks = stSortedIDs(set)
		for _, id := range resp.Chunks {
			if p := s.placed[id]; p != nil {
				resp.Places = append(resp.Places, p.placement(id))
			}
		}
	}
	return resp
}

// revive takes doomed chunk id back from the collector because a commit
// carries it inline. Every replica stores the commit's inline chunks as it
// applies it, after the collector's deletion of older copies or with a
// newer write time that the deletion spares (chunkstore.Disk.Delete), so
// the chunk is kept as an inline chunk; its placement, whose shards the
// collector may be deleting, is forgotten.
func (s *State) revive(id [32]byte) {
	delete(s.doomed, id)
	delete(s.placed, id)
}

// gcDone forgets the doomed chunks named, and their placements: they are
// deleted from the nodes.
func (s *State) gcDone(req *MetaRequest) *MetaResponse {
	for _, id := range req.Chunks {
		if _, doomed := s.doomed[id]; doomed {
			delete(s.doomed, id)
			delete(s.placed, id)
		}
	}
	return &MetaResponse{}
}
