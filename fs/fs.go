package fs

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/chunkstore"
	"shoal/cluster"
)

// Metadata answers metadata requests; cluster.Client and cluster.Local
// implement it. Errors for file-system failures wrap a syscall.Errno. Safe
// for concurrent use.
type Metadata interface {
	Do(ctx context.Context, req *cluster.MetaRequest) (*cluster.MetaResponse, error)
}

// Chunks stores and fetches chunks by ID; any chunkstore.Store, and
// cluster.Client, implement it. Safe for concurrent use.
type Chunks interface {
	// Put stores data under id and returns once it is durable. The caller
	// keeps data.
	Put(ctx context.Context, id chunkstore.ID, data []byte) error
	// Get returns the chunk's bytes; the caller owns them.
	Get(ctx context.Context, id chunkstore.ID) ([]byte, error)
}

// VerifyingChunks is a Chunks whose Get checks the bytes it returns
// against the id (a mismatch is an error wrapping chunkstore.ErrCorrupt),
// as cluster.Client's does. The read cache hashes chunks from any other
// store itself; from a VerifyingChunks whose VerifiesGets reports true it
// does not hash them a second time.
type VerifyingChunks interface {
	Chunks
	// VerifiesGets reports whether every successful Get returned bytes
	// whose SHA-256 is the id asked for.
	VerifiesGets() bool
}

var (
	_ Metadata        = cluster.Metadata(nil)
	_ Chunks          = chunkstore.Store(nil)
	_ VerifyingChunks = (*cluster.Client)(nil)
)

