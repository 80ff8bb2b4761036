package cluster

// This file holds State's snapshot format.
//
// # Snapshot format, version 2
//
// All integers are unsigned LEB128 varints (encoding/binary's Uvarint)
// except times, which are zig-zag varints (binary.Varint). A string or byte
// string is its length as a varint, then its bytes. An id is 32 raw bytes.
//
//	magic     "SHOALFSM"
//	version   2 (1 is read too: it has no placements)
//	blocksize
//	next      the next inode number
//	ninodes, then per inode in increasing Ino order:
//	  ino mode nlink uid gid rdev size atime mtime ctime
//	  nxattr, then per xattr in name order: name value
//	  directories: nentries, then per entry in name order: name ino
//	  symlinks:    target
//	  regular:     nblocks, then per block in index order: index id len
//	ngarbage, then the garbage ids in increasing order
//	ndoomed,  then the doomed ids in increasing order
//	nplaced,  then per placed chunk in increasing id order:
//	  id size k m wantk wantm at nshards, then per shard: holder (a node
//	  id, "" if none); wantk+wantm is the scheme a directory asks for, 0+0
//	  if none
//	nclients, then per client in increasing order: client, nreplies, then
//	  per reply in increasing seq order: seq now answer (JSON MetaResponse)
//	"END"
//
// Reference counts, directory parents and the byte count are derived on
// load. LoadState checks every invariant of the state (each entry names a
// live inode, link counts match the names, every directory is reachable
// from the root, blocks fit their file...) and rejects a snapshot that
// breaks one.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"shoal/chunkstore"
)

// ErrStateFormat means a snapshot given to LoadState is not one that Save
// writes: a bad magic, an unknown version, truncated or inconsistent data.
var ErrStateFormat = errors.New("bad metadata state snapshot")

// stMaxNodeID bounds a node id in a snapshot's placements.
const stMaxNodeID = 1024

// stMaxReply bounds one remembered answer in a snapshot.
const stMaxReply = 64 << 20

const (
	stMagic   = "SHOALFSM"
	stVersion = 2
	stEnd     = "END"
)

// stEnc buffers a snapshot's bytes and flushes them in large writes.
type stEnc struct {
	w   io.Writer
	buf []byte
	err error
}

func (e *stEnc) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *stEnc) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *stEnc) str(v string)     { e.uvarint(uint64(len(v))); e.buf = append(e.buf, v...) }
func (e *stEnc) bytes(v []byte)   { e.uvarint(uint64(len(v))); e.buf = append(e.buf, v...) }
func (e *stEnc) id(v [32]byte)    { e.buf = append(e.buf, v[:]...) }

// flush writes the buffer out if it is large, or always if force.
func (e *stEnc) flush(force bool) {
	if e.err != nil || (!force && len(e.buf) < 64<<10) {
		return
	}
	_, e.err = e.w.Write(e.buf)
	e.buf = e.buf[:0]
}

