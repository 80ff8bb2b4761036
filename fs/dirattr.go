package fs

// This file holds the mount's knowledge of directory attributes. Each
// create, mkdir or unlink in a directory changes its mtime, so the kernel
// drops the attributes it cached for the directory and asks for them again
// (GETATTR) before the next create there: one more round trip per file of
// "cp -r". But the metadata's answer to such an op carries the directory's
// attributes as the op left them (MetaResponse.Dir), so the mount knows
// them exactly, and answers the GETATTR itself for AttrTimeout, the time
// the kernel would have cached them anyway: changes other mounts make show
// up as late as they would through the kernel's cache. An op that changes
// a directory without saying how (xattrs) makes the mount ask again.

import (
	"syscall"
	"time"

	"shoal/cluster"
)

// rememberFresh records a as n's exact attributes as of now.
func (n *node) rememberFresh(a cluster.Attr) {
	n.mu.Lock()
	n.attr, n.hasAttr, n.fresh = a, true, time.Now()
	n.mu.Unlock()
}

// stale forgets that n's attributes are exact.
func (n *node) stale() {
	n.mu.Lock()
	n.fresh = time.Time{}
	n.mu.Unlock()
}

// freshAttr returns n's attributes if they were exact less than
// AttrTimeout ago.
func (n *node) freshAttr() (cluster.Attr, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fresh.IsZero() || time.Since(n.fresh) >= n.r.opts.AttrTimeout {
		return cluster.Attr{}, false
	}
	return n.attr, true
}

// register makes n the node that directory n's inode number finds: the
// kernel may hold more than one node of a directory over time, and the
// one it sends requests to is the one to keep up to date.
func (n *node) register() {
	if !n.isDir() {
		return
	}
	if v, ok := n.r.dirs.Load(n.ino()); !ok || v.(*node) != n {
		n.r.dirs.Store(n.ino(), n)
	}
}

// namedDirs returns the inode numbers a request names that may be
// directories it reads or changes: its inode, the new parent of a rename
// or of a file's commit, and the parent of the create a commit carries.
// Zero or repeated numbers may be among them.
func namedDirs(req *cluster.MetaRequest) []uint64 {
	inos := []uint64{req.Ino, req.NewParent}
	if req.Create != nil {
		inos = append(inos, req.Create.Ino)
	}
	return inos
}

// isDir reports whether n is a directory.
func (n *node) isDir() bool { return n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFDIR }

// dir returns the node of directory ino, if the kernel knows it.
func (r *Root) dir(ino uint64) *node {
	if v, ok := r.dirs.Load(ino); ok {
		return v.(*node)
	}
	return nil
}

// noteDirs updates what the mount knows of directory attributes after
// metadata answered req with resp.
func (r *Root) noteDirs(req *cluster.MetaRequest, resp *cluster.MetaResponse) {
	r.noteDir(resp.Dir, resp.DirBefore)
	r.noteDir(resp.NewDir, resp.NewDirBefore)
	switch req.Op {
	case cluster.OpGetAttr, cluster.OpSetAttr:
		if d := r.dir(req.Ino); d != nil && resp.Attr.Ino == req.Ino {
			d.rememberFresh(resp.Attr)
		}
	case cluster.OpRename:
		if resp.Dir == nil {
			// A rename onto the name's own inode changes nothing and
			// says so without dir; be safe and ask again.
			r.noteDirsFailed(req)
		}
	case cluster.OpSetXattr, cluster.OpRemoveXattr:
		r.noteDirsFailed(req)
	}
}

// noteDir records that an op took directory dir.Ino from ctime before to
// dir, if the mount knows that directory.
func (r *Root) noteDir(dir *cluster.Attr, before int64) {
	if dir == nil {
		return
	}
	if d := r.dir(dir.Ino); d != nil {
		d.rememberFresh(*dir)
	}
	r.known.changed(dir.Ino, before, dir.Ctime)
}

// noteDirsFailed forgets that the directories req may have changed have
// exact attributes: after a failed request the mount cannot tell whether
// it took effect.
func (r *Root) noteDirsFailed(req *cluster.MetaRequest) {
	switch req.Op {
	case cluster.OpLookup, cluster.OpGetAttr, cluster.OpReadDir, cluster.OpReadlink, cluster.OpGetXattr,
		cluster.OpListXattr, cluster.OpLayout, cluster.OpStatfs:
		return
	}
	for _, ino := range namedDirs(req) {
		if d := r.dir(ino); d != nil {
			d.stale()
		}
		r.known.forget(ino)
	}
}

// OnForget implements fs.NodeOnForgetter: the kernel forgot n.
func (n *node) OnForget() {
	n.r.dirs.CompareAndDelete(n.ino(), n)
}
