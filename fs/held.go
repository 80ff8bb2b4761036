package fs

// This file holds unlinks, renames and rmdirs answered before metadata
// has them (held ops). The kernel holds a directory's lock across an
// unlink, rename or rmdir in it, so these reach the mount one after
// another per directory, and each used to wait for its Raft commit: rm -rf
// of a tree, deleting or renaming many files of one directory from
// several processes, went at one commit per file whatever the cluster
// could do. The removal of the
// Go tree took 15 s on one node and 32–38 s on three against 3–4 s
// through the go-fuse loopback, and renames went at 6–9% of the
// loopback's rate.
//
// So the mount answers at once, and sends in the background (up to
// maxHeldSenders at a time; metadata batches them into a few Raft
// entries):
//
//   - the unlink of a file that no one holds open in it;
//   - a plain rename (or RENAME_NOREPLACE) of a file that no one holds
//     open in it, onto a name that is free or holds another such file;
//   - the rmdir of a directory the mount knows to be empty (dirnames.go:
//     rm -r has just listed it and unlinked what it held).
//
// Before it answers it updates the names it knows, so a lookup of either
// name is answered here or asked of metadata, which waits as below. The
// rest stays synchronous: a file held open must stay readable until its
// last close, which metadata learns of from the answer, a directory's
// rename has errors (ENOTEMPTY, EXDEV, a loop) the mount cannot foresee,
// and so has the rmdir of a directory whose names it does not know.
//
// Every other request this mount sends waits first for the held ops
// before it that it could see (awaitHeld, in send): a request that
// changes anything waits for all of them, so a create, link or rmdir sees
// the directories as the ops left them and a directory's held attribute
// changes land after the ops that came before them; a readdir waits for
// those in its directory, a lookup for those of its name, a getattr (and
// the other reads of one inode) for those of its inode (the unlinked,
// replaced or moved file, the removed directory) or in it, as a
// directory. Held ops themselves go out in parallel, but one waits for
// the ops held before it that share a name or a file with it
// (conflicts): a rename onto b after an unlink of b, or of c after a
// rename to c, or a rmdir after the unlinks in the directory, lands in
// order. The kernel asks for a directory's attributes before each unlink,
// rename or rmdir (it checks the caller's right to write in it, and the
// last change moved them): the mount answers from the attributes it holds
// while they are fresh, with the held ops' times laid on, so that rm -rf
// does not wait there either. fsync of a directory, and unmount
// (Root.Sync), wait for all held ops, which is what makes them durable,
// as POSIX has it. Other mounts see a held op once it is sent, within a
// round trip or two.
//
// The kernel checks the caller's right and the types of both names
// before it asks (the mount runs with default_permissions), so metadata
// refuses a held op only if another mount changed the names meanwhile
// (for an unlink, removing the name: the same end; for a rmdir, making a
// name in the directory: ENOTEMPTY), or if the cluster stays unreachable
// past the client's retries. Such a failure is logged, the directories'
// names are asked for again (an unlinked name or a removed directory is
// back, a renamed file under its old name once the kernel's entry times
// out),
// and the next fsync of a directory or Sync returns it.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"shoal/cluster"
)

// Bounds on held ops: at most maxHeldSenders are sent at once, and at
// most maxHeldOps wait in the mount; an op beyond that waits for room.
const (
	maxHeldSenders = 32
	maxHeldOps     = 1024
)

// heldOps is the unlinks, renames and rmdirs a mount has answered and not yet
// sent, or sent and not yet seen answered, in the order they were held.
type heldOps struct {
	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, whenever one is done
	next    uint64        // number of the next op held
	queue   []heldOp      // held, not yet sent, oldest first
	open    []heldOp      // held and not yet done, oldest first
	senders int           // goroutines sending
	err     error         // failures since the last fsync or Sync took them
}

// heldOp is one unlink, rename or rmdir request, its number in the order
// held, and the inode number of the file a rename moves or of the
// directory a rmdir removes.
type heldOp struct {
	seq   uint64
	req   *cluster.MetaRequest
	inode uint64
}

// answerLater holds op without waiting for metadata, once what op must
// come after is sent (prepare: the held attribute changes of directories,
// the create of a pending file it names).
func (r *Root) answerLater(ctx context.Context, op heldOp) error {
	ctx, cancel := r.detach(ctx)
	defer cancel()
	if err := r.prepare(ctx, op.req); err != nil {
		return err
	}
	return r.hold(ctx, op)
}

