package fs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/cluster"
)

// node is one inode as go-fuse sees it; its StableAttr.Ino is the
// metadata inode number. It keeps the attributes last seen (for setgid
// inheritance) and a short-lived cache of the security.capability xattr,
// which the kernel asks for before every write.
type node struct {
	gofs.Inode
	r *Root

	mu      sync.Mutex
	attr    cluster.Attr
	hasAttr bool
	capVal  []byte // cached security.capability value, nil if absent
	capErr  syscall.Errno
	capTill time.Time // capVal/capErr valid until then
	// noXattrsTill: a listing said the inode had no extended attributes;
	// getxattr and listxattr answer so themselves until then.
	noXattrsTill time.Time
	fresh        time.Time           // directories: attr was exact then (dirattr.go)
	names        map[string]struct{} // directories: every name, if known (dirnames.go)
	namesAt      time.Time           // when names were last known complete
	// namesCtime is the directory's ctime when names were last known
	// complete (0: unknown); namesSteps maps the ctimes before this
	// mount's changes to the ctimes after, for those not yet connected
	// to namesCtime.
	namesCtime int64
	namesSteps map[int64]int64
}

var (
	_ gofs.NodeLookuper       = (*node)(nil)
	_ gofs.NodeGetattrer      = (*node)(nil)
	_ gofs.NodeSetattrer      = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeMknoder        = (*node)(nil)
	_ gofs.NodeMkdirer        = (*node)(nil)
	_ gofs.NodeSymlinker      = (*node)(nil)
	_ gofs.NodeReadlinker     = (*node)(nil)
	_ gofs.NodeLinker         = (*node)(nil)
	_ gofs.NodeUnlinker       = (*node)(nil)
	_ gofs.NodeRmdirer        = (*node)(nil)
	_ gofs.NodeRenamer        = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeStatfser       = (*node)(nil)
	_ gofs.NodeFsyncer        = (*node)(nil)
	_ gofs.NodeGetxattrer     = (*node)(nil)
	_ gofs.NodeSetxattrer     = (*node)(nil)
	_ gofs.NodeListxattrer    = (*node)(nil)
	_ gofs.NodeRemovexattrer  = (*node)(nil)

	_ gofs.FileReader    = (*handle)(nil)
	_ gofs.FileWriter    = (*handle)(nil)
	_ gofs.FileFlusher   = (*handle)(nil)
	_ gofs.FileFsyncer   = (*handle)(nil)
	_ gofs.FileReleaser  = (*handle)(nil)
	_ gofs.FileAllocater = (*handle)(nil)
)

func (n *node) ino() uint64 { return n.StableAttr().Ino }

// maxName is the longest file name, in bytes (NAME_MAX).
const maxName = 255

func (n *node) errno(op string, err error) syscall.Errno { return toErrno(n.r.log, op, err) }

// remember records a as n's latest attributes.
func (n *node) remember(a cluster.Attr) {
	n.mu.Lock()
	n.attr, n.hasAttr = a, true
	n.mu.Unlock()
}

// fillAttr converts a to go-fuse's form, with local changes of an open
// file overlaid.
func (n *node) fillAttr(a cluster.Attr, out *fuse.Attr) {
	if f := n.r.lookupFile(a.Ino); f != nil {
		f.overlay(&a)
	}
	n.r.overlayDir(&a)
	out.Ino = a.Ino
	out.Size = a.Size
	out.Blocks = (a.Size + 511) / 512
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Owner = fuse.Owner{Uid: a.Uid, Gid: a.Gid}
	out.Rdev = a.Rdev
	out.Blksize = 1 << 20
	out.Atime, out.Atimensec = splitNanos(a.Atime)
	out.Mtime, out.Mtimensec = splitNanos(a.Mtime)
	out.Ctime, out.Ctimensec = splitNanos(a.Ctime)
}

func splitNanos(t int64) (uint64, uint32) {
	s, ns := t/1e9, t%1e9
	if ns < 0 {
		s, ns = s-1, ns+1e9
	}
	return uint64(s), uint32(ns)
}

