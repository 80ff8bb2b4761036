package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/chunkstore"
	"shoal/cluster"
)

// wblock is a block of an open file that differs from its committed
// layout. It is in one of three states:
//   - dirty: data holds its contents (len(data) bytes; the rest of the
//     block reads as zeros) and may still change;
//   - sealed: data is immutable and an upload of it is in flight;
//   - uploaded: data is nil and ref names the stored chunk, to be
//     committed at the next flush.
//
// A write to a sealed or uploaded block replaces the map entry with a new
// dirty wblock; an upload finishing for a replaced wblock is ignored.
type wblock struct {
	data   []byte
	sealed bool
	ref    cluster.Block
	hasRef bool
}

// file is the state of an open regular file, shared by all its handles:
// the cached committed layout, the blocks written since the last commit,
// the uploads in flight and a sticky upload error.
type file struct {
	r   *Root
	ino uint64

	// Guarded by r.mu.
	opens    int
	orphaned bool

	mu        sync.Mutex
	cond      sync.Cond // signalled when an upload finishes
	loaded    bool      // committed, bs and (unless changed) size are valid
	committed map[uint64]cluster.Block
	bs        uint64
	size      uint64 // the file's size including local changes
	mtime     int64  // the time of the last local write
	changed   bool   // local changes not yet committed
	blocks    map[uint64]*wblock
	inflight  int    // uploads running
	dirty     int64  // bytes held by dirty and sealed blocks
	err       error  // sticky: an upload failed
	nextRead  uint64 // block index after the last read, for read-ahead
	writeEnd  uint64 // end of the last write, to detect sequential writes
	pend      pendingAttrs
	create    *cluster.MetaRequest // while pending (pending.go): the create the next commit carries
	dir       atomic.Uint64        // a directory the file was opened in (openFile)

	// local is what Getattr overlays while there are local changes (nil
	// when there are none), published so that it need not wait for mu
	// (held across commits).
	local atomic.Pointer[localAttrs]
}

// pendingAttrs are attribute changes (chmod, chown, utimens) the mount
// holds instead of sending them at once: a file's while it has uncommitted
// writes, folded into its next commit (cluster.OpCommit with Valid), which
// is what lets "write, set times, set mode, close" cost one metadata round
// trip; a directory's for a moment (dirchanges.go).
type pendingAttrs struct {
	valid               uint32 // cluster.Set* bits
	mode, uid, gid      uint32
	atime, mtime, ctime int64
}

// fold adds the changes of setattr request req (only foldable bits) and
// stamps them with the time now.
func (p *pendingAttrs) fold(req *cluster.MetaRequest) {
	p.valid |= req.Valid & foldable
	if req.Valid&cluster.SetMode != 0 {
		p.mode = req.Mode
	}
	if req.Valid&cluster.SetUid != 0 {
		p.uid = req.Uid
	}
	if req.Valid&cluster.SetGid != 0 {
		p.gid = req.Gid
	}
	if req.Valid&cluster.SetAtime != 0 {
		p.atime = req.Atime
	}
	if req.Valid&cluster.SetMtime != 0 {
		p.mtime = req.Mtime
	}
	p.ctime = time.Now().UnixNano()
}

// apply makes a show the changes, as metadata will once it has them.
func (p *pendingAttrs) apply(a *cluster.Attr) {
	if p.valid&cluster.SetMode != 0 {
		a.Mode = a.Mode&syscall.S_IFMT | p.mode&07777
	}
	if p.valid&cluster.SetUid != 0 {
		a.Uid = p.uid
	}
	if p.valid&cluster.SetGid != 0 {
		a.Gid = p.gid
	}
	if p.valid&cluster.SetAtime != 0 {
		a.Atime = p.atime
	}
	if p.valid&cluster.SetMtime != 0 {
		a.Mtime = p.mtime
	}
	if p.valid != 0 {
		a.Ctime = max(a.Ctime, p.ctime)
	}
}