// Save writes a snapshot of the whole state to w (format above). Equal
// states write equal bytes. Save does not change the state.
func (s *State) Save(w io.Writer) error {
	e := &stEnc{w: w, buf: make([]byte, 0, 128<<10)}
	e.buf = append(e.buf, stMagic...)
	e.uvarint(stVersion)
	e.uvarint(uint64(s.blockSize))
	e.uvarint(s.next)
	inos := slices.Sorted(maps.Keys(s.inodes))
	e.uvarint(uint64(len(inos)))
	for _, ino := range inos {
		n := s.inodes[ino]
		a := &n.attr
		e.uvarint(a.Ino)
		e.uvarint(uint64(a.Mode))
		e.uvarint(uint64(a.Nlink))
		e.uvarint(uint64(a.Uid))
		e.uvarint(uint64(a.Gid))
		e.uvarint(uint64(a.Rdev))
		e.uvarint(a.Size)
		e.varint(a.Atime)
		e.varint(a.Mtime)
		e.varint(a.Ctime)
		e.uvarint(uint64(len(n.xattrs)))
		if len(n.xattrs) > 0 {
			for _, name := range slices.Sorted(maps.Keys(n.xattrs)) {
				e.str(name)
				e.bytes(n.xattrs[name])
			}
		}
		switch a.Mode & stIFMT {
		case stIFDIR:
			e.uvarint(uint64(len(n.entries)))
			for _, name := range slices.Sorted(maps.Keys(n.entries)) {
				e.str(name)
				e.uvarint(n.entries[name])
				e.flush(false)
			}
		case stIFLNK:
			e.str(n.target)
		case stIFREG:
			e.uvarint(uint64(len(n.blocks)))
			for _, b := range n.blocks {
				e.uvarint(b.idx)
				e.id(b.id)
				e.uvarint(uint64(b.len))
				e.flush(false)
			}
		}
		e.flush(false)
	}
	for _, set := range []map[[32]byte]struct{}{s.garbage, s.doomed} {
		ids := stSortedIDs(set)
		e.uvarint(uint64(len(ids)))
		for _, id := range ids {
			e.id(id)
			e.flush(false)
		}
	}
	placed := slices.SortedFunc(maps.Keys(s.placed), func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	e.uvarint(uint64(len(placed)))
	for _, id := range placed {
		p := s.placed[id]
		e.id(id)
		e.uvarint(uint64(p.size))
		e.uvarint(uint64(p.scheme.Data))
		e.uvarint(uint64(p.scheme.Parity))
		e.uvarint(uint64(p.want.Data))
		e.uvarint(uint64(p.want.Parity))
		e.varint(p.at)
		e.uvarint(uint64(len(p.nodes)))
		for _, n := range p.nodes {
			e.str(n)
		}
		e.flush(false)
	}
	clients := slices.Sorted(maps.Keys(s.replies))
	e.uvarint(uint64(len(clients)))
	for _, client := range clients {
		c := s.replies[client]
		e.str(client)
		e.uvarint(uint64(len(c.bySeq)))
		err := c.each(func(seq uint64, rep stReply) error {
			resp, err := json.Marshal(rep.resp)
			if err != nil {
				return fmt.Errorf("save metadata state: answer %s/%d: %w", client, seq, err)
			}
			e.uvarint(seq)
			e.varint(rep.now)
			e.bytes(resp)
			e.flush(false)
			return nil
		})
		if err != nil {
			return err
		}
	}
	e.buf = append(e.buf, stEnd...)
	e.flush(true)
	if e.err != nil {
		return fmt.Errorf("save metadata state: %w", e.err)
	}
	return nil
}

// stDec reads a snapshot; the first error sticks.
type stDec struct {
	r   *bufio.Reader
	err error
}

func (d *stDec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrStateFormat, fmt.Sprintf(format, args...))
	}
}

func (d *stDec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail("read number: %v", err)
	}
	return v
}

// small reads a varint that must fit in 32 bits.
func (d *stDec) u32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail("number %d out of range", v)
		return 0
	}
	return uint32(v)
}

func (d *stDec) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	if err != nil {
		d.fail("read number: %v", err)
	}
	return v
}

// raw reads n bytes.
func (d *stDec) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail("read %d bytes: %v", n, err)
		return nil
	}
	return b
}

// bytes reads a byte string of at most max bytes.
func (d *stDec) bytes(max int) []byte {
	n := d.uvarint()
	if n > uint64(max) {
		d.fail("string of %d bytes, limit %d", n, max)
		return nil
	}
	return d.raw(int(n))
}

func (d *stDec) id() (id [32]byte) {
	copy(id[:], d.raw(32))
	return id
}

// count reads an element count; each element takes at least min bytes, so
// a count the remaining input could not hold is caught early by the reads.
func (d *stDec) count() int {
	n := d.uvarint()
	if n > 1<<40 {
		d.fail("count %d out of range", n)
		return 0
	}
	return int(n)
}

