package fs

// This file holds deferred directory attribute changes. cp -a, tar and
// rsync set the times, owner and mode of every directory they make, once
// they have filled it: three SETATTRs, each a Raft entry and a log fsync
// if sent as it comes, a fifth of the metadata writes of copying a source
// tree. The mount answers such a change (chmod, chown, utimens of a
// directory) at once, from the attributes it holds with the change laid
// over them (pendingAttrs), and sends the changes a directory gathered as
// one OpSetAttr Options.DirAttrDelay later. It sends them sooner, and waits for
// them, when something depends on their order or their durability:
//
//   - a request naming the directory (its inode, or as the parent of a
//     name it creates, removes, looks up or renames into), and any rmdir
//     or rename, which name a directory by its parent only (materializeFor);
//   - fsync of the directory (Node.Fsync), the way to make a directory's
//     metadata durable in POSIX;
//   - unmount (Root.Sync).
//
// So another mount sees the change within that delay and a round trip,
// well inside the AttrTimeout it may cache attributes for anyway. The
// kernel checks the caller's right to make the change before it asks (the
// mount runs with default_permissions), and metadata refuses a directory's
// chmod, chown or utimens only if the directory is gone, and then the
// change is dropped. A send that fails otherwise (the cluster unreachable
// past the client's retries) fails the call that waited for it, or is
// logged if none did; the change stays for the next send, and the
// directory's attributes are asked for again.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"shoal/cluster"
)

// DefaultDirAttrDelay is how long a directory's attribute changes wait in
// the mount for more (cp -a makes three in a row) before they are sent,
// unless Options.DirAttrDelay says otherwise.
const DefaultDirAttrDelay = 5 * time.Millisecond

// dirChange is the attribute changes of one directory not yet in metadata.
type dirChange struct {
	pend    pendingAttrs
	version uint64 // counts folds, so that a send knows if more came meanwhile
}

// deferDirAttr takes setattr request req for directory n into the mount's
// pending changes and returns the attributes n has with them, if it can:
// req changes only foldable attributes and the mount holds n's attributes.
func (r *Root) deferDirAttr(n *node, req *cluster.MetaRequest) (cluster.Attr, bool) {
	if req.Valid&^foldable != 0 || r.opts.DirAttrDelay < 0 {
		return cluster.Attr{}, false
	}
	n.mu.Lock()
	a, ok := n.attr, n.hasAttr
	n.mu.Unlock()
	if !ok {
		return cluster.Attr{}, false
	}
	r.dirMu.Lock()
	c := r.dirChanges[req.Ino]
	if c == nil {
		c = &dirChange{}
		r.dirChanges[req.Ino] = c
		r.ndirChanges.Add(1)
	}
	c.pend.fold(req)
	c.version++
	c.pend.apply(&a)
	if !r.dirTimerArmed {
		r.dirTimerArmed = true
		time.AfterFunc(r.opts.DirAttrDelay, r.flushDirsLater)
	}
	r.dirMu.Unlock()
	return a, true
}

// overlayDir lays the pending changes of directory a.Ino over a.
func (r *Root) overlayDir(a *cluster.Attr) {
	if r.ndirChanges.Load() == 0 {
		return
	}
	r.dirMu.Lock()
	if c := r.dirChanges[a.Ino]; c != nil {
		c.pend.apply(a)
	}
	r.dirMu.Unlock()
}

// flushDirsLater sends every pending directory change, in the background
// once Options.DirAttrDelay has passed since the first of them.
func (r *Root) flushDirsLater() {
	r.dirMu.Lock()
	r.dirTimerArmed = false
	r.dirMu.Unlock()
	ctx, cancel := r.bgContext()
	defer cancel()
	if err := r.flushDirs(ctx, nil); err != nil {
		r.log.Warn("shoal fs: send directory attribute changes", "err", err)
	}
}

// flushDirsFor sends, before req, the pending changes req must come after:
// those of the directories it names, or all of them for a rmdir or rename.
func (r *Root) flushDirsFor(ctx context.Context, req *cluster.MetaRequest) error {
	if r.ndirChanges.Load() == 0 {
		return nil
	}
	switch req.Op {
	case cluster.OpRmdir, cluster.OpRename:
		return r.flushDirs(ctx, nil)
	}
	return r.flushDirs(ctx, namedDirs(req))
}

// flushDirs sends the pending changes of the directories inos (each once,
// however often it is named), or of all directories if inos is nil, and waits for metadata to hold them. One
// send runs at a time, so a directory's changes arrive in order. A change
// to a directory removed meanwhile is dropped.
func (r *Root) flushDirs(ctx context.Context, inos []uint64) error {
	if r.ndirChanges.Load() == 0 {
		return nil
	}
	r.dirSendMu.Lock()
	defer r.dirSendMu.Unlock()
	type send struct {
		ino     uint64
		pend    pendingAttrs
		version uint64
	}
	var sends []send
	r.dirMu.Lock()
	if inos == nil {
		for ino, c := range r.dirChanges {
			sends = append(sends, send{ino, c.pend, c.version})
		}
	} else {
		for i, ino := range inos {
			if c := r.dirChanges[ino]; c != nil && !slices.Contains(inos[:i], ino) {
				sends = append(sends, send{ino, c.pend, c.version})
			}
		}
	}
	r.dirMu.Unlock()
	var errs []error
	for _, s := range sends {
		p := s.pend
		req := &cluster.MetaRequest{Op: cluster.OpSetAttr, Ino: s.ino, Valid: p.valid, Mode: p.mode, Uid: p.uid, Gid: p.gid,
			Atime: p.atime, Mtime: p.mtime, Now: p.ctime}
		_, err := r.send(ctx, req)
		switch {
		case errors.Is(err, syscall.ENOENT):
			err = nil // removed: nothing left to change
		case err != nil:
			errs = append(errs, fmt.Errorf("set attributes of directory %d: %w", s.ino, err))
			if d := r.dir(s.ino); d != nil {
				d.stale()
			}
			continue // kept for the next try
		}
		r.dirMu.Lock()
		if c := r.dirChanges[s.ino]; c != nil && c.version == s.version {
			delete(r.dirChanges, s.ino)
			r.ndirChanges.Add(-1)
		}
		r.dirMu.Unlock()
	}
	return errors.Join(errs...)
}

// Sync sends to metadata what the mount still holds that needs no open
// file to be sent: the directory attribute changes of the last
// Options.DirAttrDelay, and the held unlinks, renames and rmdirs (held.go), whose
// failures since the last fsync of a directory it returns. Call it after
// unmounting, before closing the metadata client; open files were flushed
// when the kernel released them.
func (r *Root) Sync(ctx context.Context) error {
	return errors.Join(r.flushDirs(ctx, nil), r.syncHeld(ctx))
}
