package fs

// This file holds deferred creates. A regular file created through this
// mount is not created in metadata at once: fs numbers it from a range of
// inode numbers reserved with OpAllocInodes, answers the kernel, and sends
// the create inside the file's first commit (MetaRequest.Create), so that
// create, write and close of a small file cost one Raft entry. Until then
// the file is pending: it exists only in this mount (other mounts see it
// at its first close or fsync, the close-to-open consistency they get for
// data anyway), and any request that needs it to exist in metadata (a
// lookup or unlink of its name, a readdir or rmdir of its directory, a
// link, rename or xattr change of it, a directory fsync) first creates it
// on its own ("materializes" it).

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"shoal/cluster"
)

// inoBatch is how many inode numbers one OpAllocInodes reserves.
const inoBatch = 1024

// pendingName is where a pending file will be created.
type pendingName struct {
	parent uint64
	name   string
}

// allocIno returns an inode number reserved for this mount.
func (r *Root) allocIno(ctx context.Context) (uint64, error) {
	r.inoMu.Lock()
	defer r.inoMu.Unlock()
	if r.inoNext == r.inoEnd {
		ctx, cancel := r.detach(ctx)
		defer cancel()
		resp, err := r.send(ctx, &cluster.MetaRequest{Op: cluster.OpAllocInodes, Size: inoBatch})
		if err != nil {
			return 0, fmt.Errorf("reserve inode numbers: %w", err)
		}
		r.inoNext, r.inoEnd = resp.FirstIno, resp.FirstIno+inoBatch
	}
	ino := r.inoNext
	r.inoNext++
	return ino, nil
}

// createDeferred makes regular file name in directory parent as a pending
// file numbered ino with attributes a, open once, and returns its state.
// It reports false, and does nothing, if the block size is not known yet
// (the first create of a mount goes to metadata to learn it).
func (r *Root) createDeferred(parent uint64, name string, a cluster.Attr) (*file, bool) {
	bs := r.blockSize.Load()
	if bs == 0 {
		return nil, false
	}
	f := r.openFile(a.Ino, &cluster.Layout{BlockSize: bs}, parent)
	f.mu.Lock()
	// Now is the time the kernel was told, whenever the create is sent.
	f.create = &cluster.MetaRequest{Op: cluster.OpCreate, Ino: parent, Name: cluster.Name(name), Mode: a.Mode, Uid: a.Uid, Gid: a.Gid, NewIno: a.Ino, Flags: cluster.CreateExcl, Now: a.Ctime}
	f.changed = true
	f.mtime = a.Mtime
	f.publish()
	f.mu.Unlock()
	r.mu.Lock()
	r.pending[pendingName{parent, name}] = f
	r.npending.Add(1)
	r.mu.Unlock()
	return f, true
}

// created forgets f as pending once metadata holds it. Called with f.mu
// held.
func (r *Root) created(f *file) {
	k := pendingName{f.create.Ino, string(f.create.Name)}
	f.create = nil
	r.mu.Lock()
	if r.pending[k] == f {
		delete(r.pending, k)
		r.npending.Add(-1)
	}
	r.mu.Unlock()
}

// isPending reports whether inode ino is a pending file.
func (r *Root) isPending(ino uint64) bool {
	if r.npending.Load() == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.pending {
		if f.ino == ino {
			return true
		}
	}
	return false
}

// materializeFor creates in metadata the pending files that req needs to
// exist there: its inode, the names it looks up, removes or renames, every
// file of a directory it lists. A commit carrying its own create needs
// nothing.
func (r *Root) materializeFor(ctx context.Context, req *cluster.MetaRequest) error {
	if r.npending.Load() == 0 || req.Create != nil {
		return nil
	}
	var need []*file
	r.mu.Lock()
	for k, f := range r.pending {
		switch {
		case f.ino == req.Ino,
			k.parent == req.Ino && (k.name == string(req.Name) || req.Op == cluster.OpReadDir),
			k.parent == req.NewParent && k.name == string(req.NewName):
			need = append(need, f)
		}
	}
	r.mu.Unlock()
	return materialize(ctx, need)
}

// materializeIn creates in metadata every pending file of directory dir,
// before the directory is removed or fsynced.
func (r *Root) materializeIn(ctx context.Context, dir uint64) error {
	if r.npending.Load() == 0 {
		return nil
	}
	var need []*file
	r.mu.Lock()
	for k, f := range r.pending {
		if k.parent == dir {
			need = append(need, f)
		}
	}
	r.mu.Unlock()
	return materialize(ctx, need)
}

func materialize(ctx context.Context, files []*file) error {
	for _, f := range files {
		if err := f.materialize(ctx); err != nil {
			return err
		}
	}
	return nil
}

// materialize creates pending file f in metadata now, with its local
// changes still to be committed.
func (f *file) materialize(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.create == nil {
		return nil
	}
	_, err := f.r.send(ctx, f.create)
	switch {
	case errors.Is(err, syscall.EEXIST):
		// Another mount made the name meanwhile: it is theirs, and this
		// file's commits fail (ENOENT) from now on.
		f.r.log.Warn("shoal fs: name of a new file taken by another mount", "name", f.create.Name, "ino", f.ino)
	case err != nil:
		return fmt.Errorf("create %q (inode %d): %w", f.create.Name, f.ino, err)
	}
	f.r.created(f)
	return nil
}