// LoadState reads a snapshot written by Save. Any other input, a different
// format version included, yields an error wrapping ErrStateFormat (or the
// reader's error); LoadState never panics and allocates in proportion to
// the input actually read.
func LoadState(r io.Reader) (*State, error) {
	d := &stDec{r: bufio.NewReaderSize(r, 64<<10)}
	if m := d.raw(len(stMagic)); d.err == nil && string(m) != stMagic {
		d.fail("bad magic %q", m)
	}
	version := d.uvarint()
	if d.err == nil && version != 1 && version != stVersion {
		d.fail("version %d, want 1 or %d", version, stVersion)
	}
	bs := d.u32()
	if d.err == nil && bs == 0 {
		d.fail("zero block size")
	}
	s := NewState(StateConfig{BlockSize: bs})
	delete(s.inodes, 1)
	s.next = d.uvarint()
	ninodes := d.count()
	prev := uint64(0)
	for i := 0; i < ninodes && d.err == nil; i++ {
		n := &stInode{}
		a := &n.attr
		a.Ino = d.uvarint()
		a.Mode = d.u32()
		a.Nlink = d.u32()
		a.Uid = d.u32()
		a.Gid = d.u32()
		a.Rdev = d.u32()
		a.Size = d.uvarint()
		a.Atime = d.varint()
		a.Mtime = d.varint()
		a.Ctime = d.varint()
		if d.err == nil && a.Ino <= prev {
			d.fail("inode %d out of order", a.Ino)
		}
		prev = a.Ino
		nx := d.count()
		last := ""
		for j := 0; j < nx && d.err == nil; j++ {
			name := string(d.bytes(stMaxXattrName))
			v := d.bytes(stMaxXattrValue)
			if d.err == nil && (name == "" || (j > 0 && name <= last)) {
				d.fail("inode %d: bad xattr name %q", a.Ino, name)
			}
			last = name
			if n.xattrs == nil {
				n.xattrs = make(map[string][]byte)
			}
			n.xattrs[name] = v
		}
		switch a.Mode & stIFMT {
		case stIFDIR:
			ne := d.count()
			n.entries = make(map[string]uint64)
			for j := 0; j < ne && d.err == nil; j++ {
				name := string(d.bytes(stMaxName))
				ino := d.uvarint()
				if d.err == nil && j > 0 && name <= last {
					d.fail("dir %d: entry %q out of order", a.Ino, name)
				}
				last = name
				n.entries[name] = ino
			}
		case stIFLNK:
			n.target = string(d.bytes(stMaxSymlink))
		case stIFREG:
			nb := d.count()
			for j := 0; j < nb && d.err == nil; j++ {
				idx := d.uvarint()
				id := d.id()
				l := d.u32()
				if j > 0 && idx <= n.blocks[j-1].idx && d.err == nil {
					d.fail("inode %d: block %d out of order", a.Ino, idx)
				}
				n.blocks = append(n.blocks, stBlock{idx: idx, id: id, len: l})
				s.refs[id]++
			}
			s.bytes += a.Size
		}
		s.inodes[a.Ino] = n
	}
	for _, set := range []map[[32]byte]struct{}{s.garbage, s.doomed} {
		c := d.count()
		for j := 0; j < c && d.err == nil; j++ {
			set[d.id()] = struct{}{}
		}
	}
	if version >= 2 {
		np := d.count()
		for j := 0; j < np && d.err == nil; j++ {
			p := Placement{ID: d.id()}
			size := d.u32()
			k, m := d.u32(), d.u32()
			wk, wm := d.u32(), d.u32()
			want := chunkstore.Scheme{Data: int(wk), Parity: int(wm)}
			if d.err == nil && (wk > 255 || wm > 255 || (wk != 0 || wm != 0) && want.Validate() != nil) {
				d.fail("placement %x: bad wanted scheme %d+%d", p.ID[:8], wk, wm)
			}
			at := d.varint()
			ns := d.count()
			if d.err == nil && (k > 255 || m > 255 || ns != int(k+m)) {
				d.fail("placement %x: bad scheme %d+%d of %d shards", p.ID[:8], k, m, ns)
			}
			for x := 0; x < ns && d.err == nil; x++ {
				p.Nodes = append(p.Nodes, string(d.bytes(stMaxNodeID)))
			}
			p.Size, p.Data, p.Parity = size, uint8(k), uint8(m)
			if d.err == nil && !checkPlacement(&p) {
				d.fail("placement %x: bad placement", p.ID[:8])
			}
			if d.err == nil && s.placed[p.ID] != nil {
				d.fail("placement %x twice", p.ID[:8])
			}
			if d.err == nil {
				s.placed[p.ID] = &stPlace{size: p.Size, scheme: chunkstore.Scheme{Data: int(k), Parity: int(m)}, nodes: p.Nodes, at: at, want: want}
			}
		}
	}
	if version >= 2 {
		nc := d.count()
		lastClient := ""
		for j := 0; j < nc && d.err == nil; j++ {
			client := string(d.bytes(stMaxClientID))
			if d.err == nil && (client == "" || (j > 0 && client <= lastClient)) {
				d.fail("reply client %q out of order", client)
			}
			lastClient = client
			nr := d.count()
			var lastSeq uint64
			for x := 0; x < nr && d.err == nil; x++ {
				seq := d.uvarint()
				now := d.varint()
				raw := d.bytes(stMaxReply)
				if d.err == nil && x > 0 && seq <= lastSeq {
					d.fail("client %q: reply %d out of order", client, seq)
				}
				lastSeq = seq
				var resp MetaResponse
				if d.err == nil {
					if err := json.Unmarshal(raw, &resp); err != nil {
						d.fail("client %q: reply %d: %v", client, seq, err)
					}
				}
				if d.err == nil {
					s.replies.add(client, seq, stReply{now: now, resp: &resp})
				}
			}
		}
	}
	if end := d.raw(len(stEnd)); d.err == nil && string(end) != stEnd {
		d.fail("bad end marker")
	}
	if d.err != nil {
		return nil, fmt.Errorf("load metadata state: %w", d.err)
	}
	for _, n := range s.inodes {
		for _, ino := range n.entries {
			if c := s.inodes[ino]; c != nil && c.isDir() {
				c.parent = n.attr.Ino
			}
		}
	}
	if root := s.inodes[1]; root != nil {
		root.parent = 1
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("load metadata state: %w: %v", ErrStateFormat, err)
	}
	return s, nil
}