// child makes (or finds) the go-fuse inode for a and fills out.
func (n *node) child(ctx context.Context, a cluster.Attr, out *fuse.EntryOut) *gofs.Inode {
	c := n.NewInode(ctx, &node{r: n.r}, gofs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: a.Ino})
	if cn, ok := c.Operations().(*node); ok {
		cn.remember(a)
		if a.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			// For a directory the kernel already knows, go-fuse keeps
			// the node it has and drops this one: the registered node
			// stays the one to keep up to date.
			v, _ := n.r.dirs.LoadOrStore(a.Ino, cn)
			v.(*node).rememberFresh(a)
			if v != cn {
				cn.rememberFresh(a)
			}
		}
	}
	n.fillAttr(a, &out.Attr)
	return c
}

// Lookup implements fs.NodeLookuper.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.r.known.absent(n.ino(), name) {
		return nil, syscall.ENOENT
	}
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpLookup, Ino: n.ino(), Name: cluster.Name(name)})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) && n.r.known.missed(n.ino()) {
			n.relist(ctx)
		}
		return nil, n.errno("lookup", err)
	}
	return n.child(ctx, resp.Attr, out), 0
}

// relist learns all of n's names, so that the mount answers lookups of
// absent names itself (dirnames.go). The kernel holds n locked across a
// lookup, so no create, unlink or rename in n changes the names meanwhile;
// a listing that fails leaves them unknown, as they were.
func (n *node) relist(ctx context.Context) {
	if resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpReadDir, Ino: n.ino()}); err == nil {
		n.learnNames(resp)
	}
}

// learnNames records the names of a listing of n as all of n's names.
func (n *node) learnNames(resp *cluster.MetaResponse) {
	names := make(map[string]struct{}, len(resp.Entries))
	for _, e := range resp.Entries {
		names[string(e.Name)] = struct{}{}
	}
	var ctime int64
	if resp.Dir != nil && resp.Dir.Ino == n.ino() {
		ctime = resp.Dir.Ctime
	}
	n.r.known.know(n.ino(), names, ctime)
}

// Getattr implements fs.NodeGetattrer. A pending file (pending.go), and a
// directory whose attributes this mount learnt exactly less than
// AttrTimeout ago (dirattr.go), are answered from what this mount knows.
func (n *node) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.register()
	if a, ok := n.freshAttr(); ok {
		n.fillAttr(a, &out.Attr)
		return 0
	}
	if n.r.isPending(n.ino()) {
		n.mu.Lock()
		a := n.attr
		n.mu.Unlock()
		n.fillAttr(a, &out.Attr)
		return 0
	}
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpGetAttr, Ino: n.ino()})
	if err != nil {
		return n.errno("getattr", err)
	}
	n.remember(resp.Attr)
	n.fillAttr(resp.Attr, &out.Attr)
	return 0
}

// Setattr implements fs.NodeSetattrer. A size change of an open file
// first commits its local writes.
func (n *node) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	req := &cluster.MetaRequest{Op: cluster.OpSetAttr, Ino: n.ino()}
	if m, ok := in.GetMode(); ok {
		req.Valid |= cluster.SetMode
		req.Mode = m
	}
	if u, ok := in.GetUID(); ok {
		req.Valid |= cluster.SetUid
		req.Uid = u
	}
	if g, ok := in.GetGID(); ok {
		req.Valid |= cluster.SetGid
		req.Gid = g
	}
	if s, ok := in.GetSize(); ok {
		req.Valid |= cluster.SetSize
		req.Size = s
	}
	if t, ok := in.GetATime(); ok {
		req.Valid |= cluster.SetAtime
		req.Atime = t.UnixNano()
	}
	if t, ok := in.GetMTime(); ok {
		req.Valid |= cluster.SetMtime
		req.Mtime = t.UnixNano()
	}
	if req.Valid == 0 {
		return n.Getattr(ctx, fh, out)
	}
	if n.isDir() {
		if a, ok := n.r.deferDirAttr(n, req); ok {
			n.fillAttr(a, &out.Attr)
			out.SetTimeout(n.r.opts.AttrTimeout)
			return 0
		}
	}
	var resp *cluster.MetaResponse
	var err error
	if f := n.r.lookupFile(n.ino()); f != nil {
		var base *cluster.Attr
		n.mu.Lock()
		if n.hasAttr {
			a := n.attr
			base = &a
		}
		n.mu.Unlock()
		resp, err = f.setattr(ctx, req, base)
	} else {
		resp, err = n.r.do(ctx, req)
	}
	if err != nil {
		return n.errno("setattr", err)
	}
	n.remember(resp.Attr)
	n.fillAttr(resp.Attr, &out.Attr)
	out.SetTimeout(n.r.opts.AttrTimeout)
	return 0
}