// foldable are the setattr bits the mount may hold instead of sending at
// once (pendingAttrs): a file with uncommitted writes keeps them for its
// next commit, a directory for Options.DirAttrDelay.
const foldable = cluster.SetMode | cluster.SetUid | cluster.SetGid | cluster.SetAtime | cluster.SetMtime

// localAttrs is a published copy of an open file's uncommitted size, mtime
// and pending attribute changes.
type localAttrs struct {
	size  uint64
	mtime int64
	pend  pendingAttrs
}

func newFile(r *Root, ino uint64) *file {
	f := &file{r: r, ino: ino, blocks: make(map[uint64]*wblock)}
	f.cond.L = &f.mu
	return f
}

// setLayout installs l as the committed layout. Called with f.mu held or
// before f is shared.
func (f *file) setLayout(l *cluster.Layout) {
	f.committed = make(map[uint64]cluster.Block, len(l.Blocks))
	for _, b := range l.Blocks {
		f.committed[b.Index] = b
	}
	f.bs = uint64(l.BlockSize)
	if !f.changed {
		f.size = l.Size
	}
	f.loaded = true
}

// load fetches the committed layout if it is not cached. Called with f.mu
// held.
func (f *file) load(ctx context.Context) error {
	if f.loaded {
		return nil
	}
	resp, err := f.r.do(ctx, &cluster.MetaRequest{Op: cluster.OpLayout, Ino: f.ino})
	if err != nil {
		return fmt.Errorf("layout of inode %d: %w", f.ino, err)
	}
	if resp.Layout.BlockSize == 0 {
		return fmt.Errorf("layout of inode %d: zero block size", f.ino)
	}
	f.setLayout(&resp.Layout)
	return nil
}

// invalidate forgets the committed layout, to be refetched, after a
// change made by metadata alone (truncate). Called with f.mu held and no
// local changes.
func (f *file) invalidate() {
	f.loaded = false
	f.committed = nil
	f.publish()
}

// publish copies the local changes for Getattr. Called with f.mu held.
func (f *file) publish() {
	if !f.changed {
		f.local.Store(nil)
		return
	}
	f.local.Store(&localAttrs{size: f.size, mtime: f.mtime, pend: f.pend})
}

// hasChanges reports whether f holds uncommitted writes.
func (f *file) hasChanges() bool { return f.local.Load() != nil }

// overlay replaces a's size, mtime and any pending attribute changes by
// the local ones if f holds uncommitted writes.
func (f *file) overlay(a *cluster.Attr) {
	l := f.local.Load()
	if l == nil {
		return
	}
	l.pend.apply(a)
	a.Size = l.size
	a.Mtime = l.mtime
}

// write copies data into the file at off. It never talks to metadata
// (beyond the first layout fetch); full blocks go to the chunk store in the
// background.
func (f *file) write(ctx context.Context, data []byte, off uint64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if err := f.load(ctx); err != nil {
		return 0, err
	}
	end := off + uint64(len(data))
	// A sequential writer's full blocks are uploaded at once; a random
	// writer's stay dirty (and may change again) until flush or until
	// dirty memory runs out.
	seq := off == f.writeEnd
	f.writeEnd = end
	for pos := off; pos < end; {
		idx, boff := pos/f.bs, pos%f.bs
		n := min(f.bs-boff, end-pos)
		wb, err := f.writable(ctx, idx, boff, n)
		if err != nil {
			return int(pos - off), err
		}
		if need := boff + n; uint64(len(wb.data)) < need {
			f.grow(wb, idx, need, boff)
		}
		copy(wb.data[boff:boff+n], data[pos-off:])
		if seq && uint64(len(wb.data)) == f.bs {
			f.seal(idx, wb)
		}
		pos += n
		if pos > f.size {
			f.size = pos
		}
	}
	f.mtime = time.Now().UnixNano()
	f.pend.valid &^= cluster.SetMtime // the write's mtime replaces an explicit one
	f.changed = true
	f.publish()
	// Past the mount's dirty bound, this file's blocks go out and the
	// writer waits for them (not for other files' blocks, which their own
	// writers, closes and fsyncs send).
	for f.dirty > 0 && f.r.dirty.Load() > f.r.opts.DirtyBytes && f.err == nil {
		f.sealAll()
		f.cond.Wait()
	}
	return len(data), nil
}

