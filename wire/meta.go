package wire

// This file holds the metadata service's message types: what a mount (or any
// client) asks a node about the namespace, and what it gets back. They travel
// JSON-encoded in length-prefixed messages on a stream opened to ServiceMeta
// (see PROTOCOL.md). The same request, stamped by the node, is what the Raft
// log records, so fields are only ever added, never renumbered or reused.

import "fmt"

// MetaOp names a metadata operation. Values are append-only: they cross
// versions.
type MetaOp uint8

// Metadata operations. Read-only ones are served from the node's applied
// state; the rest go through the Raft log.
const (
	OpInvalid     MetaOp = iota
	OpLookup             // Ino=parent, Name → Attr
	OpGetAttr            // Ino → Attr
	OpSetAttr            // Ino, Valid, Mode/Uid/Gid/Size/Atime/Mtime → Attr
	OpCreate             // Ino=parent, Name, Mode (any file type but dir and symlink), Uid, Gid, Rdev, Flags&CreateExcl → Attr
	OpMkdir              // Ino=parent, Name, Mode, Uid, Gid → Attr
	OpSymlink            // Ino=parent, Name, Target, Uid, Gid → Attr
	OpLink               // Ino=existing inode, NewParent, NewName → Attr
	OpUnlink             // Ino=parent, Name → Removed
	OpRmdir              // Ino=parent, Name
	OpRename             // Ino=parent, Name, NewParent, NewName, Flags&(RenameNoReplace|RenameExchange) → Removed
	OpReadDir            // Ino → Entries (sorted by name, without "." and "..")
	OpReadlink           // Ino → Target
	OpSetXattr           // Ino, Name, Value, Flags&(XattrCreate|XattrReplace)
	OpGetXattr           // Ino, Name → Value
	OpListXattr          // Ino → Names
	OpRemoveXattr        // Ino, Name
	OpStatfs             // → Statfs
	OpLayout             // Ino → Layout
	OpCommit             // Ino, Size, Blocks (small ones may carry Data), Mtime, Valid&(SetMode|SetUid|SetGid|SetAtime) with Mode/Uid/Gid/Atime, NewParent (optional: a directory the file is in, for its erasure scheme) → Attr: records written blocks and the attribute changes made while they were written
	OpDrop               // Ino: the client closed an unlinked inode; free it
	OpGCMark             // Chunks, Now: doom unreferenced chunks (internal)
	OpGCDone             // Chunks: the doomed chunks are deleted (internal)
	OpJoin               // Node: add it as a Raft voter and record its addresses (peer service only)
	OpLeave              // Name=node id: remove it from the voters and the records (peer service only)
	OpMembers            // → Members (every node known), Leader: the answering node's view
	OpNodeStatus         // → Node: the answering node's own status; never forwarded
	OpAllocInodes        // Size (1…65536) → FirstIno: inode numbers [FirstIno, FirstIno+Size) are the caller's to give new files (OpCreate's NewIno)
	OpPlace              // Places: record where the shards of chunks are (peer service only; see Placement)
	OpDisplace           // Places: forget the holders named (shard lost or corrupt), each only if it still holds that slot (peer service only)
	OpLocate             // Chunks → Places: where the shards of these chunks are (peer service only)
	OpDropShards         // Places, Now: delete this node's copies of these chunks and their shards not written since Now; never forwarded (peer service only)
	OpScrub              // → Scrubbed: verify every shard this node should hold now; never forwarded (peer service only)
	OpRepair             // → Repaired: run one repair pass now; answered by the leader (peer service only)
)

// metaOpNames are the operations' names for logs, errors and metrics,
// indexed by value.
var metaOpNames = [...]string{
	OpInvalid: "invalid", OpLookup: "lookup", OpGetAttr: "getattr", OpSetAttr: "setattr",
	OpCreate: "create", OpMkdir: "mkdir", OpSymlink: "symlink", OpLink: "link",
	OpUnlink: "unlink", OpRmdir: "rmdir", OpRename: "rename", OpReadDir: "readdir",
	OpReadlink: "readlink", OpSetXattr: "setxattr", OpGetXattr: "getxattr", OpListXattr: "listxattr",
	OpRemoveXattr: "removexattr", OpStatfs: "statfs", OpLayout: "layout", OpCommit: "commit",
	OpDrop: "drop", OpGCMark: "gcmark", OpGCDone: "gcdone", OpJoin: "join",
	OpLeave: "leave", OpMembers: "members", OpNodeStatus: "nodestatus", OpAllocInodes: "allocinodes",
	OpPlace: "place", OpDisplace: "displace", OpLocate: "locate", OpDropShards: "dropshards",
	OpScrub: "scrub", OpRepair: "repair",
}