// unlinkLater unlinks req's name in directory n, whose file no one holds
// open in the mount (req has DropUnopened), without waiting for metadata,
// and forgets the name.
func (r *Root) unlinkLater(ctx context.Context, n *node, req *cluster.MetaRequest) error {
	if err := r.answerLater(ctx, heldOp{req: req}); err != nil {
		return err
	}
	r.known.drop(n.ino(), string(req.Name))
	n.changedHere(time.Now().UnixNano())
	return nil
}

// rmdirLater removes req's name in directory n, directory dir, which the
// mount knows to be empty, without waiting for metadata.
func (r *Root) rmdirLater(ctx context.Context, n *node, dir uint64, req *cluster.MetaRequest) error {
	if err := r.answerLater(ctx, heldOp{req: req, inode: dir}); err != nil {
		return err
	}
	r.known.drop(n.ino(), string(req.Name))
	r.known.forget(dir)
	n.changedHere(time.Now().UnixNano())
	n.mu.Lock()
	if n.attr.Nlink > 2 {
		n.attr.Nlink-- // its ".." is gone
	}
	n.mu.Unlock()
	return nil
}

// renameLater renames req's name in directory n to its new name in
// directory to without waiting for metadata; moved is the renamed file,
// which no one holds open in the mount, as no one does the file the new
// name held, if any (req has DropUnopened then).
func (r *Root) renameLater(ctx context.Context, n, to *node, moved *node, req *cluster.MetaRequest) error {
	if err := r.answerLater(ctx, heldOp{req: req, inode: moved.ino()}); err != nil {
		return err
	}
	r.known.drop(n.ino(), string(req.Name))
	r.known.add(to.ino(), string(req.NewName))
	now := time.Now().UnixNano()
	n.changedHere(now)
	to.changedHere(now)
	moved.stale() // its ctime changes
	return nil
}

// changedHere records that the mount answered a change to directory n at
// time now that metadata will make too: its mtime and ctime move to now,
// and its attributes stay exactly as fresh as they were.
func (n *node) changedHere(now int64) {
	n.mu.Lock()
	n.attr.Mtime, n.attr.Ctime = now, now
	n.mu.Unlock()
}

// hold answers for metadata: it queues op, whose files the mount does not
// hold open, to be sent in the background, and makes sure a sender runs.
// It waits while maxHeldOps are held already.
func (r *Root) hold(ctx context.Context, op heldOp) error {
	h := &r.held
	h.mu.Lock()
	if err := h.waitWhile(ctx, func() bool { return len(h.open) >= maxHeldOps }); err != nil {
		h.mu.Unlock()
		return fmt.Errorf("%s: %w", op, err)
	}
	op.seq = h.next
	h.next++
	h.queue = append(h.queue, op)
	h.open = append(h.open, op)
	heldOpsGauge.Inc()
	if h.senders < maxHeldSenders {
		h.senders++
		go r.sendHeld()
	}
	h.mu.Unlock()
	return nil
}

// String names op for errors and logs.
func (op heldOp) String() string {
	switch op.req.Op {
	case cluster.OpRename:
		return fmt.Sprintf("rename %q in directory %d to %q in directory %d", op.req.Name, op.req.Ino, op.req.NewName, op.req.NewParent)
	case cluster.OpRmdir:
		return fmt.Sprintf("rmdir %q in directory %d", op.req.Name, op.req.Ino)
	}
	return fmt.Sprintf("unlink %q in directory %d", op.req.Name, op.req.Ino)
}

// sendHeld sends held ops until none is left to send. Each waits first
// for the ops held before it that it conflicts with.
func (r *Root) sendHeld() {
	h := &r.held
	for {
		h.mu.Lock()
		if len(h.queue) == 0 {
			h.senders--
			h.mu.Unlock()
			return
		}
		op := h.queue[0]
		h.queue = h.queue[1:]
		h.mu.Unlock()

		ctx, cancel := r.bgContext()
		err := r.awaitHeld(ctx, op.seq, op.conflicts)
		var resp *cluster.MetaResponse
		if err == nil {
			resp, err = r.sendNow(ctx, op.req)
		}
		cancel()
		switch {
		case err == nil:
			if resp.Removed.Orphaned {
				// The name held another file than the mount knew (another
				// mount replaced it), or a rename replaced a file; dropping
				// that one waits for the other held ops, so not here.
				go func() {
					ctx, cancel := r.bgContext()
					defer cancel()
					r.removed(ctx, resp.Removed)
				}()
			}
		case errors.Is(err, syscall.ENOENT) && op.req.Op == cluster.OpUnlink:
			err = nil // gone already
		default:
			err = fmt.Errorf("%s: %w", op, err)
			r.log.Error("shoal fs: an unlink, rename or rmdir already answered failed; the names are as metadata has them", "err", err)
		}

		h.mu.Lock()
		if err != nil {
			h.err = errors.Join(h.err, err)
		}
		for i, o := range h.open {
			if o.seq == op.seq {
				h.open = append(h.open[:i], h.open[i+1:]...)
				break
			}
		}
		close(h.changed)
		h.changed = make(chan struct{})
		heldOpsGauge.Dec()
		h.mu.Unlock()
	}
}