// extend grows the file to size bytes if it is smaller; the new bytes
// read as zeros. Like a write, it is committed at the next flush.
func (f *file) extend(ctx context.Context, size uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if err := f.load(ctx); err != nil {
		return err
	}
	if size > f.size {
		f.size = size
		f.mtime = time.Now().UnixNano()
		f.changed = true
		f.publish()
	}
	return nil
}

// writable returns block idx as a dirty wblock that a write of n bytes at
// boff may change, loading its current contents first unless the write
// replaces all of them.
func (f *file) writable(ctx context.Context, idx, boff, n uint64) (*wblock, error) {
	wb := f.blocks[idx]
	if wb != nil && wb.data != nil && !wb.sealed {
		return wb, nil
	}
	var cur []byte
	switch {
	case wb != nil && wb.data != nil: // sealed: copy on write
		cur = wb.data
	case wb != nil && wb.hasRef:
		b, release, err := f.chunkBytes(ctx, wb.ref, boff, n)
		if err != nil {
			return nil, err
		}
		defer release()
		cur = b
	default:
		if b, ok := f.committed[idx]; ok {
			bb, release, err := f.chunkBytes(ctx, b, boff, n)
			if err != nil {
				return nil, err
			}
			defer release()
			cur = bb
		}
	}
	if boff == 0 && n >= uint64(len(cur)) {
		cur = nil // the write replaces all there is
	}
	nb := &wblock{}
	if len(cur) > 0 {
		f.grow(nb, idx, uint64(len(cur)), 0)
		copy(nb.data, cur)
	}
	f.blocks[idx] = nb
	return nb, nil
}

// chunkBytes returns the contents of block b (its first b.Len bytes), or
// nil if a write of n bytes at boff replaces them all anyway, and the
// function to call once done with them.
func (f *file) chunkBytes(ctx context.Context, b cluster.Block, boff, n uint64) ([]byte, func(), error) {
	if b.Len == 0 || chunkstore.ID(b.ID).IsZero() || (boff == 0 && n >= uint64(b.Len)) {
		return nil, func() {}, nil
	}
	e, err := f.r.cache.get(ctx, chunkstore.ID(b.ID))
	if err != nil {
		return nil, nil, fmt.Errorf("load block %d of inode %d: %w", b.Index, f.ino, err)
	}
	return e.data[:min(len(e.data), int(b.Len))], func() { f.r.cache.release(e) }, nil
}

// grow extends wb.data to need bytes, reserving a whole block at once
// (from the Root's free list) except for a file's first block, which grows
// by doubling so that small files stay small. The new bytes before from
// are zeroed; those from there on are left for the caller to fill.
func (f *file) grow(wb *wblock, idx, need, from uint64) {
	old := uint64(len(wb.data))
	if uint64(cap(wb.data)) < need {
		var nd []byte
		if idx == 0 && need < f.bs {
			c := min(max(need, 2*uint64(cap(wb.data)), 4<<10), f.bs)
			nd = make([]byte, need, c)
		} else {
			nd = f.r.bufs.Get(int(f.bs))[:need]
		}
		copy(nd, wb.data)
		f.addDirty(int64(cap(nd)) - int64(cap(wb.data)))
		wb.data = nd
	}
	wb.data = wb.data[:need]
	if from > old {
		clear(wb.data[old:min(from, need)])
	}
}

// addDirty counts n more bytes (or fewer, if negative) of dirty and
// sealed blocks, for the file and for the mount. Called with f.mu held.
func (f *file) addDirty(n int64) {
	f.dirty += n
	f.r.dirty.Add(n)
	dirtyBytes.Add(float64(n))
}

