package cluster

// This file holds the metadata state machine: the namespace that the Raft
// log's commands are applied to. It knows nothing of Raft, clocks or the
// network; the same sequence of requests applied to two States leaves them
// identical (byte for byte in Save's output).

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"syscall"

	"shoal/wire"
)

// DefaultBlockSize is the file block size a State uses when its StateConfig
// leaves BlockSize zero: 4 MiB.
const DefaultBlockSize = 4 << 20

// Limits the State enforces, as Linux does.
const (
	stMaxName       = 255   // bytes in a file name (NAME_MAX)
	stMaxSymlink    = 4095  // bytes in a symlink target (PATH_MAX - 1)
	stMaxXattrName  = 255   // bytes in an xattr name (XATTR_NAME_MAX)
	stMaxXattrValue = 65536 // bytes in an xattr value (XATTR_SIZE_MAX)
	stMaxNlink      = 1<<32 - 1
)

// File type bits of Attr.Mode, as in stat(2).
const (
	stIFMT   = 0o170000
	stIFSOCK = 0o140000
	stIFLNK  = 0o120000
	stIFREG  = 0o100000
	stIFBLK  = 0o060000
	stIFDIR  = 0o040000
	stIFCHR  = 0o020000
	stIFIFO  = 0o010000
	stPerm   = 0o7777
)

// StateConfig configures a State. It is part of the state: a snapshot
// records it.
type StateConfig struct {
	// BlockSize is the size in bytes of a file block (see wire.Block);
	// zero means DefaultBlockSize.
	BlockSize uint32
	// RequirePlaced makes a commit fail with EAGAIN unless every chunk it
	// names is placed (OpPlace) or carried inline: nodes set it, so that a
	// file never names a chunk no node stores. It is not part of a
	// snapshot; every replica must be configured alike.
	RequirePlaced bool
}

// State is the file system's namespace as the metadata Raft group holds it:
// inodes, directory entries, file block layouts, xattrs and chunk reference
// counts. Apply changes it deterministically: the result depends only on the
// state and the request (times come from req.Now), never on a clock,
// randomness or map order. A State is not safe for concurrent use; Local and
// the Raft FSM guard it with a lock.
//
// Reference counting: every block of every inode (orphans included) holding
// a chunk counts one reference to it. A chunk whose count drops to zero is
// garbage (see Garbage) until the collector dooms it with OpGCMark; a commit
// naming a doomed chunk fails with EAGAIN, and OpGCDone forgets doomed
// chunks once they are deleted from disk.
type State struct {
	blockSize uint32
	next      uint64 // the next inode number to hand out
	inodes    map[uint64]*stInode
	refs      map[[32]byte]uint64 // chunk → number of blocks naming it (> 0)
	garbage   map[[32]byte]struct{}
	doomed    map[[32]byte]struct{}
	placed    map[[32]byte]*stPlace // chunk → where its shards are (state_place.go)
	replies   stReplies             // recent answers by client and sequence number
	bytes     uint64                // sum of the sizes of regular files

	requirePlaced bool // StateConfig.RequirePlaced
}

// stInode is one inode. Exactly the fields for its type are set.
type stInode struct {
	attr    Attr
	parent  uint64            // directories: the directory holding it (root: itself)
	target  string            // symlinks
	entries map[string]uint64 // directories: name → inode
	blocks  []stBlock         // regular files: blocks present, sorted by index
	xattrs  map[string][]byte
}

// stBlock is block idx of a regular file: the first len bytes of chunk id.
type stBlock struct {
	idx uint64
	id  [32]byte
	len uint32
}

func (n *stInode) isDir() bool { return n.attr.Mode&stIFMT == stIFDIR }
func (n *stInode) isReg() bool { return n.attr.Mode&stIFMT == stIFREG }

// NewState returns a State holding only the root directory (inode RootIno,
// mode S_IFDIR|0755, nlink 2, owned by uid and gid 0, all times zero).
func NewState(cfg StateConfig) *State {
	bs := cfg.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	s := &State{
		blockSize: bs,
		next:      wire.RootIno + 1,
		inodes:    make(map[uint64]*stInode),
		refs:      make(map[[32]byte]uint64),
		garbage:   make(map[[32]byte]struct{}),
		doomed:    make(map[[32]byte]struct{}),
		placed:    make(map[[32]byte]*stPlace),
		replies:   stReplies{},

		requirePlaced: cfg.RequirePlaced,
	}
	s.inodes[wire.RootIno] = &stInode{
		attr:    Attr{Ino: wire.RootIno, Mode: stIFDIR | 0o755, Nlink: 2},
		parent:  wire.RootIno,
		entries: make(map[string]uint64),
	}
	return s
}

