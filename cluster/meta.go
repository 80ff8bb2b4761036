package cluster

import (
	"context"
	"fmt"
	"syscall"

	"shoal/wire"
)

// The metadata message types are defined by the wire format; these aliases
// let users of cluster (the fs package above all) name them without
// importing wire.
type (
	MetaOp       = wire.MetaOp
	MetaRequest  = wire.MetaRequest
	MetaResponse = wire.MetaResponse
	Attr         = wire.Attr
	DirEntry     = wire.DirEntry
	Block        = wire.Block
	ChunkID      = wire.ChunkID
	Name         = wire.Name
	Layout       = wire.Layout
	Removed      = wire.Removed
	Statfs       = wire.Statfs
	ScrubReport  = wire.ScrubReport
)

// Metadata answers metadata requests. The remote Client, the in-process
// Local and the Raft-backed node all implement it. Safe for concurrent use.
type Metadata interface {
	// Do performs req. A failure the file system defines (no such name, not
	// empty, quota...) comes back as an error wrapping the syscall.Errno
	// from the response; other errors (connection lost, no leader) wrap
	// their cause and satisfy IsTransient when a retry may succeed. The
	// response is nil whenever the error is not nil.
	Do(ctx context.Context, req *MetaRequest) (*MetaResponse, error)
}

// ResponseError returns nil if resp reports success, else an error for req
// that wraps resp's errno as a syscall.Errno.
func ResponseError(req *MetaRequest, resp *MetaResponse) error {
	if resp.Errno == 0 {
		return nil
	}
	if resp.Reason != "" {
		return fmt.Errorf("meta %s ino %d %q: %s: %w", req.Op, req.Ino, req.Name, resp.Reason, syscall.Errno(resp.Errno))
	}
	return fmt.Errorf("meta %s ino %d %q: %w", req.Op, req.Ino, req.Name, syscall.Errno(resp.Errno))
}

// The metadata ops, flags and setattr bits of the wire format, re-exported
// so that users of cluster need not import wire (see wire/meta.go for what
// each means).
const (
	OpLookup      = wire.OpLookup
	OpGetAttr     = wire.OpGetAttr
	OpSetAttr     = wire.OpSetAttr
	OpCreate      = wire.OpCreate
	OpMkdir       = wire.OpMkdir
	OpSymlink     = wire.OpSymlink
	OpLink        = wire.OpLink
	OpUnlink      = wire.OpUnlink
	OpRmdir       = wire.OpRmdir
	OpRename      = wire.OpRename
	OpReadDir     = wire.OpReadDir
	OpReadlink    = wire.OpReadlink
	OpSetXattr    = wire.OpSetXattr
	OpGetXattr    = wire.OpGetXattr
	OpListXattr   = wire.OpListXattr
	OpRemoveXattr = wire.OpRemoveXattr
	OpStatfs      = wire.OpStatfs
	OpLayout      = wire.OpLayout
	OpCommit      = wire.OpCommit
	OpDrop        = wire.OpDrop
	OpAllocInodes = wire.OpAllocInodes

	CreateExcl      = wire.CreateExcl
	RenameNoReplace = wire.RenameNoReplace
	RenameExchange  = wire.RenameExchange
	DropUnopened    = wire.DropUnopened
	ReadDirAttrs    = wire.ReadDirAttrs
	XattrCreate     = wire.XattrCreate
	XattrReplace    = wire.XattrReplace

	SetMode  = wire.SetMode
	SetUid   = wire.SetUid
	SetGid   = wire.SetGid
	SetSize  = wire.SetSize
	SetAtime = wire.SetAtime
	SetMtime = wire.SetMtime
	SetCtime = wire.SetCtime

	RootIno = wire.RootIno

	MaxInlineChunk  = wire.MaxInlineChunk
	MaxInlineCommit = wire.MaxInlineCommit
)