// owner returns the uid, gid and mode for a new entry in directory n made
// by the caller in ctx: the caller's gid unless n is setgid, in which case
// n's gid (and a new directory is setgid too), as Linux does.
func (n *node) owner(ctx context.Context, mode uint32) (uid, gid, m uint32, errno syscall.Errno) {
	if c, ok := fuse.FromContext(ctx); ok {
		uid, gid = c.Uid, c.Gid
	}
	n.mu.Lock()
	a, ok := n.attr, n.hasAttr
	n.mu.Unlock()
	if !ok {
		resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpGetAttr, Ino: n.ino()})
		if err != nil {
			return 0, 0, 0, n.errno("getattr", err)
		}
		a = resp.Attr
		n.remember(a)
	}
	n.r.overlayDir(&a) // a setgid or chgrp of n may not be sent yet
	if a.Mode&syscall.S_ISGID != 0 {
		gid = a.Gid
		if mode&syscall.S_IFMT == syscall.S_IFDIR {
			mode |= syscall.S_ISGID
		}
	}
	return uid, gid, mode, 0
}

// Create implements fs.NodeCreater.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	n.register()
	uid, gid, mode, errno := n.owner(ctx, mode|syscall.S_IFREG)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if !n.r.opts.SyncCreate && len(name) <= maxName {
		ino, err := n.r.allocIno(ctx)
		if err != nil {
			return nil, nil, 0, n.errno("create", err)
		}
		now := time.Now().UnixNano()
		a := cluster.Attr{Ino: ino, Mode: mode, Nlink: 1, Uid: uid, Gid: gid, Atime: now, Mtime: now, Ctime: now}
		if f, ok := n.r.createDeferred(n.ino(), name, a); ok {
			n.r.known.add(n.ino(), name)
			c := n.child(ctx, a, out)
			cn := c.Operations().(*node)
			// A file made just now has no extended attributes; the
			// kernel asks for security.capability before the first
			// write, which for a file whose create a shell's
			// redirection already committed (its first close) would
			// otherwise be a round trip per file.
			cn.knowNoXattrs()
			return c, &handle{n: cn, f: f}, 0, 0
		}
	}
	req := &cluster.MetaRequest{Op: cluster.OpCreate, Ino: n.ino(), Name: cluster.Name(name), Mode: mode, Uid: uid, Gid: gid}
	if flags&syscall.O_EXCL != 0 {
		req.Flags |= cluster.CreateExcl
	}
	resp, err := n.r.do(ctx, req)
	if err != nil {
		return nil, nil, 0, n.errno("create", err)
	}
	n.r.known.add(n.ino(), name)
	a := resp.Attr
	var fresh *cluster.Layout
	if a.Size == 0 {
		bs, err := n.r.getBlockSize(ctx, a.Ino)
		if err != nil {
			return nil, nil, 0, n.errno("create", err)
		}
		fresh = &cluster.Layout{BlockSize: bs}
	}
	f := n.r.openFile(a.Ino, fresh, n.ino())
	if a.Size > 0 && flags&syscall.O_TRUNC != 0 {
		// The name existed (a create without O_EXCL): truncate it.
		sresp, err := f.setattr(ctx, &cluster.MetaRequest{Op: cluster.OpSetAttr, Ino: a.Ino, Valid: cluster.SetSize}, nil)
		if err != nil {
			n.r.release(f)
			return nil, nil, 0, n.errno("create", err)
		}
		a = sresp.Attr
	}
	c := n.child(ctx, a, out)
	return c, &handle{n: c.Operations().(*node), f: f}, 0, 0
}