// forget gives up the dirty blocks of a file the mount no longer keeps
// (its last handle released) that a flush did not commit (it failed, and
// said so): their bytes leave the mount's dirty count. Sealed blocks leave
// it when their uploads end.
func (f *file) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, wb := range f.blocks {
		if wb.data != nil && !wb.sealed {
			f.addDirty(-int64(cap(wb.data)))
			wb.data = nil
		}
	}
}

// seal freezes dirty block idx and uploads it in the background.
func (f *file) seal(idx uint64, wb *wblock) {
	wb.sealed = true
	f.inflight++
	go f.upload(idx, wb)
}

// sealAll seals every dirty block.
func (f *file) sealAll() {
	for idx, wb := range f.blocks {
		if wb.data != nil && !wb.sealed {
			f.seal(idx, wb)
		}
	}
}

// sealForCommit seals the dirty blocks that the next commit cannot carry
// inline: those over Options.InlineBytes, and any more once the inline
// bytes would pass cluster.MaxInlineCommit. The others stay dirty, to be
// sent inside the commit.
func (f *file) sealForCommit() {
	budget := cluster.MaxInlineCommit
	for idx, wb := range f.blocks {
		if wb.data == nil || wb.sealed {
			continue
		}
		if n := len(wb.data); n <= f.r.opts.InlineBytes && n <= budget {
			budget -= n
			continue
		}
		f.seal(idx, wb)
	}
}

// readAhead is how many blocks past a sequential reader of f are fetched:
// Options.ReadAhead, but no more than a quarter of the chunk cache holds.
// Blocks fetched ahead (twice as many may be in flight) must still be
// cached when the reader gets to them; with a 16 MiB cache and the
// default 8 blocks of 4 MiB, a 1 GiB read fetched 3 GiB, most blocks
// evicted before they were read and fetched again.
func (f *file) readAhead() uint64 {
	return min(uint64(f.r.opts.ReadAhead), uint64(f.r.opts.CacheBytes)/(4*f.bs))
}

// upload stores a sealed block's chunk and records the result.
func (f *file) upload(idx uint64, wb *wblock) {
	r := f.r
	start := time.Now()
	r.uploads <- struct{}{}
	uploadSeconds.WithLabelValues("wait").Observe(time.Since(start).Seconds())
	start = time.Now()
	id := chunkstore.Sum(wb.data)
	ctx, cancel := r.bgContext()
	err := r.chunks.Put(ctx, id, wb.data)
	if err == nil {
		chunkBytes.WithLabelValues("up").Add(float64(len(wb.data)))
		uploadSeconds.WithLabelValues("store").Observe(time.Since(start).Seconds())
	}
	cancel()
	<-r.uploads

	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	f.addDirty(-int64(cap(wb.data)))
	if err == nil {
		// Nothing else refers to the sealed bytes once they are stored
		// (readers and copy-on-write copy them under f.mu): a whole-block
		// buffer goes back to the free list, a small one to the cache.
		if uint64(cap(wb.data)) >= f.bs {
			f.r.bufs.Put(wb.data)
		} else {
			r.cache.add(id, wb.data)
		}
	}
	switch {
	case err != nil:
		if f.err == nil {
			f.err = fmt.Errorf("upload block %d of inode %d: %w", idx, f.ino, err)
			r.log.Error("shoal fs: upload failed; the file's later writes and flushes fail", "ino", f.ino, "block", idx, "chunk", id.String(), "err", err)
		}
	case f.blocks[idx] == wb:
		wb.ref = cluster.Block{Index: idx, ID: cluster.ChunkID(id), Len: uint32(len(wb.data))}
		wb.hasRef = true
		wb.data = nil
		wb.sealed = false
	}
	f.cond.Broadcast()
}

// flush makes the file's writes durable: it uploads what is dirty (but
// the small blocks the commit carries inline), waits for all uploads and
// commits the new blocks, size, mtime and pending attribute changes.
func (f *file) flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flushLocked(ctx)
}