// BlockSize returns the state's file block size in bytes.
func (s *State) BlockSize() uint32 { return s.blockSize }

// IsReadOnly reports whether op only reads the state: Lookup, GetAttr,
// ReadDir, Readlink, GetXattr, ListXattr, Layout, Statfs and Locate. Such requests
// may be served by Read without going through the Raft log.
func IsReadOnly(op MetaOp) bool {
	switch op {
	case wire.OpLookup, wire.OpGetAttr, wire.OpReadDir, wire.OpReadlink,
		wire.OpGetXattr, wire.OpListXattr, wire.OpLayout, wire.OpStatfs, wire.OpLocate:
		return true
	}
	return false
}

// Apply performs req on the state and returns the response; it never
// panics, whatever the request. Failures come back as a response with Errno
// set (ENOENT, EEXIST, EINVAL for a malformed request, ENOSYS for an unknown
// op...), and a failed request changes nothing. Read-only ops are answered as
// Read answers them. Apply does not keep req or its slices.
//
// A request that names its client and sequence number (MetaRequest.Client,
// Seq) is applied at most once: applied again (a retry after a lost
// answer) it gets the first answer back and changes nothing
// (state_replies.go).
func (s *State) Apply(req *MetaRequest) *MetaResponse {
	if req == nil {
		return stErr(syscall.EINVAL, "nil request")
	}
	if IsReadOnly(req.Op) {
		return s.Read(req)
	}
	if req.Client == "" {
		return s.apply(req)
	}
	if resp, ok := s.replies.lookup(req); ok {
		return resp
	}
	resp := s.apply(req)
	s.replies.record(req, resp)
	return resp
}

// apply performs a mutating request (see Apply).
func (s *State) apply(req *MetaRequest) *MetaResponse {
	switch req.Op {
	case wire.OpSetAttr:
		return s.setAttr(req)
	case wire.OpCreate:
		return s.create(req)
	case wire.OpMkdir:
		return s.mkdir(req)
	case wire.OpSymlink:
		return s.symlink(req)
	case wire.OpLink:
		return s.link(req)
	case wire.OpUnlink:
		return s.unlink(req)
	case wire.OpRmdir:
		return s.rmdir(req)
	case wire.OpRename:
		return s.rename(req)
	case wire.OpSetXattr:
		return s.setXattr(req)
	case wire.OpRemoveXattr:
		return s.removeXattr(req)
	case wire.OpCommit:
		return s.commit(req)
	case wire.OpDrop:
		return s.drop(req)
	case wire.OpGCMark:
		return s.gcMark(req)
	case wire.OpGCDone:
		return s.gcDone(req)
	case wire.OpAllocInodes:
		return s.allocInodes(req)
	case wire.OpPlace:
		return s.place(req)
	case wire.OpDisplace:
		return s.displace(req)
	case wire.OpInvalid:
		return stErr(syscall.EINVAL, "invalid op")
	}
	return stErr(syscall.ENOSYS, "unknown op")
}

// Read answers a read-only request (see IsReadOnly) without changing the
// state, so callers may run Reads concurrently with each other (not with
// Apply). A mutating op gets EINVAL. The response shares no memory with the
// state.
func (s *State) Read(req *MetaRequest) *MetaResponse {
	if req == nil {
		return stErr(syscall.EINVAL, "nil request")
	}
	switch req.Op {
	case wire.OpLookup:
		return s.lookup(req)
	case wire.OpGetAttr:
		n, e := s.inode(req.Ino)
		if e != 0 {
			return stErr(e, "no such inode")
		}
		return &MetaResponse{Attr: n.attr}
	case wire.OpReadDir:
		return s.readDir(req)
	case wire.OpReadlink:
		n, e := s.inode(req.Ino)
		if e != 0 {
			return stErr(e, "no such inode")
		}
		if n.attr.Mode&stIFMT != stIFLNK {
			return stErr(syscall.EINVAL, "not a symlink")
		}
		return &MetaResponse{Target: Name(n.target)}
	case wire.OpGetXattr:
		return s.getXattr(req)
	case wire.OpListXattr:
		return s.listXattr(req)
	case wire.OpLayout:
		return s.layout(req)
	case wire.OpLocate:
		return s.locate(req)
	case wire.OpStatfs:
		return &MetaResponse{Statfs: Statfs{Files: uint64(len(s.inodes)), Namelen: stMaxName}}
	}
	return stErr(syscall.EINVAL, "not a read-only op")
}