// String returns the operation's name ("commit"), or "op N" for a value
// this version does not know.
func (o MetaOp) String() string {
	if int(o) < len(metaOpNames) && metaOpNames[o] != "" {
		return metaOpNames[o]
	}
	return fmt.Sprintf("op %d", uint8(o))
}

// ReplyMemory is how long (by the requests' Now) the metadata remembers
// the answer to a request that names its Client and Seq.
const ReplyMemory = 10 * 60 * 1e9

// MaxAllocInodes is the most inode numbers one OpAllocInodes reserves.
const MaxAllocInodes = 1 << 16

// Flags for MetaRequest.Flags.
const (
	CreateExcl      = 1 << 0 // OpCreate: fail with EEXIST if the name exists
	RenameNoReplace = 1 << 0 // OpRename: fail with EEXIST if the target exists (RENAME_NOREPLACE)
	RenameExchange  = 1 << 1 // OpRename: swap the two names (RENAME_EXCHANGE)
	DropUnopened    = 1 << 2 // OpUnlink, OpRename: if the inode the op takes a name from is NewIno and that was its last name, free it at once (the client does not hold it open), so no OpDrop follows
	ReadDirAttrs    = 1 << 0 // OpReadDir: each entry carries its inode's attributes (DirEntry.Attr)
	XattrCreate     = 1 << 0 // OpSetXattr: fail with EEXIST if set (XATTR_CREATE)
	XattrReplace    = 1 << 1 // OpSetXattr: fail with ENODATA if unset (XATTR_REPLACE)
	PlaceReplace    = 1 << 0 // OpPlace: replace a placement of another scheme (the chunk was re-encoded)
)

// Bits for MetaRequest.Valid on OpSetAttr: which fields to change.
const (
	SetMode  = 1 << 0
	SetUid   = 1 << 1
	SetGid   = 1 << 2
	SetSize  = 1 << 3
	SetAtime = 1 << 4
	SetMtime = 1 << 5
	SetCtime = 1 << 6
)

// RootIno is the inode number of the root directory.
const RootIno = 1

// Attr is an inode's attributes. Mode holds the file type bits (S_IFREG,
// S_IFDIR, ...) and the permission bits as in stat(2). Times are Unix
// nanoseconds.
type Attr struct {
	Ino   uint64 `json:"ino"`
	Mode  uint32 `json:"mode"`
	Nlink uint32 `json:"nlink"`
	Uid   uint32 `json:"uid"`
	Gid   uint32 `json:"gid"`
	Rdev  uint32 `json:"rdev,omitempty"`
	Size  uint64 `json:"size"`
	Atime int64  `json:"atime"`
	Mtime int64  `json:"mtime"`
	Ctime int64  `json:"ctime"`
}

// DirEntry is one name in a directory.
type DirEntry struct {
	Name Name   `json:"name"`
	Ino  uint64 `json:"ino"`
	Mode uint32 `json:"mode"` // file type bits and permissions of the inode
	// Attr is the inode's attributes, if the OpReadDir asked for them
	// (ReadDirAttrs).
	Attr *Attr `json:"attr,omitempty"`
	// NoXattrs says, with Attr, that the inode has no extended
	// attributes.
	NoXattrs bool `json:"noxattrs,omitempty"`
}

// Block is one block of a file: bytes [Index*BlockSize, Index*BlockSize+Len)
// of the file are the first Len bytes of chunk ID. Bytes of the block past Len,
// and blocks absent from a layout, read as zeros. A Block with a zero ID in a
// commit removes the block (punches a hole).
//
// In a commit, Data may carry the chunk itself (whose SHA-256 is ID) instead
// of the chunk having been pushed on the chunk service first: an inline
// chunk, at most MaxInlineChunk bytes, and at most MaxInlineCommit bytes of
// them in one commit. The chunk travels in the Raft log entry and every
// replica stores it in its chunk store when it applies the entry; layouts
// never carry Data.
type Block struct {
	Index uint64  `json:"i"`
	ID    ChunkID `json:"id"`
	Len   uint32  `json:"len"`
	Data  []byte  `json:"data,omitempty"`
}