func (f *file) flushLocked(ctx context.Context) error {
	for {
		if f.err != nil {
			return f.err
		}
		if !f.changed {
			return nil
		}
		f.sealForCommit()
		if f.inflight == 0 {
			break
		}
		for f.inflight > 0 {
			f.cond.Wait()
		}
	}
	// Every block is now uploaded, or dirty and small enough to go inline.
	blocks := make([]cluster.Block, 0, len(f.blocks))
	for idx, wb := range f.blocks {
		if wb.data != nil {
			blocks = append(blocks, cluster.Block{Index: idx, ID: cluster.ChunkID(chunkstore.Sum(wb.data)), Len: uint32(len(wb.data)), Data: wb.data})
			continue
		}
		blocks = append(blocks, wb.ref)
	}
	slices.SortFunc(blocks, func(a, b cluster.Block) int { return cmpUint64(a.Index, b.Index) })
	p := f.pend
	req := &cluster.MetaRequest{Op: cluster.OpCommit, Ino: f.ino, Size: f.size, Blocks: blocks, Mtime: f.mtime,
		Valid: p.valid, Mode: p.mode, Uid: p.uid, Gid: p.gid, Atime: p.atime, Create: f.create, NewParent: f.dir.Load()}
	if err := f.commit(ctx, req); err != nil {
		return err
	}
	if f.create != nil {
		f.r.created(f)
	}
	for _, b := range blocks {
		if b.Data != nil {
			f.committedInline(f.blocks[b.Index], b)
			b.Data = nil
		}
		if chunkstore.ID(b.ID).IsZero() {
			delete(f.committed, b.Index)
		} else {
			f.committed[b.Index] = b
		}
	}
	clear(f.blocks)
	f.changed = false
	f.pend = pendingAttrs{}
	f.publish()
	return nil
}

// committedInline releases dirty block wb, whose bytes commit block b
// carried inline: the cache gets a copy of them, and a whole-block buffer
// goes back to the free list.
func (f *file) committedInline(wb *wblock, b cluster.Block) {
	f.addDirty(-int64(cap(wb.data)))
	f.r.cache.add(chunkstore.ID(b.ID), bytes.Clone(wb.data))
	if uint64(cap(wb.data)) >= f.bs {
		f.r.bufs.Put(wb.data)
	}
	wb.data = nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// commitAttempts bounds how often a commit answered EAGAIN is retried;
// with the back-off between them (from 10 ms, doubling to at most 1 s)
// that spans about 20 s, long enough for a garbage collection to finish.
const commitAttempts = 24

// commit sends req; if metadata answers EAGAIN (a chunk it names is being
// garbage collected, or was collected), it stores the chunks again and
// retries after a back-off, which gives the collection time to finish.
func (f *file) commit(ctx context.Context, req *cluster.MetaRequest) error {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := f.r.do(ctx, req)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EAGAIN) || attempt >= commitAttempts {
			return fmt.Errorf("commit inode %d: %w", f.ino, err)
		}
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("commit inode %d: %w", f.ino, err)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
		}
		for _, b := range req.Blocks {
			if b.Data != nil {
				continue // inline: the commit carries it
			}
			if err := f.reput(ctx, chunkstore.ID(b.ID)); err != nil {
				return fmt.Errorf("commit inode %d: %w", f.ino, err)
			}
		}
	}
}

// reput stores chunk id again, from the cache or the store itself.
func (f *file) reput(ctx context.Context, id chunkstore.ID) error {
	if id.IsZero() {
		return nil
	}
	e, err := f.r.cache.get(ctx, id)
	if err != nil {
		return fmt.Errorf("re-put chunk %s: %w", id, err)
	}
	defer f.r.cache.release(e)
	if err := f.r.chunks.Put(ctx, id, e.data); err != nil {
		return fmt.Errorf("re-put chunk %s: %w", id, err)
	}
	return nil
}