// check verifies the state's invariants and returns an error naming the
// first one broken (in a deterministic order).
func (s *State) check() error {
	root := s.inodes[1]
	if root == nil || !root.isDir() || root.parent != 1 {
		return errors.New("no root directory")
	}
	if s.blockSize == 0 {
		return errors.New("zero block size")
	}
	inos := slices.Sorted(maps.Keys(s.inodes))
	names := make(map[uint64]uint32, len(inos)) // inode → names pointing at it
	subdirs := make(map[uint64]uint32)
	refs := make(map[[32]byte]uint64)
	var bytes uint64
	bs := uint64(s.blockSize)
	for _, ino := range inos {
		n := s.inodes[ino]
		a := &n.attr
		if a.Ino != ino || ino == 0 || ino >= s.next {
			return fmt.Errorf("inode %d: bad number (next %d)", ino, s.next)
		}
		for name, v := range n.xattrs {
			if name == "" || len(name) > stMaxXattrName || len(v) > stMaxXattrValue {
				return fmt.Errorf("inode %d: bad xattr %q", ino, name)
			}
		}
		t := a.Mode & stIFMT
		if a.Mode&^(stIFMT|stPerm) != 0 {
			return fmt.Errorf("inode %d: bad mode %o", ino, a.Mode)
		}
		if t != stIFDIR && n.entries != nil || t != stIFREG && n.blocks != nil || t != stIFLNK && n.target != "" {
			return fmt.Errorf("inode %d: fields of another file type", ino)
		}
		switch t {
		case stIFDIR:
			for _, name := range slices.Sorted(maps.Keys(n.entries)) {
				c := n.entries[name]
				if stCheckName(name) != 0 {
					return fmt.Errorf("dir %d: bad name %q", ino, name)
				}
				cn := s.inodes[c]
				if cn == nil {
					return fmt.Errorf("dir %d: entry %q names missing inode %d", ino, name, c)
				}
				names[c]++
				if cn.isDir() {
					subdirs[ino]++
					if cn.parent != ino {
						return fmt.Errorf("dir %d: parent of %d is %d", ino, c, cn.parent)
					}
				}
			}
		case stIFLNK:
			if n.target == "" || len(n.target) > stMaxSymlink || a.Size != uint64(len(n.target)) {
				return fmt.Errorf("symlink %d: bad target", ino)
			}
		case stIFREG:
			bytes += a.Size
			for i, b := range n.blocks {
				idx := b.idx
				if i > 0 && idx <= n.blocks[i-1].idx {
					return fmt.Errorf("file %d: blocks out of order", ino)
				}
				if b.id == ([32]byte{}) || b.len == 0 || uint64(b.len) > bs ||
					idx > (1<<64-1-uint64(b.len))/bs || idx*bs+uint64(b.len) > a.Size {
					return fmt.Errorf("file %d: bad block %d", ino, idx)
				}
				refs[b.id]++
			}
		case stIFIFO, stIFSOCK, stIFCHR, stIFBLK:
		default:
			return fmt.Errorf("inode %d: bad file type %o", ino, t)
		}
	}
	for _, ino := range inos {
		n := s.inodes[ino]
		if n.isDir() {
			want := names[ino]
			if ino == 1 {
				want++
			}
			if want != 1 || n.attr.Nlink != 2+subdirs[ino] {
				return fmt.Errorf("dir %d: %d names, nlink %d with %d subdirs", ino, names[ino], n.attr.Nlink, subdirs[ino])
			}
		} else if n.attr.Nlink != names[ino] {
			return fmt.Errorf("inode %d: nlink %d, %d names", ino, n.attr.Nlink, names[ino])
		}
	}
	// Every directory is reachable from the root (no detached cycles).
	seen, queue := 1, []uint64{1}
	for len(queue) > 0 {
		d := s.inodes[queue[0]]
		queue = queue[1:]
		for _, c := range d.entries {
			if s.inodes[c].isDir() {
				seen++
				queue = append(queue, c)
			}
		}
	}
	dirs := 0
	for _, n := range s.inodes {
		if n.isDir() {
			dirs++
		}
	}
	if seen != dirs {
		return fmt.Errorf("%d of %d directories unreachable", dirs-seen, dirs)
	}
	if !maps.Equal(refs, s.refs) {
		return errors.New("reference counts differ from the blocks")
	}
	if bytes != s.bytes {
		return fmt.Errorf("byte count %d, files hold %d", s.bytes, bytes)
	}
	for _, id := range stSortedIDs(s.garbage) {
		if _, ok := s.doomed[id]; ok || refs[id] > 0 {
			return fmt.Errorf("garbage chunk %x is referenced or doomed", id[:8])
		}
	}
	for _, id := range stSortedIDs(s.doomed) {
		if refs[id] > 0 {
			return fmt.Errorf("doomed chunk %x is referenced", id[:8])
		}
	}
	return nil
}