// Options tune a file system. The zero value gives the defaults.
type Options struct {
	// AttrTimeout is how long the kernel may cache attributes; zero means
	// one second, a negative value disables caching.
	AttrTimeout time.Duration
	// EntryTimeout is how long the kernel may cache names; zero means one
	// second, a negative value disables caching.
	EntryTimeout time.Duration
	// NegativeTimeout is how long the kernel may cache a name's absence;
	// zero (the default) disables it, so names created by other mounts
	// appear at once.
	NegativeTimeout time.Duration
	// CacheBytes bounds the chunk read cache; zero means 256 MiB.
	CacheBytes int64
	// Buffers is the free list of block-sized buffers that written blocks
	// and cached chunks use and give back; nil means a list of the file
	// system's own. Give the Chunks store the same list (as
	// cluster.ClientConfig.Buffers) so that the chunks its Gets return
	// land in memory the cache has let go of.
	Buffers *chunkstore.Buffers
	// DirtyBytes bounds the written but not yet uploaded bytes the mount
	// holds, all open files together; beyond it a writer uploads its
	// file's blocks and waits. Zero means DefaultDirtyBytes.
	DirtyBytes int64
	// Uploads is how many chunk uploads run at once (for all files); zero
	// means 8. Each is a round trip that ends with an fsync on the node,
	// so several in flight keep both the link and the disk busy.
	Uploads int
	// InlineBytes is the largest block a commit carries inline (its chunk
	// sent inside the metadata commit rather than uploaded first), capped
	// at cluster.MaxInlineChunk: a small file costs one round trip. Zero
	// means cluster.MaxInlineChunk; a negative value turns inlining off.
	InlineBytes int
	// SyncCreate creates every new file in metadata at once, instead of
	// with its first commit (pending.go).
	SyncCreate bool
	// SyncNames sends every unlink, rename and rmdir to metadata before
	// answering it, instead of answering those of files not open in the
	// mount, and of directories known empty, at once and sending them in
	// the background (held.go).
	SyncNames bool
	// DirAttrDelay is how long chmod, chown and utimens of a directory
	// wait in the mount, gathering more, before they go to metadata
	// together (dirchanges.go); zero means DefaultDirAttrDelay, a negative
	// value sends each at once.
	DirAttrDelay time.Duration
	// ReadAhead is how many blocks past a sequential reader are fetched in
	// the background; zero means 8, a negative value disables read-ahead.
	// At most twice that many read-ahead fetches run at once (for all
	// files). A small CacheBytes lowers it: the blocks ahead take at most
	// a quarter of the cache, so they are still there when read.
	ReadAhead int
	// OpTimeout bounds background work (uploads, read-ahead, commits at
	// release) that has no caller to time it; zero means 5 minutes.
	OpTimeout time.Duration
	// Logger receives error and warning lines; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.AttrTimeout == 0 {
		o.AttrTimeout = DefaultAttrTimeout
	}
	if o.AttrTimeout < 0 {
		o.AttrTimeout = 0
	}
	if o.EntryTimeout == 0 {
		o.EntryTimeout = DefaultAttrTimeout
	}
	if o.EntryTimeout < 0 {
		o.EntryTimeout = 0
	}
	if o.NegativeTimeout < 0 {
		o.NegativeTimeout = 0
	}
	if o.DirAttrDelay == 0 {
		o.DirAttrDelay = DefaultDirAttrDelay
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 256 << 20
	}
	if o.DirtyBytes <= 0 {
		o.DirtyBytes = DefaultDirtyBytes
	}
	if o.Uploads <= 0 {
		o.Uploads = 8
	}
	if o.InlineBytes == 0 || o.InlineBytes > cluster.MaxInlineChunk {
		o.InlineBytes = cluster.MaxInlineChunk
	}
	if o.ReadAhead == 0 {
		o.ReadAhead = 8
	}
	if o.ReadAhead < 0 {
		o.ReadAhead = 0
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Root is a shoal file system: the root directory's node plus the state
// all nodes share (caches, open files, upload slots). Create it with New
// and serve it with Mount. Safe for concurrent use.
type Root struct {
	meta   Metadata
	chunks Chunks
	opts   Options
	log    *slog.Logger
	cache  *chunkCache
	node   *node

	uploads chan struct{}       // upload slots
	dirty   atomic.Int64        // bytes of dirty and sealed blocks, all files (Options.DirtyBytes)
	bufs    *chunkstore.Buffers // free whole-block buffers, reused to spare page faults

	blockSize atomic.Uint32 // the metadata's block size, once known

	mu       sync.Mutex
	files    map[uint64]*file // open regular files by inode number
	pending  map[pendingName]*file
	npending atomic.Int32 // len(pending), read without mu

	inoMu           sync.Mutex
	inoNext, inoEnd uint64 // inode numbers reserved for new files (pending.go)

	dirs  sync.Map   // inode number → *node of the directories the kernel knows (dirattr.go)
	known knownNames // the names of directories, by inode number (dirnames.go)

	// Directory attribute changes not yet sent (dirchanges.go).
	dirMu         sync.Mutex
	dirChanges    map[uint64]*dirChange // by directory inode number
	ndirChanges   atomic.Int32          // len(dirChanges), read without dirMu
	dirTimerArmed bool                  // a flushDirsLater is due
	dirSendMu     sync.Mutex            // held while sending changes, so they go in order

	held heldOps // unlinks, renames and rmdirs answered, not yet in metadata (held.go)
}

// New returns a file system over meta and chunks.
func New(meta Metadata, chunks Chunks, opts Options) *Root {
	opts = opts.withDefaults()
	r := &Root{
		meta:   meta,
		chunks: chunks,
		opts:   opts,
		log:    opts.Logger,

		uploads: make(chan struct{}, opts.Uploads),
		bufs:    opts.Buffers,
		files:   make(map[uint64]*file),
		pending: make(map[pendingName]*file),

		dirChanges: make(map[uint64]*dirChange),
		held:       heldOps{changed: make(chan struct{})},
	}
	if r.bufs == nil {
		r.bufs = NewBuffers(opts)
	}
	r.known.timeout = opts.AttrTimeout
	r.cache = newChunkCache(chunks, r.bufs, opts.CacheBytes, opts.Logger, r.bgContext)
	r.node = &node{r: r}
	r.dirs.Store(uint64(cluster.RootIno), r.node)
	return r
}

// NewBuffers returns a free list of block-sized buffers for a file system
// with opts (see Options.Buffers): it keeps enough for the uploads in
// flight, the read-ahead window and keptDirtyBuffers of dirty blocks. A
// burst of random writes may use up to Options.DirtyBytes; what it used
// beyond that goes back to the Go heap, not to a list that would hold it
// for good.
func NewBuffers(opts Options) *chunkstore.Buffers {
	opts = opts.withDefaults()
	blocks := int64(opts.Uploads + 2*max(opts.ReadAhead, 0))
	return chunkstore.NewBuffers(min(opts.DirtyBytes, keptDirtyBuffers) + blocks*cluster.DefaultBlockSize)
}

// DefaultAttrTimeout is how long the kernel may cache attributes and
// names by default (Options.AttrTimeout and EntryTimeout).
const DefaultAttrTimeout = time.Second

// DefaultDirtyBytes is the mount's default bound on written but not yet
// uploaded bytes (Options.DirtyBytes). A random writer's blocks stay in
// memory until close or fsync, so a file rewritten at random is uploaded
// once per block, not once per write, as long as its blocks fit: 512 MiB
// holds 128 blocks of 4 MiB.
const DefaultDirtyBytes = 512 << 20

// keptDirtyBuffers bounds the dirty blocks' share of the free list.
const keptDirtyBuffers = 64 << 20

// MountOptions are the mount-time settings a caller may choose; the rest
// (direct mount, allow_other, default_permissions, 1 MiB requests, async
// reads) are fixed by Mount.
type MountOptions struct {
	// DebugLog, if set, gets a line for every FUSE request and reply, and
	// go-fuse's own messages. Nil means no trace, and go-fuse's messages
	// go to the Root's logger at warn level.
	DebugLog *log.Logger
	// Options are extra mount options ("ro", ...).
	Options []string
}

// Mount mounts root at dir with the kernel directly (no fusermount) and
// serves it in the background. The caller unmounts with the returned
// server's Unmount (after which Wait returns); files still open at that
// point have been flushed by their Flush calls, as close(2) requires.
func Mount(dir string, root *Root, opts MountOptions) (*fuse.Server, error) {
	at, et, nt := root.opts.AttrTimeout, root.opts.EntryTimeout, root.opts.NegativeTimeout
	fuseLog := opts.DebugLog
	if fuseLog == nil {
		// go-fuse writes to log.Default otherwise, which slog turns into
		// info lines: a mount at --log-level warn would drop its errors.
		fuseLog = slog.NewLogLogger(root.log.Handler(), slog.LevelWarn)
	}
	o := &gofs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:        true,
			Options:           append([]string{"default_permissions"}, opts.Options...),
			FsName:            "shoal",
			Name:              "shoal",
			DirectMount:       true,
			DirectMountStrict: true,
			MaxWrite:          1 << 20,
			MaxReadAhead:      1 << 20,
			MaxBackground:     64,
			SyncRead:          false,
			EnableLocks:       false,
			DisableSplice:     true, // replies come from memory; a 1 MiB splice overflows the pipe
			Debug:             opts.DebugLog != nil,
			Logger:            fuseLog,
		},
		AttrTimeout:     &at,
		EntryTimeout:    &et,
		NegativeTimeout: &nt,
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: cluster.RootIno},
	}
	server, err := gofs.Mount(dir, root.node, o)
	if err != nil {
		return nil, fmt.Errorf("mount shoal at %s: %w", dir, err)
	}
	root.raiseReadAhead(dir)
	return server, nil
}