// Limits on inline chunks (see Block).
const (
	MaxInlineChunk  = 64 << 10 // bytes of one inline chunk
	MaxInlineCommit = 1 << 20  // bytes of all inline chunks of one commit
)

// Layout is where a regular file's bytes are: its size, block size and the
// blocks present, sorted by Index.
type Layout struct {
	Size      uint64  `json:"size"`
	BlockSize uint32  `json:"bs"`
	Blocks    []Block `json:"blocks,omitempty"`
}

// Removed tells what an unlink or rename did to the inode it removed a name
// of. If Orphaned, the inode has no names left but is kept until the client
// sends OpDrop for it (it may still be open).
type Removed struct {
	Ino      uint64 `json:"ino,omitempty"`
	Orphaned bool   `json:"orphaned,omitempty"`
}

// Statfs is the file system's size and use, as statfs(2) reports it.
type Statfs struct {
	Bsize   uint32 `json:"bsize"`  // block size for the counts below
	Blocks  uint64 `json:"blocks"` // total blocks
	Bfree   uint64 `json:"bfree"`  // free blocks
	Bavail  uint64 `json:"bavail"` // free blocks for unprivileged users
	Files   uint64 `json:"files"`  // total inodes
	Ffree   uint64 `json:"ffree"`  // free inodes
	Namelen uint32 `json:"namelen"`
}

