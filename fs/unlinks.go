package fs

// This file holds unlinks answered before metadata has them (held
// unlinks). The kernel holds a directory's lock across an unlink in it,
// so unlinks in one directory reach the mount one after another, and each
// used to wait for its Raft commit: rm -rf of a tree, or deleting many
// files of one directory from several processes, went at one commit per
// file whatever the cluster could do, as the removal of the Go tree took
// 15 s on one node and 32–38 s on three against 3–4 s through the
// go-fuse loopback.
//
// So the mount answers the unlink of a file that no one holds open in it
// at once, and sends it in the background, up to maxUnlinkSenders at a
// time (metadata batches them into a few Raft entries). Before it answers
// it drops the name from the names it knows, so a lookup of it is
// answered "no such file" here or asked of metadata, which waits as below.
// A file held open keeps the unlink synchronous: it must stay readable
// until its last close, which metadata learns of from the unlink's answer.
//
// Every other request this mount sends waits first for the unlinks held
// before it that it could see (awaitUnlinks, in send): a request that
// changes anything waits for all of them, so a create, rename, link or
// rmdir sees the directory without the names and a directory's held
// attribute changes land after the unlinks that came before them; a
// readdir waits for those in its directory, a lookup for those of its
// name, a getattr (and the other reads of one inode) for those of its
// inode or in it, as a directory. The kernel asks for the directory's
// attributes before each unlink (it checks the caller's right to write
// in it, and the last unlink changed them): the mount answers from the
// attributes it holds while they are fresh, with the held unlinks' times
// laid on, so that rm -rf does not wait there either. fsync of the
// directory, and unmount (Root.Sync), wait for all held unlinks, which is
// what makes an unlink durable, as POSIX has it. Other mounts see an
// unlink once it is sent, within a round trip or two.
//
// The kernel checks the caller's right to unlink before it asks (the
// mount runs with default_permissions), so metadata refuses a held unlink
// only if the name is gone already (another mount removed it: the same
// end), or if the cluster stays unreachable past the client's retries.
// Such a failure is logged, the directory's names are asked for again
// (the name is back), and the next fsync of a directory or Sync returns
// it.

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

// Bounds on held unlinks: at most maxUnlinkSenders are sent at once, and
// at most maxHeldUnlinks wait in the mount; an unlink beyond that waits
// for room.
const (
	maxUnlinkSenders = 32
	maxHeldUnlinks   = 1024
)

// heldUnlinks is the unlinks a mount has answered and not yet sent, or
// sent and not yet seen answered, in the order they were held.
type heldUnlinks struct {
	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, whenever one is done
	next    uint64        // number of the next unlink held
	queue   []heldUnlink  // held, not yet sent, oldest first
	open    []heldUnlink  // held and not yet done, oldest first
	senders int           // goroutines sending
	err     error         // failures since the last fsync or Sync took them
}

// heldUnlink is one unlink request and its number in the order held.
type heldUnlink struct {
	seq uint64
	req *cluster.MetaRequest
}

// unlinkLater unlinks req's name in directory n, whose file no one holds
// open in the mount (req has DropUnopened), without waiting for metadata:
// it sends first what must come before (the directory's held attribute
// changes, the file's create if pending), holds the unlink, and forgets
// the name.
func (r *Root) unlinkLater(ctx context.Context, n *node, req *cluster.MetaRequest) error {
	ctx, cancel := r.detach(ctx)
	defer cancel()
	if err := r.prepare(ctx, req); err != nil {
		return err
	}
	if err := r.holdUnlink(ctx, req); err != nil {
		return err
	}
	r.known.drop(n.ino(), string(req.Name))
	n.changedHere(time.Now().UnixNano())
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

// holdUnlink answers for metadata: it queues unlink req, whose file the
// mount does not hold open, to be sent in the background, and makes sure
// a sender runs. It waits while maxHeldUnlinks are held already.
func (r *Root) holdUnlink(ctx context.Context, req *cluster.MetaRequest) error {
	h := &r.unlinks
	h.mu.Lock()
	for len(h.open) >= maxHeldUnlinks {
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("unlink %q in directory %d: %w", req.Name, req.Ino, ctx.Err())
		}
		h.mu.Lock()
	}
	seq := h.next
	h.next++
	h.queue = append(h.queue, heldUnlink{seq, req})
	h.open = append(h.open, heldUnlink{seq, req})
	heldUnlinksGauge.Inc()
	if h.senders < maxUnlinkSenders {
		h.senders++
		go r.sendUnlinks()
	}
	h.mu.Unlock()
	return nil
}