// readAheadKB is the kernel read-ahead window Mount asks for: the FUSE
// handshake caps it at 128 KiB, which makes a sequential reader pay one
// round trip per 128 KiB.
const readAheadKB = 4096

// raiseReadAhead sets the read-ahead window of the mount's backing device
// (RaiseReadAhead), if it can; failing that, the kernel default stays,
// which is only slower.
func (r *Root) raiseReadAhead(dir string) {
	if err := RaiseReadAhead(dir); err != nil {
		r.log.Debug("shoal fs: cannot raise read-ahead", "err", err)
	}
}

// RaiseReadAhead sets the kernel read-ahead window of the FUSE mount at
// dir to the 4 MiB shoal's mounts use, in sysfs (which needs root).
func RaiseReadAhead(dir string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return fmt.Errorf("raise read-ahead of %s: %w", dir, err)
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(fmt.Sprint(readAheadKB)), 0); err != nil {
		return fmt.Errorf("raise read-ahead of %s: %w", dir, err)
	}
	return nil
}

// detach returns a context for serving a request that carries ctx's
// values but not its cancellation, bounded by OpTimeout instead. The
// kernel interrupts a request whenever the calling thread gets a signal
// (Go programs get SIGURG all the time); abandoning a write, commit or
// metadata change half-way then would turn a harmless signal into an
// error, or leave the caller unsure whether the change happened.
func (r *Root) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.opts.OpTimeout)
}