// MetaRequest is one metadata operation. Which fields matter depends on Op
// (see the Op constants). Now is the time of the operation in Unix
// nanoseconds; the node stamps it if the client left it zero.
type MetaRequest struct {
	Op        MetaOp     `json:"op"`
	Ino       uint64     `json:"ino,omitempty"`
	Name      Name       `json:"name,omitempty"`
	NewParent uint64     `json:"newparent,omitempty"`
	NewName   Name       `json:"newname,omitempty"`
	Mode      uint32     `json:"mode,omitempty"`
	Uid       uint32     `json:"uid,omitempty"`
	Gid       uint32     `json:"gid,omitempty"`
	Rdev      uint32     `json:"rdev,omitempty"`
	Target    Name       `json:"target,omitempty"`
	Flags     uint32     `json:"flags,omitempty"`
	Valid     uint32     `json:"valid,omitempty"`
	Size      uint64     `json:"size,omitempty"`
	Atime     int64      `json:"atime,omitempty"`
	Mtime     int64      `json:"mtime,omitempty"`
	Value     []byte     `json:"value,omitempty"`
	Blocks    []Block    `json:"blocks,omitempty"`
	Chunks    [][32]byte `json:"chunks,omitempty"`
	Now       int64      `json:"now,omitempty"`
	// NewIno, on OpCreate of a regular file, is the new inode's number,
	// chosen by the client from a range OpAllocInodes reserved for it; the
	// name must not exist (EEXIST). Zero lets the state pick. On OpUnlink
	// and OpRename with DropUnopened, it is the inode the client expects
	// the op to take a name from.
	NewIno uint64 `json:"newino,omitempty"`
	// Create, on OpCommit, is an OpCreate (with NewIno equal to the
	// commit's Ino) applied first, atomically with the commit: a client
	// defers creating a new file until its first commit, so that a small
	// file costs one log entry. Either both happen or neither does.
	Create *MetaRequest `json:"create,omitempty"`
	// Node is the node an OpJoin adds.
	Node *NodeInfo `json:"node,omitempty"`
	// Places are the placements of OpPlace, OpDisplace and OpDropShards.
	Places []Placement `json:"places,omitempty"`
	// Forwarded marks a request a node relays to the leader on the peer
	// service; the leader answers it itself and never forwards it again.
	Forwarded bool `json:"fwd,omitempty"`
	// Client and Seq, if Client is set, name a mutating request uniquely:
	// Client is random to each client (at most 64 bytes), Seq counts its
	// requests. The metadata applies such a request once; the same pair
	// again (a retry whose first answer was lost) gets the first answer.
	// Answers are remembered for ReplyMemory after the request's Now, or
	// until the client acknowledges them (Acked).
	Client string `json:"client,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	// Acked, with Client, says that the client has every answer to its
	// requests with Seq below Acked and will not retry them, so the
	// metadata may forget those answers.
	Acked uint64 `json:"acked,omitempty"`
}

// MetaResponse answers a MetaRequest. Errno is 0 on success, else the Linux
// errno value that says what went wrong (ENOENT, EEXIST, ENOTEMPTY, ...);
// Reason may add words for a log. Unavailable (with Errno EAGAIN) means the
// node could not answer for now (no Raft leader, or its state not yet caught
// up) and the client should retry; the request had no effect. The other
// fields are set as the Op says.
type MetaResponse struct {
	Errno        uint32       `json:"errno,omitempty"`
	Reason       string       `json:"reason,omitempty"`
	Unavailable  bool         `json:"unavailable,omitempty"`
	Attr         Attr         `json:"attr,omitzero"`
	Entries      []DirEntry   `json:"entries,omitempty"`
	Target       Name         `json:"target,omitempty"`
	Value        []byte       `json:"value,omitempty"`
	Names        []Name       `json:"names,omitempty"`
	Layout       Layout       `json:"layout,omitzero"`
	Removed      Removed      `json:"removed,omitzero"`
	Statfs       Statfs       `json:"statfs,omitzero"`
	Chunks       [][32]byte   `json:"chunks,omitempty"`
	Members      []NodeInfo   `json:"members,omitempty"`      // OpMembers
	Leader       string       `json:"leader,omitempty"`       // OpMembers: the leader's node id, if known
	Node         *NodeStatus  `json:"node,omitempty"`         // OpNodeStatus
	FirstIno     uint64       `json:"firstino,omitempty"`     // OpAllocInodes
	Dir          *Attr        `json:"dir,omitempty"`          // the attributes of the directory the op changed, as it left them: Create, Mkdir, Symlink, Link (NewParent), Unlink, Rmdir, Rename (the source directory), a Commit carrying a create; ReadDir: the directory's, as listed
	DirBefore    int64        `json:"dirbefore,omitempty"`    // with Dir: the directory's ctime before the op (Dir.Ctime if it left it alone)
	NewDir       *Attr        `json:"newdir,omitempty"`       // Rename between two directories: the target directory's attributes, as the op left them (Dir is the source's)
	NewDirBefore int64        `json:"newdirbefore,omitempty"` // with NewDir: the target directory's ctime before the op
	Places       []Placement  `json:"places,omitempty"`       // OpLocate; OpGCMark: the doomed chunks that were placed
	Scrubbed     *ScrubReport `json:"scrubbed,omitempty"`     // OpScrub
	Repaired     int          `json:"repaired,omitempty"`     // OpRepair: shards rebuilt
	Deleted      int          `json:"deleted,omitempty"`      // OpDropShards: files deleted
}

// Placement says where the shards of one chunk live. The chunk of Size
// plain bytes is erasure-coded into Data data shards and Parity parity
// shards (Data 1 means Parity+1 whole copies); Nodes[i] is the id of the
// node holding shard i, "" if none does (a degraded chunk that repair will
// rebuild). Nodes has Data+Parity entries and names no node twice.
//
// In answers (Locate), WantData and WantParity, if not zero, are the
// scheme a directory asks for the chunk (shoal's "user.shoal.ec" xattr),
// which repair re-encodes it to; requests leave them zero.
type Placement struct {
	ID         ChunkID  `json:"id"`
	Size       uint32   `json:"size"`
	Data       uint8    `json:"k"`
	Parity     uint8    `json:"m"`
	Nodes      []string `json:"nodes"`
	WantData   uint8    `json:"want_k,omitempty"`
	WantParity uint8    `json:"want_m,omitempty"`
}

// ScrubReport is what one scrub of a node found: how many shards it
// checked, and how many of them were missing or corrupt (each now reported
// lost with OpDisplace, so that repair rewrites it).
type ScrubReport struct {
	Checked int `json:"checked"`
	Missing int `json:"missing,omitempty"`
	Corrupt int `json:"corrupt,omitempty"`
	// Refetched counts the inline chunks (a copy on every node) that were
	// missing or corrupt here and were copied again from another node.
	Refetched int `json:"refetched,omitempty"`
}