// Open implements fs.NodeOpener.
func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if n.StableAttr().Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, 0, 0
	}
	var dir uint64
	if _, p := n.Parent(); p != nil {
		dir = p.StableAttr().Ino
	}
	f := n.r.openFile(n.ino(), nil, dir)
	if flags&syscall.O_TRUNC != 0 {
		if _, err := f.setattr(ctx, &cluster.MetaRequest{Op: cluster.OpSetAttr, Ino: n.ino(), Valid: cluster.SetSize}, nil); err != nil {
			n.r.release(f)
			return nil, 0, n.errno("open", err)
		}
	}
	// The kernel may keep cached pages across opens: it drops them itself
	// when a fresh Getattr shows another size or mtime (AUTO_INVAL_DATA),
	// and this mount's own writes go through it.
	return &handle{n: n, f: f}, fuse.FOPEN_KEEP_CACHE, 0
}

// Mknod implements fs.NodeMknoder.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.register()
	uid, gid, mode, errno := n.owner(ctx, mode)
	if errno != 0 {
		return nil, errno
	}
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpCreate, Ino: n.ino(), Name: cluster.Name(name), Mode: mode, Uid: uid, Gid: gid, Rdev: dev, Flags: cluster.CreateExcl})
	if err != nil {
		return nil, n.errno("mknod", err)
	}
	n.r.known.add(n.ino(), name)
	return n.child(ctx, resp.Attr, out), 0
}

// Mkdir implements fs.NodeMkdirer.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.register()
	uid, gid, mode, errno := n.owner(ctx, mode&07777|syscall.S_IFDIR)
	if errno != 0 {
		return nil, errno
	}
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpMkdir, Ino: n.ino(), Name: cluster.Name(name), Mode: mode, Uid: uid, Gid: gid})
	if err != nil {
		return nil, n.errno("mkdir", err)
	}
	n.r.known.add(n.ino(), name)
	n.r.known.know(resp.Attr.Ino, map[string]struct{}{}, resp.Attr.Ctime) // new, so empty
	return n.child(ctx, resp.Attr, out), 0
}

// Symlink implements fs.NodeSymlinker.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.register()
	uid, gid, _, errno := n.owner(ctx, syscall.S_IFLNK)
	if errno != 0 {
		return nil, errno
	}
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpSymlink, Ino: n.ino(), Name: cluster.Name(name), Target: cluster.Name(target), Uid: uid, Gid: gid})
	if err != nil {
		return nil, n.errno("symlink", err)
	}
	n.r.known.add(n.ino(), name)
	return n.child(ctx, resp.Attr, out), 0
}

// Readlink implements fs.NodeReadlinker.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpReadlink, Ino: n.ino()})
	if err != nil {
		return nil, n.errno("readlink", err)
	}
	return []byte(resp.Target), 0
}

// Link implements fs.NodeLinker.
func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.register()
	ino := target.EmbeddedInode().StableAttr().Ino
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpLink, Ino: ino, NewParent: n.ino(), NewName: cluster.Name(name)})
	if err != nil {
		return nil, n.errno("link", err)
	}
	n.r.known.add(n.ino(), name)
	return n.child(ctx, resp.Attr, out), 0
}

// Unlink implements fs.NodeUnlinker. An open file that lost its last name
// stays readable until its last handle is released.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	n.register()
	req := &cluster.MetaRequest{Op: cluster.OpUnlink, Ino: n.ino(), Name: cluster.Name(name)}
	n.r.dropUnopened(req, n.GetChild(name))
	if req.Flags&cluster.DropUnopened != 0 && !n.r.opts.SyncNames {
		// No one holds the file open here: answer now, send later.
		return n.errno("unlink", n.r.unlinkLater(ctx, n, req))
	}
	resp, err := n.r.do(ctx, req)
	if err != nil {
		return n.errno("unlink", err)
	}
	n.r.known.drop(n.ino(), name)
	n.r.removed(ctx, resp.Removed)
	return 0
}