// do sends one metadata request, whatever interrupts the caller, after
// creating in metadata the pending files it needs (pending.go).
func (r *Root) do(ctx context.Context, req *cluster.MetaRequest) (*cluster.MetaResponse, error) {
	ctx, cancel := r.detach(ctx)
	defer cancel()
	if err := r.prepare(ctx, req); err != nil {
		return nil, err
	}
	return r.send(ctx, req)
}

// prepare sends what req must come after: the held attribute changes of
// the directories it names (dirchanges.go) and the pending files it needs
// (pending.go).
func (r *Root) prepare(ctx context.Context, req *cluster.MetaRequest) error {
	if err := r.flushDirsFor(ctx, req); err != nil {
		return err
	}
	return r.materializeFor(ctx, req)
}

// send sends one metadata request as it is, once the held ops (held.go)
// before it that it could see are in metadata.
func (r *Root) send(ctx context.Context, req *cluster.MetaRequest) (*cluster.MetaResponse, error) {
	if err := r.awaitHeldFor(ctx, req); err != nil {
		return nil, err
	}
	return r.sendNow(ctx, req)
}

// sendNow sends one metadata request as it is, at once.
func (r *Root) sendNow(ctx context.Context, req *cluster.MetaRequest) (*cluster.MetaResponse, error) {
	start := time.Now()
	resp, err := r.meta.Do(ctx, req)
	observeMeta(req.Op, start, err)
	if err != nil {
		r.noteDirsFailed(req)
		return nil, err
	}
	if err := cluster.ResponseError(req, resp); err != nil {
		// Do should have said so already; be safe with a lax implementation.
		r.noteDirsFailed(req)
		return nil, err
	}
	r.noteDirs(req, resp)
	return resp, nil
}

// bgContext returns a context for background work, bounded by OpTimeout.
func (r *Root) bgContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.opts.OpTimeout)
}

// getBlockSize returns the metadata's block size, asking for the layout of
// regular file ino the first time.
func (r *Root) getBlockSize(ctx context.Context, ino uint64) (uint32, error) {
	if bs := r.blockSize.Load(); bs != 0 {
		return bs, nil
	}
	resp, err := r.do(ctx, &cluster.MetaRequest{Op: cluster.OpLayout, Ino: ino})
	if err != nil {
		return 0, fmt.Errorf("layout of %d: %w", ino, err)
	}
	if resp.Layout.BlockSize == 0 {
		return 0, fmt.Errorf("layout of %d: zero block size", ino)
	}
	r.blockSize.Store(resp.Layout.BlockSize)
	return resp.Layout.BlockSize, nil
}

// openFile returns the shared state of regular file ino, creating it, and
// counts one more open handle. If fresh is set, the caller knows the inode
// was just created empty, which saves fetching its layout. dir is a
// directory the file was opened in (0 if unknown): commits name it, so
// that the erasure scheme set on it applies (cluster.SchemeXattr).
func (r *Root) openFile(ino uint64, fresh *cluster.Layout, dir uint64) *file {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.files[ino]
	if f == nil {
		f = newFile(r, ino)
		if fresh != nil {
			f.setLayout(fresh)
		}
		r.files[ino] = f
	}
	if dir != 0 {
		f.dir.Store(dir)
	}
	f.opens++
	return f
}