// readPiece is part of a read served from a stored chunk.
type readPiece struct {
	dst  []byte
	b    cluster.Block
	boff uint64
}

// read reads the file from off: dirty bytes from memory, the rest from
// chunks (via the cache), holes and bytes past a block's length as zeros.
// It returns the bytes read, fewer than len(dest) only at the end of the
// file: dest's prefix or, when they all lie in one cached chunk, a slice
// of that chunk (cached chunks never change), so that they are not copied
// twice on their way to the kernel. In that case it also returns the
// chunk, held: the caller releases it once done with the bytes.
func (f *file) read(ctx context.Context, dest []byte, off uint64) ([]byte, *cacheEntry, error) {
	f.mu.Lock()
	if err := f.load(ctx); err != nil {
		f.mu.Unlock()
		return nil, nil, err
	}
	if off >= f.size {
		f.mu.Unlock()
		return dest[:0], nil, nil
	}
	end := min(off+uint64(len(dest)), f.size)
	dest = dest[:end-off]
	var pieces []readPiece
	first := off / f.bs
	for pos := off; pos < end; {
		idx, boff := pos/f.bs, pos%f.bs
		n := min(f.bs-boff, end-pos)
		dst := dest[pos-off : pos-off+n]
		pos += n
		var b cluster.Block
		if wb := f.blocks[idx]; wb != nil && wb.data != nil {
			c := 0
			if boff < uint64(len(wb.data)) {
				c = copy(dst, wb.data[boff:])
			}
			clear(dst[c:])
			continue
		} else if wb != nil && wb.hasRef {
			b = wb.ref
		} else if cb, ok := f.committed[idx]; ok {
			b = cb
		}
		if b.Len == 0 || chunkstore.ID(b.ID).IsZero() {
			clear(dst)
			continue
		}
		pieces = append(pieces, readPiece{dst: dst, b: b, boff: boff})
	}
	last := (end - 1) / f.bs
	var ahead []chunkstore.ID
	ra := f.readAhead()
	if ra > 0 && (first == f.nextRead || first+1 == f.nextRead) {
		for idx := last + 1; idx <= last+ra; idx++ {
			if f.blocks[idx] != nil {
				continue
			}
			if cb, ok := f.committed[idx]; ok && !chunkstore.ID(cb.ID).IsZero() {
				ahead = append(ahead, chunkstore.ID(cb.ID))
			}
		}
	}
	f.nextRead = last + 1
	f.mu.Unlock()

	for _, p := range pieces[min(1, len(pieces)):] {
		f.r.cache.start(chunkstore.ID(p.b.ID), 0, false)
	}
	for _, id := range ahead {
		f.r.cache.start(id, 2*int(ra), true)
	}
	for _, p := range pieces {
		e, err := f.r.cache.get(ctx, chunkstore.ID(p.b.ID))
		if err != nil {
			return nil, nil, fmt.Errorf("read block %d of inode %d: %w", p.b.Index, f.ino, err)
		}
		data := e.data[:min(len(e.data), int(p.b.Len))]
		if len(p.dst) == len(dest) && p.boff+uint64(len(dest)) <= uint64(len(data)) {
			return data[p.boff : p.boff+uint64(len(dest))], e, nil
		}
		c := 0
		if p.boff < uint64(len(data)) {
			c = copy(p.dst, data[p.boff:])
		}
		clear(p.dst[c:])
		f.r.cache.release(e)
	}
	return dest, nil, nil
}