// Rmdir implements fs.NodeRmdirer.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	n.register()
	req := &cluster.MetaRequest{Op: cluster.OpRmdir, Ino: n.ino(), Name: cluster.Name(name)}
	if c := n.GetChild(name); c != nil {
		dir := c.StableAttr().Ino
		if !n.r.opts.SyncNames && n.r.known.empty(dir) {
			// Known empty (no pending file either): answer now, send later.
			return n.errno("rmdir", n.r.rmdirLater(ctx, n, dir, req))
		}
		// Files pending in it make it not empty.
		if err := n.r.materializeIn(ctx, dir); err != nil {
			return n.errno("rmdir", err)
		}
	}
	_, err := n.r.do(ctx, req)
	if err == nil {
		n.r.known.drop(n.ino(), name)
	}
	return n.errno("rmdir", err)
}

// Rename implements fs.NodeRenamer, with RENAME_NOREPLACE and
// RENAME_EXCHANGE.
func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	n.register()
	req := &cluster.MetaRequest{Op: cluster.OpRename, Ino: n.ino(), Name: cluster.Name(name), NewParent: newParent.EmbeddedInode().StableAttr().Ino, NewName: cluster.Name(newName)}
	const noReplace, exchange = 1, 2 // RENAME_NOREPLACE, RENAME_EXCHANGE
	if flags&^(noReplace|exchange) != 0 {
		return syscall.EINVAL
	}
	if flags&noReplace != 0 {
		req.Flags |= cluster.RenameNoReplace
	}
	if flags&exchange != 0 {
		req.Flags |= cluster.RenameExchange
	}
	var moved *node
	if c := n.GetChild(name); c != nil {
		moved, _ = c.Operations().(*node)
	}
	to, _ := newParent.(*node)
	target := newParent.EmbeddedInode().GetChild(newName)
	if req.Flags&cluster.RenameExchange == 0 {
		n.r.dropUnopened(req, target)
	}
	if n.r.holdsRename(req, moved, target) && to != nil {
		// No one holds either file open here: answer now, send later.
		return n.errno("rename", n.r.renameLater(ctx, n, to, moved, req))
	}
	// Both directories change (the answer says how: noteDirs), the
	// moved inode's ctime too, and, for a directory, its "..".
	if moved != nil {
		defer moved.stale()
	}
	resp, err := n.r.do(ctx, req)
	if err != nil {
		return n.errno("rename", err)
	}
	if req.Flags&cluster.RenameExchange == 0 {
		n.r.known.drop(n.ino(), name)
		n.r.known.add(req.NewParent, newName)
	}
	n.r.removed(ctx, resp.Removed)
	return 0
}

// OpendirHandle implements fs.NodeOpendirHandler: a directory is read
// through a dirHandle.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{n: n}, 0, 0
}

// list fetches all of n's entries at once, with their attributes, and
// returns them as the kernel lists them ("." and ".." first) together
// with what it says of each entry by name.
func (n *node) list(ctx context.Context) ([]fuse.DirEntry, map[string]listed, syscall.Errno) {
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpReadDir, Ino: n.ino(), Flags: cluster.ReadDirAttrs})
	if err != nil {
		return nil, nil, n.errno("readdir", err)
	}
	parent := n.ino()
	if _, p := n.Parent(); p != nil {
		parent = p.StableAttr().Ino
	}
	list := make([]fuse.DirEntry, 0, len(resp.Entries)+2)
	list = append(list,
		fuse.DirEntry{Name: ".", Ino: n.ino(), Mode: syscall.S_IFDIR},
		fuse.DirEntry{Name: "..", Ino: parent, Mode: syscall.S_IFDIR})
	attrs := make(map[string]listed, len(resp.Entries))
	for _, e := range resp.Entries {
		list = append(list, fuse.DirEntry{Name: string(e.Name), Ino: e.Ino, Mode: e.Mode})
		if e.Attr != nil && e.Attr.Ino == e.Ino {
			attrs[string(e.Name)] = listed{attr: *e.Attr, noXattrs: e.NoXattrs}
		}
	}
	n.learnNames(resp)
	return list, attrs, 0
}