// Garbage returns the chunks no block references that are not doomed,
// sorted: those that blocks stopped referencing, and those placed before
// placedBefore (Unix nanoseconds) that no block ever referenced (pushed,
// but never committed). The collector may delete them after dooming them
// with OpGCMark.
func (s *State) Garbage(placedBefore int64) [][32]byte {
	set := maps.Clone(s.garbage)
	for id, p := range s.placed {
		if p.at < placedBefore && s.refs[id] == 0 {
			if _, doomed := s.doomed[id]; !doomed {
				set[id] = struct{}{}
			}
		}
	}
	return stSortedIDs(set)
}

// Counts returns the number of inodes held (orphans included) and the sum
// of the sizes of all regular files (orphans included; holes count, as in
// the file's apparent size).
func (s *State) Counts() (inodes uint64, bytes uint64) {
	return uint64(len(s.inodes)), s.bytes
}

// stErr returns a failure response.
func stErr(e syscall.Errno, reason string) *MetaResponse {
	return &MetaResponse{Errno: uint32(e), Reason: reason}
}

// stCheckName returns 0 if name may name a directory entry, else the errno
// Linux gives for it.
func stCheckName(name string) syscall.Errno {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return syscall.EINVAL
	}
	if len(name) > stMaxName {
		return syscall.ENAMETOOLONG
	}
	return 0
}

// inode returns inode ino, or ENOENT.
func (s *State) inode(ino uint64) (*stInode, syscall.Errno) {
	n := s.inodes[ino]
	if n == nil {
		return nil, syscall.ENOENT
	}
	return n, 0
}

// dir returns directory ino, or ENOENT or ENOTDIR.
func (s *State) dir(ino uint64) (*stInode, syscall.Errno) {
	n := s.inodes[ino]
	if n == nil {
		return nil, syscall.ENOENT
	}
	if !n.isDir() {
		return nil, syscall.ENOTDIR
	}
	return n, 0
}

// parentAndName checks name and returns directory ino; the errno says which
// check failed.
func (s *State) parentAndName(ino uint64, name string) (*stInode, syscall.Errno) {
	if e := stCheckName(name); e != 0 {
		return nil, e
	}
	return s.dir(ino)
}

// stTouch sets a directory's mtime and ctime to now.
func stTouch(n *stInode, now int64) {
	n.attr.Mtime = now
	n.attr.Ctime = now
}

// stDirChanged records at now a change to directory p's entries and
// returns the fields of the answer that tell the client so: p's ctime
// before the change and p's attributes after it (MetaResponse.DirBefore
// and Dir).
func stDirChanged(p *stInode, now int64) (before int64, after *Attr) {
	before = p.attr.Ctime
	stTouch(p, now)
	return before, stAttr(p)
}

// newInode allocates an inode number and stores a new inode with attr.
func (s *State) newInode(attr Attr) *stInode {
	attr.Ino = s.next
	s.next++
	return s.newInodeAt(attr)
}

// newInodeAt stores a new inode with attr, numbered attr.Ino, which the
// caller checked is free and below next.
func (s *State) newInodeAt(attr Attr) *stInode {
	n := &stInode{attr: attr}
	s.inodes[attr.Ino] = n
	return n
}

// allocInodes reserves req.Size inode numbers for a client to give the
// files it creates (OpCreate's NewIno).
func (s *State) allocInodes(req *MetaRequest) *MetaResponse {
	if req.Size == 0 || req.Size > wire.MaxAllocInodes {
		return stErr(syscall.EINVAL, "alloc inodes: bad count")
	}
	first := s.next
	s.next += req.Size
	return &MetaResponse{FirstIno: first}
}

// free forgets inode n, releasing its blocks.
func (s *State) free(n *stInode) {
	for _, b := range n.blocks {
		s.decref(b.id)
	}
	if n.isReg() {
		s.bytes -= n.attr.Size
	}
	delete(s.inodes, n.attr.Ino)
}

func stSortedIDs(set map[[32]byte]struct{}) [][32]byte {
	ids := make([][32]byte, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return ids
}