// lookupFile returns the state of ino if it is open.
func (r *Root) lookupFile(ino uint64) *file {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[ino]
}

// release drops one handle of f. At the last one it commits what an mmap
// may have written after the last flush, forgets f, and drops the inode if
// it lost its last name while open.
func (r *Root) release(f *file) {
	r.mu.Lock()
	f.opens--
	last := f.opens == 0
	r.mu.Unlock()
	if !last {
		return
	}
	ctx, cancel := r.bgContext()
	defer cancel()
	if f.hasChanges() {
		if err := f.flush(ctx); err != nil {
			r.log.Error("shoal fs: commit at release failed", "ino", f.ino, "err", err)
		}
	}
	r.mu.Lock()
	if f.opens > 0 { // reopened meanwhile
		r.mu.Unlock()
		return
	}
	delete(r.files, f.ino)
	orphan := f.orphaned
	r.mu.Unlock()
	f.forget()
	if orphan {
		r.drop(ctx, f.ino)
	}
}

// dropUnopened lets unlink or rename req free the inode it takes a name
// from in the same step (cluster.DropUnopened) if the kernel knows that
// inode as c and no handle of this mount holds it open; otherwise an
// inode left without names is dropped by removed, now or at its last
// release. The kernel holds the directory locked across the request, so
// the name cannot be opened meanwhile.
func (r *Root) dropUnopened(req *cluster.MetaRequest, c *gofs.Inode) {
	if c == nil || c.IsDir() {
		return
	}
	if ino := c.StableAttr().Ino; !r.isOpen(ino) {
		req.Flags |= cluster.DropUnopened
		req.NewIno = ino
	}
}

// isOpen reports whether the file of inode ino is open in the mount.
func (r *Root) isOpen(ino uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.files[ino]
	return f != nil && f.opens > 0
}

// holdsRename reports whether rename req, of file moved onto target (nil
// if the kernel knows the new name as free), may be answered before
// metadata has it (held.go): it exchanges nothing, moves a file no one
// holds open here, and replaces none or another such file (dropUnopened
// said so in req).
func (r *Root) holdsRename(req *cluster.MetaRequest, moved *node, target *gofs.Inode) bool {
	switch {
	case r.opts.SyncNames, req.Flags&cluster.RenameExchange != 0, moved == nil, moved.isDir():
		return false
	case target != nil && req.Flags&cluster.DropUnopened == 0:
		return false
	}
	return !r.isOpen(moved.ino())
}

// removed handles what an unlink or rename answered: an inode that lost
// its last name is dropped now, or at its last release if it is open.
func (r *Root) removed(ctx context.Context, rm cluster.Removed) {
	if !rm.Orphaned || rm.Ino == 0 {
		return
	}
	r.mu.Lock()
	if f := r.files[rm.Ino]; f != nil && f.opens > 0 {
		f.orphaned = true
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.drop(ctx, rm.Ino)
}

// nominalSpace fills the space counts of s, which metadata left zero, from
// the chunk store's usage if it is a chunkstore.Stater, else as 1 PiB free.
func (r *Root) nominalSpace(ctx context.Context, s *cluster.Statfs) {
	capacity, avail := uint64(1<<50), uint64(1<<50)
	if st, ok := r.chunks.(chunkstore.Stater); ok {
		if u, err := st.Stat(ctx); err == nil && u.Capacity > 0 {
			capacity, avail = u.Capacity, min(u.Available, u.Capacity)
		}
	}
	bs := uint64(s.Bsize)
	s.Blocks, s.Bfree, s.Bavail = capacity/bs, avail/bs, avail/bs
}

func (r *Root) drop(ctx context.Context, ino uint64) {
	if _, err := r.do(ctx, &cluster.MetaRequest{Op: cluster.OpDrop, Ino: ino}); err != nil {
		r.log.Error("shoal fs: drop of unlinked inode failed", "ino", ino, "err", err)
	}
}