// dirHandle is an open directory. It fetches the listing at its first
// read, each entry with its inode's attributes, and answers the lookups
// of a READDIRPLUS (which hands the kernel each entry's attributes with
// its name) from those, so that "ls -l", "find" or "rm -r" cost one round
// trip per directory rather than one per entry. Like getdents(2) on any
// file system, what it lists is the directory as of that first read.
// go-fuse calls its methods one at a time.
type dirHandle struct {
	n       *node
	entries []fuse.DirEntry // nil until the first read (then "." and ".." at least)
	attrs   map[string]listed
	next    int // index of the next entry to read
}

// listed is what a listing says of an entry besides its name.
type listed struct {
	attr     cluster.Attr
	noXattrs bool // the inode has no extended attributes
}

var (
	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
	_ gofs.FileLookuper     = (*dirHandle)(nil)
)

// load fetches the listing unless it has it.
func (h *dirHandle) load(ctx context.Context) syscall.Errno {
	if h.entries != nil {
		return 0
	}
	entries, attrs, errno := h.n.list(ctx)
	if errno != 0 {
		return errno
	}
	h.entries, h.attrs = entries, attrs
	return 0
}

// Readdirent implements fs.FileReaddirenter. An entry's offset is the
// index of the one after it, which Seekdir takes back.
func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := h.load(ctx); errno != 0 {
		return nil, errno
	}
	if h.next >= len(h.entries) {
		return nil, 0
	}
	e := h.entries[h.next]
	h.next++
	e.Off = uint64(h.next)
	return &e, 0
}

// Seekdir implements fs.FileSeekdirer.
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if errno := h.load(ctx); errno != 0 {
		return errno
	}
	if off > uint64(len(h.entries)) {
		return syscall.EINVAL
	}
	h.next = int(off)
	return 0
}

// Lookup implements fs.FileLookuper, for READDIRPLUS: a name the listing
// carried attributes for is answered from them; any other the directory
// looks up. An inode listed without extended attributes answers the
// getxattr that "ls -l" sends for each entry itself, for AttrTimeout.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	e, ok := h.attrs[name]
	if !ok {
		return h.n.Lookup(ctx, name, out)
	}
	c := h.n.child(ctx, e.attr, out)
	if cn, ok := c.Operations().(*node); ok && e.noXattrs {
		cn.knowNoXattrs()
	}
	return c, 0
}

// Fsync implements fs.NodeFsyncer: for a file it flushes like close; for
// a directory it sends its pending attribute changes, waits for the held
// unlinks, renames and rmdirs and creates the files pending in it (other metadata changes are
// committed before they return).
func (n *node) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		return h.Fsync(ctx, flags)
	}
	ctx, cancel := n.r.detach(ctx)
	defer cancel()
	if err := n.r.flushDirs(ctx, []uint64{n.ino()}); err != nil {
		return n.errno("fsync", err)
	}
	if err := n.r.syncHeld(ctx); err != nil {
		return n.errno("fsync", err)
	}
	return n.errno("fsync", n.r.materializeIn(ctx, n.ino()))
}

// Statfs implements fs.NodeStatfser. Where metadata knows no capacity (an
// in-process Local), the chunk store's usage is shown if it reports one,
// else a nominal 1 PiB, so that df and programs checking free space work.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpStatfs, Ino: n.ino()})
	if err != nil {
		return n.errno("statfs", err)
	}
	s := resp.Statfs
	if s.Bsize == 0 {
		s.Bsize = 4096
	}
	if s.Blocks == 0 {
		n.r.nominalSpace(ctx, &s)
	}
	out.Bsize = s.Bsize
	out.Frsize = s.Bsize
	out.Blocks = s.Blocks
	out.Bfree = s.Bfree
	out.Bavail = s.Bavail
	out.Files = s.Files
	out.Ffree = s.Ffree
	out.NameLen = s.Namelen
	return 0
}

const xattrCapability = "security.capability"