// sendUnlinks sends held unlinks until none is left to send.
func (r *Root) sendUnlinks() {
	h := &r.unlinks
	for {
		h.mu.Lock()
		if len(h.queue) == 0 {
			h.senders--
			h.mu.Unlock()
			return
		}
		u := h.queue[0]
		h.queue = h.queue[1:]
		h.mu.Unlock()

		ctx, cancel := r.bgContext()
		resp, err := r.sendNow(ctx, u.req)
		cancel()
		switch {
		case err == nil:
			if resp.Removed.Orphaned {
				// The name held another file than the mount knew (another
				// mount replaced it); dropping that one waits for the other
				// held unlinks, so not here.
				go func() {
					ctx, cancel := r.bgContext()
					defer cancel()
					r.removed(ctx, resp.Removed)
				}()
			}
		case errors.Is(err, syscall.ENOENT):
			err = nil // gone already
		default:
			err = fmt.Errorf("unlink %q in directory %d: %w", u.req.Name, u.req.Ino, err)
			r.log.Error("shoal fs: an unlink already answered failed; the name is back", "err", err)
		}

		h.mu.Lock()
		if err != nil {
			h.err = errors.Join(h.err, err)
		}
		for i, o := range h.open {
			if o.seq == u.seq {
				h.open = append(h.open[:i], h.open[i+1:]...)
				break
			}
		}
		close(h.changed)
		h.changed = make(chan struct{})
		heldUnlinksGauge.Dec()
		h.mu.Unlock()
	}
}

// awaitUnlinks waits until metadata has answered every unlink held
// before it was called that req could see (see above); all of them if req
// is nil or changes anything.
func (r *Root) awaitUnlinks(ctx context.Context, req *cluster.MetaRequest) error {
	h := &r.unlinks
	h.mu.Lock()
	defer h.mu.Unlock()
	before := h.next
	for slices.ContainsFunc(h.open, func(u heldUnlink) bool { return u.seq < before && sees(req, u.req) }) {
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			h.mu.Lock()
			return fmt.Errorf("wait for held unlinks: %w", ctx.Err())
		}
		h.mu.Lock()
	}
	return nil
}

// sees reports whether request req, sent now, could see the effect of
// unlink u: whether it must wait for u. Only reads of one name, one
// inode or one directory can tell that an unlink elsewhere has not
// happened yet, and a reservation of inode numbers cannot tell at all.
func sees(req, u *cluster.MetaRequest) bool {
	if req == nil {
		return true
	}
	switch req.Op {
	case cluster.OpAllocInodes:
		return false
	case cluster.OpLookup:
		return u.Ino == req.Ino && u.Name == req.Name
	case cluster.OpReadDir:
		return u.Ino == req.Ino
	case cluster.OpGetAttr, cluster.OpGetXattr, cluster.OpListXattr, cluster.OpReadlink, cluster.OpLayout:
		return u.Ino == req.Ino || u.NewIno == req.Ino
	}
	return true
}

// syncUnlinks waits for the unlinks held so far and returns, once, the
// failures of held unlinks since the last call.
func (r *Root) syncUnlinks(ctx context.Context) error {
	if err := r.awaitUnlinks(ctx, nil); err != nil {
		return err
	}
	h := &r.unlinks
	h.mu.Lock()
	err := h.err
	h.err = nil
	h.mu.Unlock()
	return err
}