// awaitHeld waits until metadata has answered every op held before number
// before for which must is true.
func (r *Root) awaitHeld(ctx context.Context, before uint64, must func(heldOp) bool) error {
	h := &r.held
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.waitWhile(ctx, func() bool {
		return slices.ContainsFunc(h.open, func(op heldOp) bool { return op.seq < before && must(op) })
	})
	if err != nil {
		return fmt.Errorf("wait for held unlinks, renames and rmdirs: %w", err)
	}
	return nil
}

// waitWhile waits, with h.mu held on entry and on return, until cond
// (called with h.mu held) is false after an op is done, or ctx ends.
func (h *heldOps) waitWhile(ctx context.Context, cond func() bool) error {
	for cond() {
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			h.mu.Lock()
			return ctx.Err()
		}
		h.mu.Lock()
	}
	return nil
}

// awaitHeldFor waits for the ops held so far that request req, sent now,
// could see (see above); all of them if req is nil.
func (r *Root) awaitHeldFor(ctx context.Context, req *cluster.MetaRequest) error {
	r.held.mu.Lock()
	before := r.held.next
	r.held.mu.Unlock()
	return r.awaitHeld(ctx, before, func(op heldOp) bool { return op.seenBy(req) })
}

// names returns the directory entries op removes or makes, as directory
// inode number and name.
func (op heldOp) names() []dirName {
	names := []dirName{{op.req.Ino, string(op.req.Name)}}
	if op.req.Op == cluster.OpRename {
		names = append(names, dirName{op.req.NewParent, string(op.req.NewName)})
	}
	return names
}

// dirName is one name in one directory.
type dirName struct {
	dir  uint64
	name string
}

// touches reports whether op changes directory or file ino: a directory
// it changes a name of, the file it unlinks or replaces (NewIno, with
// DropUnopened), the file it moves or the directory it removes.
func (op heldOp) touches(ino uint64) bool {
	if ino == 0 {
		return false
	}
	return slices.ContainsFunc(op.names(), func(n dirName) bool { return n.dir == ino }) ||
		ino == op.req.NewIno || ino == op.inode
}

// seenBy reports whether request req, sent now, could see the effect of
// op: whether it must wait for op. Only reads of one name, one inode or
// one directory can tell that an op elsewhere has not happened yet, and a
// reservation of inode numbers cannot tell at all.
func (op heldOp) seenBy(req *cluster.MetaRequest) bool {
	if req == nil {
		return true
	}
	switch req.Op {
	case cluster.OpAllocInodes:
		return false
	case cluster.OpLookup:
		return slices.Contains(op.names(), dirName{req.Ino, string(req.Name)})
	case cluster.OpReadDir:
		return slices.ContainsFunc(op.names(), func(n dirName) bool { return n.dir == req.Ino })
	case cluster.OpGetAttr, cluster.OpGetXattr, cluster.OpListXattr, cluster.OpReadlink, cluster.OpLayout:
		return op.touches(req.Ino)
	}
	return true
}

// conflicts reports whether op must reach metadata after earlier, held
// before it: they share a name or a file. Unlinks and renames of other
// names and files commute.
func (op heldOp) conflicts(earlier heldOp) bool {
	for _, n := range op.names() {
		if slices.Contains(earlier.names(), n) {
			return true
		}
	}
	return earlier.touches(op.req.NewIno) || earlier.touches(op.inode)
}

// syncHeld waits for the ops held so far and returns, once, the failures
// of held ops since the last call, as EIO: the call that fails is an
// fsync or an unmount, not the op.
func (r *Root) syncHeld(ctx context.Context) error {
	if err := r.awaitHeldFor(ctx, nil); err != nil {
		return err
	}
	h := &r.held
	h.mu.Lock()
	err := h.err
	h.err = nil
	h.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", syscall.EIO, err)
	}
	return nil
}