// aclPrefix starts the names of POSIX ACL xattrs. shoal does not implement
// ACLs (the mount does not ask the kernel for FUSE_POSIX_ACL), so it
// refuses them with EOPNOTSUPP, as a local file system mounted noacl does:
// stored as plain xattrs they would look like ACLs that nothing enforces.
// Programs then fall back to chmod (cp -a does).
const aclPrefix = "system.posix_acl_"

// Getxattr implements fs.NodeGetxattrer: with a dest too small it returns
// the value's size and ERANGE (go-fuse turns that into the size answer
// when the caller asked for the size only).
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if strings.HasPrefix(attr, aclPrefix) {
		return 0, syscall.EOPNOTSUPP
	}
	if n.r.isPending(n.ino()) || n.hasNoXattrs() {
		return 0, syscall.ENODATA // a new file has no xattrs yet, a listed one may have none
	}
	var val []byte
	if attr == xattrCapability {
		n.mu.Lock()
		if time.Now().Before(n.capTill) {
			val, errno := n.capVal, n.capErr
			n.mu.Unlock()
			if errno != 0 {
				return 0, errno
			}
			return copyXattr(dest, val)
		}
		n.mu.Unlock()
	}
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpGetXattr, Ino: n.ino(), Name: cluster.Name(attr)})
	errno := n.errno("getxattr", err)
	if err == nil {
		val = resp.Value
	}
	if attr == xattrCapability && (errno == 0 || errno == syscall.ENODATA) {
		n.mu.Lock()
		n.capVal, n.capErr, n.capTill = val, errno, time.Now().Add(n.r.opts.AttrTimeout)
		n.mu.Unlock()
	}
	if errno != 0 {
		return 0, errno
	}
	return copyXattr(dest, val)
}

func copyXattr(dest, val []byte) (uint32, syscall.Errno) {
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}

// forgetCap drops the cached security.capability answer, and the
// knowledge that n has no extended attributes.
func (n *node) forgetCap() {
	n.mu.Lock()
	n.capTill, n.noXattrsTill = time.Time{}, time.Time{}
	n.mu.Unlock()
}

// knowNoXattrs records that n had no extended attributes just now.
func (n *node) knowNoXattrs() {
	n.mu.Lock()
	n.noXattrsTill = time.Now().Add(n.r.opts.AttrTimeout)
	n.mu.Unlock()
}

// hasNoXattrs reports whether n is known to have no extended attributes.
func (n *node) hasNoXattrs() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.Now().Before(n.noXattrsTill)
}

// Setxattr implements fs.NodeSetxattrer.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	const create, replace = 1, 2 // XATTR_CREATE, XATTR_REPLACE
	if strings.HasPrefix(attr, aclPrefix) {
		return syscall.EOPNOTSUPP
	}
	req := &cluster.MetaRequest{Op: cluster.OpSetXattr, Ino: n.ino(), Name: cluster.Name(attr), Value: data}
	if flags&create != 0 {
		req.Flags |= cluster.XattrCreate
	}
	if flags&replace != 0 {
		req.Flags |= cluster.XattrReplace
	}
	n.forgetCap()
	defer n.stale() // its ctime changes
	_, err := n.r.do(ctx, req)
	return n.errno("setxattr", err)
}

// Listxattr implements fs.NodeListxattrer: names NUL-terminated, with
// ERANGE and the needed size if dest is too small.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if n.r.isPending(n.ino()) || n.hasNoXattrs() {
		return 0, 0 // a new file has no xattrs yet, a listed one may have none
	}
	resp, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpListXattr, Ino: n.ino()})
	if err != nil {
		return 0, n.errno("listxattr", err)
	}
	var buf []byte
	for _, name := range resp.Names {
		buf = append(buf, name...)
		buf = append(buf, 0)
	}
	return copyXattr(dest, buf)
}

// Removexattr implements fs.NodeRemovexattrer.
func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if strings.HasPrefix(attr, aclPrefix) {
		return syscall.EOPNOTSUPP
	}
	n.forgetCap()
	defer n.stale() // its ctime changes
	_, err := n.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpRemoveXattr, Ino: n.ino(), Name: cluster.Name(attr)})
	return n.errno("removexattr", err)
}