// setattr performs req (an OpSetAttr) on the open file, whose last known
// attributes are base (nil if unknown). While the file has uncommitted
// writes and base is known, mode, owner and time changes are kept for the
// next commit (pendingAttrs) and the answer is base with all local changes
// overlaid. Otherwise (or for a size
// change) it commits the local writes first, so that none of them lands
// past a new size or overrides an explicit mtime, sends req, and refetches
// the layout afterwards if req changes the size.
func (f *file) setattr(ctx context.Context, req *cluster.MetaRequest, base *cluster.Attr) (*cluster.MetaResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if base != nil && f.changed && f.err == nil && req.Valid&^foldable == 0 {
		f.fold(req)
		f.publish()
		a := *base
		f.overlay(&a)
		return &cluster.MetaResponse{Attr: a}, nil
	}
	if err := f.flushLocked(ctx); err != nil {
		return nil, err
	}
	resp, err := f.r.do(ctx, req)
	if req.Valid&cluster.SetSize != 0 {
		f.invalidate()
	}
	return resp, err
}

// fold keeps the attribute changes of req (only foldable bits) for the
// next commit. Called with f.mu held.
func (f *file) fold(req *cluster.MetaRequest) {
	f.pend.fold(req)
	if req.Valid&cluster.SetMtime != 0 {
		f.mtime = req.Mtime
	}
}

// handle is an open file descriptor of a regular file. All handles of an
// inode share its file.
type handle struct {
	n *node
	f *file
}

// Read implements fs.FileReader.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ctx, cancel := h.f.r.detach(ctx)
	defer cancel()
	data, held, err := h.f.read(ctx, dest, uint64(off))
	if err != nil {
		return nil, toErrno(h.f.r.log, "read", err)
	}
	if held != nil {
		return &cachedRead{data: data, c: h.f.r.cache, e: held}, 0
	}
	return fuse.ReadResultData(data), 0
}

// cachedRead answers a FUSE read with part of a cached chunk's memory,
// which it holds until go-fuse has written the reply and calls Done. As
// a withSlice result (Slices) it is written straight from that memory;
// Bytes, for any other path, copies, since go-fuse may call Done before
// writing what Bytes returned.
type cachedRead struct {
	data []byte
	c    *chunkCache
	e    *cacheEntry
	done atomic.Bool
}

// Size implements fuse.ReadResult.
func (r *cachedRead) Size() int { return len(r.data) }

// Bytes implements fuse.ReadResult.
func (r *cachedRead) Bytes(buf []byte) ([]byte, fuse.Status) {
	return append(buf[:0], r.data...), fuse.OK
}

// Slices lets go-fuse write the reply from the chunk's memory (writev).
func (r *cachedRead) Slices() ([][]byte, fuse.Status) { return [][]byte{r.data}, fuse.OK }

// Done implements fuse.ReadResult: the chunk is released, once.
func (r *cachedRead) Done() {
	if r.done.CompareAndSwap(false, true) {
		r.c.release(r.e)
	}
}

// Write implements fs.FileWriter.
func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	ctx, cancel := h.f.r.detach(ctx)
	defer cancel()
	n, err := h.f.write(ctx, data, uint64(off))
	if err != nil {
		return uint32(n), toErrno(h.f.r.log, "write", err)
	}
	return uint32(n), 0
}

// Flush implements fs.FileFlusher: close(2) returns once the file's data
// is durable and committed.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	ctx, cancel := h.f.r.detach(ctx)
	defer cancel()
	return toErrno(h.f.r.log, "flush", h.f.flush(ctx))
}

// Fsync implements fs.FileFsyncer.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	ctx, cancel := h.f.r.detach(ctx)
	defer cancel()
	return toErrno(h.f.r.log, "fsync", h.f.flush(ctx))
}

// Allocate implements fs.FileAllocater for fallocate(2) modes 0 (extend
// the size; the new bytes read as zeros, as every hole does) and
// FALLOC_FL_KEEP_SIZE (nothing to do: space is not reserved ahead).
func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	const keepSize = 1 // FALLOC_FL_KEEP_SIZE
	switch mode {
	case keepSize:
		return 0
	case 0:
		ctx, cancel := h.f.r.detach(ctx)
		defer cancel()
		return toErrno(h.f.r.log, "fallocate", h.f.extend(ctx, off+size))
	}
	return syscall.EOPNOTSUPP
}

// Release implements fs.FileReleaser.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.f.r.release(h.f)
	return 0
}
