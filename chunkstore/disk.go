package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On-disk names; see the package doc, "On-disk format".
const (
	markerName    = "SHOAL-CHUNKSTORE"
	markerContent = "shoal chunkstore\nformat 1\n"
	chunksDir     = "chunks"
	quarantineDir = "quarantine"
	tempPrefix    = ".tmp-"
	fanout        = 256
	lockStripes   = 256
)

// MaxChunkSize is the largest chunk a Disk store accepts.
const MaxChunkSize = MaxDecompressed

// DiskOptions tunes a Disk store. The zero value is usable.
type DiskOptions struct {
	// Compress stores chunks zstd-compressed when that saves at least one
	// eighth. Incompressible chunks are detected from a sample and stored
	// as they are.
	Compress bool
	// ReserveBytes is free space Put leaves on the file system: a Put that
	// would drop the space available under it fails with ErrNoSpace.
	ReserveBytes uint64
	// VerifiedPuts promises that every Put's data hashes to its id (the
	// caller checked it, as a node does for every pushed chunk). Get then
	// relies on the chunk file's CRC-32C to detect damage on disk and skips
	// recomputing the SHA-256, which is most of the cost of a read.
	VerifiedPuts bool
	// Buffers, if set, supplies the memory Get reads a chunk stored as it
	// is into; a caller done with what Get returned may Put it back.
	Buffers *Buffers
	// Log receives what the store does on its own behalf, such as a pack
	// compaction that failed; nil means slog.Default().
	Log *slog.Logger
}

// Disk is a Store that keeps each chunk in its own file under a directory,
// as the package doc's "On-disk format" section describes. It implements
// Store, Deleter, Lister, Stater and Toucher and is safe for concurrent use by one
// process: OpenDisk takes an exclusive lock on the directory.
type Disk struct {
	dir    string
	opts   DiskOptions
	lock   *os.File         // the marker file, flock-ed
	subs   [fanout]*os.File // open fan-out directories, for fsync
	stripe [lockStripes]sync.Mutex
	chunks atomic.Int64
	bytes  atomic.Int64
	// timeGrain is the mtime resolution of the file system; Put times are
	// rounded up to it so a Put never looks older than it was.
	timeGrain time.Duration
	closed    atomic.Bool

	lazyMu sync.Mutex
	lazy   map[ID]struct{} // chunk files PutLazy wrote that Sync has not made durable

	packs *packs // small chunks PutLazy stored (pack.go)
}

var (
	_ Store      = (*Disk)(nil)
	_ Deleter    = (*Disk)(nil)
	_ Lister     = (*Disk)(nil)
	_ Stater     = (*Disk)(nil)
	_ Toucher    = (*Disk)(nil)
	_ LazyPutter = (*Disk)(nil)
)

// ErrNotStore means OpenDisk was given a directory that holds something
// other than a shoal chunk store.
var ErrNotStore = errors.New("not a shoal chunk store")

// OpenDisk opens the store in dir, creating dir and an empty store if dir is
// missing or empty. A non-empty dir without the store's marker file gives an
// error wrapping ErrNotStore. OpenDisk removes temporary files left by an
// interrupted Put and counts the chunks held. Close releases the store.
func OpenDisk(dir string, opts DiskOptions) (*Disk, error) {
	d := &Disk{dir: dir, opts: opts, lazy: make(map[ID]struct{})}
	if err := d.open(); err != nil {
		d.Close()
		return nil, fmt.Errorf("open disk store %s: %w", dir, err)
	}
	return d, nil
}

func (d *Disk) open() error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	marker := filepath.Join(d.dir, markerName)
	b, err := os.ReadFile(marker)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ents, err := os.ReadDir(d.dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			// A fresh file system's lost+found, or a marker write cut
			// short, does not make the directory foreign.
			switch name := e.Name(); {
			case name == "lost+found":
			case strings.HasPrefix(name, tempPrefix):
				if err := os.Remove(filepath.Join(d.dir, name)); err != nil {
					return err
				}
			default:
				return fmt.Errorf("directory not empty and has no %s: %w", markerName, ErrNotStore)
			}
		}
		if err := writeFileDurable(d.dir, markerName, []byte(markerContent)); err != nil {
			return err
		}
	case err != nil:
		return err
	case string(b) != markerContent:
		return fmt.Errorf("%s: got %q, want %q: %w", markerName, b, markerContent, ErrNotStore)
	}
	if d.lock, err = os.Open(marker); err != nil {
		return err
	}
	if err := syscall.Flock(int(d.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("lock %s (in use by another process?): %w", marker, err)
	}
	if d.timeGrain, err = probeTimeGrain(marker); err != nil {
		return err
	}
	top := filepath.Join(d.dir, chunksDir)
	if err := os.MkdirAll(top, 0o755); err != nil {
		return err
	}
	created := false
	for i := range d.subs {
		sub := filepath.Join(top, fmt.Sprintf("%02x", i))
		err := os.Mkdir(sub, 0o755)
		switch {
		case err == nil:
			created = true
		case !errors.Is(err, fs.ErrExist):
			return err
		}
		if d.subs[i], err = os.Open(sub); err != nil {
			return err
		}
		if err := d.scan(d.subs[i], sub); err != nil {
			return err
		}
	}
	if d.packs, err = openPacks(filepath.Join(d.dir, packsDir)); err != nil {
		return err
	}
	if created {
		return syncDirs(top, d.dir)
	}
	return nil
}

// scan removes stale temporary files in one fan-out directory and adds its
// chunks to the counters.
func (d *Disk) scan(f *os.File, path string) error {
	ents, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	removed := false
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			if err := os.Remove(filepath.Join(path, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed = true
			continue
		}
		if _, err := ParseID(name); err != nil || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		d.chunks.Add(1)
		d.bytes.Add(info.Size())
	}
	if removed {
		return f.Sync()
	}
	return nil
}

// probeTimeGrain finds whether the file system keeps nanosecond mtimes; if
// not, Put rounds its times up to whole seconds.
func probeTimeGrain(path string) (time.Duration, error) {
	want := time.Unix(1700000000, 123456789)
	if err := os.Chtimes(path, want, want); err != nil {
		return 0, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if info.ModTime().Equal(want) {
		return 0, nil
	}
	return time.Second, nil
}

// Close releases the store. Put and Delete on a closed store fail with an
// error wrapping fs.ErrClosed. Calls after the first do nothing.
func (d *Disk) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	var errs []error
	if d.packs != nil {
		errs = append(errs, d.packs.close())
	}
	for _, f := range d.subs {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close disk store %s: %w", d.dir, err)
	}
	return nil
}

// Dir returns the directory the store lives in.
func (d *Disk) Dir() string { return d.dir }

// Path returns the file that holds (or would hold) chunk id. Tests use it
// to damage chunks; nothing else should touch the file.
func (d *Disk) Path(id ID) string {
	s := id.String()
	return filepath.Join(d.dir, chunksDir, s[:2], s)
}

// lockLive takes id's stripe lock for operation op, unless ctx is done or
// the store closed, and returns its unlock.
func (d *Disk) lockLive(ctx context.Context, op string, id ID) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("disk %s %s: %w", op, id, err)
	}
	if d.closed.Load() {
		return nil, fmt.Errorf("disk %s %s: %w", op, id, fs.ErrClosed)
	}
	mu := d.lockID(id)
	mu.Lock()
	return mu.Unlock, nil
}

func (d *Disk) lockID(id ID) *sync.Mutex {
	return &d.stripe[(int(id[0])<<8|int(id[1]))%lockStripes]
}

func (d *Disk) now() time.Time {
	t := time.Now()
	if d.timeGrain > 0 {
		if r := t.Truncate(d.timeGrain); !r.Equal(t) {
			t = r.Add(d.timeGrain)
		}
	}
	return t
}

// Put implements Store.
func (d *Disk) Put(ctx context.Context, id ID, data []byte) error {
	return d.put(ctx, id, data, true)
}

// PutLazy implements LazyPutter. A chunk of at most MaxPackedChunk bytes
// is appended to a pack, unless a pack or a file of its own holds it
// already (then it is touched); a larger one gets a file as Put makes,
// without the file and directory fsyncs. Sync makes both durable.
func (d *Disk) PutLazy(ctx context.Context, id ID, data []byte) error {
	if len(data) > MaxPackedChunk {
		return d.put(ctx, id, data, false)
	}
	unlock, err := d.lockLive(ctx, "put", id)
	if err != nil {
		return err
	}
	defer unlock()
	t := d.now()
	if d.packs.touch(id, t) {
		return nil
	}
	if err := os.Chtimes(d.Path(id), t, t); err == nil {
		return nil // a durable Put gave it a file of its own
	} else if !errors.Is(err, fs.ErrNotExist) {
		return d.putErr(id, err)
	}
	hdr, payload := d.encode(data)
	body := append(hdr, payload...)
	if err := d.checkReserve(uint64(recHeaderSize + len(body))); err != nil {
		return d.putErr(id, err)
	}
	if _, err := d.packs.put(id, body, t); err != nil {
		return d.putErr(id, err)
	}
	return nil
}

// encode returns the header and payload a chunk file (or pack record) of
// data holds: the payload compressed if the store compresses and that
// saves space.
func (d *Disk) encode(data []byte) (hdr, payload []byte) {
	payload, compressed := data, false
	if d.opts.Compress {
		payload, compressed = Compress(nil, data)
		if !compressed {
			payload = data
		}
	}
	return encodeChunk(len(data), payload, compressed), payload
}

// put stores a chunk, durably or lazily.
func (d *Disk) put(ctx context.Context, id ID, data []byte, durable bool) error {
	if len(data) > MaxChunkSize {
		return fmt.Errorf("disk put %s: %d bytes: %w", id, len(data), ErrTooLarge)
	}
	unlock, err := d.lockLive(ctx, "put", id)
	if err != nil {
		return err
	}
	defer unlock()
	if held, err := d.touchPacked(id, durable); err != nil {
		return d.putErr(id, err)
	} else if held {
		return nil
	}
	path := d.Path(id)
	if err := d.touch(id, path, durable); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return d.putErr(id, err)
	}
	hdr, payload := d.encode(data)
	size := int64(len(hdr) + len(payload))
	if err := d.checkReserve(uint64(size)); err != nil {
		return d.putErr(id, err)
	}
	if err := d.writeChunk(id, path, hdr, payload, durable); err != nil {
		return d.putErr(id, err)
	}
	d.chunks.Add(1)
	d.bytes.Add(size)
	return nil
}

// Touch implements Toucher. Like a Put of a present chunk, it sets the
// chunk file's mtime to now and fsyncs the file.
func (d *Disk) Touch(ctx context.Context, id ID) (bool, error) {
	unlock, err := d.lockLive(ctx, "touch", id)
	if err != nil {
		return false, err
	}
	defer unlock()
	if held, err := d.touchPacked(id, true); held || err != nil {
		return held, err
	}
	return presence("touch", id, d.touch(id, d.Path(id), true))
}

// touchPacked records that chunk id, if a pack holds it, was written now;
// if durable, it also syncs the packs. It reports whether a pack holds it.
// Called with id's stripe lock held.
func (d *Disk) touchPacked(id ID, durable bool) (bool, error) {
	if !d.packs.touch(id, d.now()) {
		return false, nil
	}
	if durable {
		if err := d.packs.sync(); err != nil {
			return true, fmt.Errorf("disk touch %s: %w", id, err)
		}
	}
	return true, nil
}

// presence turns the outcome err of operation op on chunk id's file into
// whether the file exists: a missing file is no error.
func presence(op string, id ID, err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("disk %s %s: %w", op, id, err)
	}
}

func (d *Disk) putErr(id ID, err error) error {
	if errors.Is(err, ErrNoSpace) {
		return fmt.Errorf("disk put %s: %w", id, err)
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("disk put %s: %w (%w)", id, ErrNoSpace, err)
	}
	return fmt.Errorf("disk put %s: %w", id, err)
}

// touch refreshes the mtime of existing chunk file path (of chunk id). If
// durable, it also fsyncs the file, and the directory too if a PutLazy
// wrote the file and no Sync has made it durable yet. Called with id's
// stripe lock held.
func (d *Disk) touch(id ID, path string, durable bool) error {
	t := d.now()
	if err := os.Chtimes(path, t, t); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	if err := fsyncPath(path); err != nil {
		return err
	}
	d.lazyMu.Lock()
	_, lazy := d.lazy[id]
	d.lazyMu.Unlock()
	if !lazy {
		return nil
	}
	if err := d.subs[id[0]].Sync(); err != nil {
		return err
	}
	d.lazyMu.Lock()
	delete(d.lazy, id)
	d.lazyMu.Unlock()
	return nil
}

// Sync implements LazyPutter: it makes every chunk file PutLazy wrote
// before the call durable. One syncfs(2) of the store's file system does
// that for all of them at once: a snapshot after thousands of small files
// costs one flush of the disk's cache, not two fsyncs a file. Where the
// kernel lacks syncfs or a seccomp filter denies it, each file and then
// its fan-out directory is fsynced.
func (d *Disk) Sync(ctx context.Context) error {
	if err := d.packs.sync(); err != nil {
		return fmt.Errorf("disk sync %s: %w", d.dir, err)
	}
	ids := d.lazyIDs()
	if len(ids) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("disk sync: %w", err)
	}
	err := unix.Syncfs(int(d.subs[0].Fd()))
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		// No syncfs here, or a sandbox's seccomp filter denies it.
		err = d.syncEach(ctx, ids)
	} else if err != nil {
		err = fmt.Errorf("disk sync %s: syncfs: %w", d.dir, err)
	}
	if err != nil {
		return err
	}
	d.lazyMu.Lock()
	for _, id := range ids {
		delete(d.lazy, id)
	}
	d.lazyMu.Unlock()
	return nil
}

// lazyIDs returns the chunks PutLazy wrote that no Sync has made durable.
func (d *Disk) lazyIDs() []ID {
	d.lazyMu.Lock()
	defer d.lazyMu.Unlock()
	ids := make([]ID, 0, len(d.lazy))
	for id := range d.lazy {
		ids = append(ids, id)
	}
	return ids
}

// syncEach fsyncs the chunk files of ids, then their fan-out directories.
func (d *Disk) syncEach(ctx context.Context, ids []ID) error {
	var dirs [fanout]bool
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("disk sync: %w", err)
		}
		mu := d.lockID(id)
		mu.Lock()
		err := fsyncPath(d.Path(id))
		mu.Unlock()
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // deleted meanwhile: nothing to sync
			return fmt.Errorf("disk sync %s: %w", id, err)
		}
		dirs[id[0]] = true
	}
	for i, dirty := range dirs {
		if !dirty {
			continue
		}
		if err := d.subs[i].Sync(); err != nil {
			return fmt.Errorf("disk sync: directory %02x: %w", i, err)
		}
	}
	return nil
}

// fsyncPath opens path and fsyncs it.
func fsyncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *Disk) checkReserve(need uint64) error {
	if d.opts.ReserveBytes == 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return err
	}
	avail := st.Bavail * uint64(st.Bsize)
	if avail < need || avail-need < d.opts.ReserveBytes {
		return fmt.Errorf("%d bytes free, %d reserved, %d needed: %w", avail, d.opts.ReserveBytes, need, ErrNoSpace)
	}
	return nil
}

// writeChunk writes hdr+payload to a temporary file next to path, sets its
// mtime, syncs it, renames it into place and syncs the directory. On error
// it removes the temporary file. Unless durable, it skips both syncs and
// records id for the next Sync.
func (d *Disk) writeChunk(id ID, path string, hdr, payload []byte, durable bool) (err error) {
	dir := d.subs[id[0]]
	f, err := os.CreateTemp(filepath.Dir(path), tempPrefix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = d.writeFile(f, hdr, payload, durable); err != nil {
		return err
	}
	t := d.now()
	if err = os.Chtimes(tmp, t, t); err != nil {
		return err
	}
	if durable {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if !durable {
		d.lazyMu.Lock()
		d.lazy[id] = struct{}{}
		d.lazyMu.Unlock()
		return nil
	}
	if err = dir.Sync(); err != nil {
		// The chunk is in place but maybe not durable; take it back out
		// so a retry writes it again.
		os.Remove(path)
		return err
	}
	return nil
}

// directAlign is the alignment of memory, offsets and lengths that
// writeDirect keeps for O_DIRECT: every Linux block device's logical block
// size divides it.
const directAlign = 4096

// minDirectWrite is the smallest payload a durable write sends with
// O_DIRECT; smaller ones go through the page cache.
const minDirectWrite = 256 << 10

// writeFile writes hdr and payload to the new, empty file f. A durable
// write of a large payload goes around the page cache (writeDirect): its
// bytes reach the disk with the fsync that follows anyway, and the copy
// into cache pages, which costs a node writing chunks as much CPU as
// hashing them, is spared. Where O_DIRECT is refused (a file system
// without it), the bytes go through the cache as for any other write.
func (d *Disk) writeFile(f *os.File, hdr, payload []byte, durable bool) error {
	if durable && len(payload) >= minDirectWrite {
		if done, err := d.writeDirect(f, hdr, payload); done || err != nil {
			return err
		}
	}
	if _, err := f.Write(hdr); err != nil {
		return err
	}
	_, err := f.Write(payload)
	return err
}

// writeDirect writes hdr and payload to f with O_DIRECT, from one aligned
// buffer padded to a whole number of blocks, and then cuts the file to its
// length. It reports false, leaving f empty, if f cannot do O_DIRECT or
// the write came up short.
func (d *Disk) writeDirect(f *os.File, hdr, payload []byte) (bool, error) {
	size := len(hdr) + len(payload)
	buf, ok := d.directBuffer(size)
	if !ok {
		return false, nil
	}
	defer d.opts.Buffers.Put(buf)
	n := copy(buf, hdr)
	n += copy(buf[n:], payload)
	clear(buf[n:])
	set, err := directIO(f, func(fd int) (err error) {
		n, err = unix.Pwrite(fd, buf, 0)
		return err
	})
	if !set {
		return false, nil
	}
	switch {
	case err == nil && n == len(buf):
		return true, f.Truncate(int64(size))
	case err == nil || errors.Is(err, unix.EINVAL):
		// A short write (a nearly full file system answers so) or no
		// O_DIRECT on this file system: start over through the page
		// cache, which reports a lack of space as any write does.
		return false, f.Truncate(0)
	}
	return true, err
}

// Get implements Store. A chunk file found corrupt is moved out of the way
// (into the quarantine directory) after the error is reported, so the store
// no longer holds the chunk and a later Put stores it afresh.
func (d *Disk) Get(ctx context.Context, id ID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("disk get %s: %w", id, err)
	}
	if plain, held, err := d.getPacked(id); held {
		return plain, err
	}
	path := d.Path(id)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("disk get %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("disk get %s: %w", id, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("disk get %s: %w", id, err)
	}
	plain, err := d.readFile(f, info.Size())
	if err == nil && !d.opts.VerifiedPuts {
		err = checkID(id, plain)
	}
	if err == nil {
		return plain, nil
	}
	if !errors.Is(err, ErrCorrupt) {
		return nil, fmt.Errorf("disk get %s: %w", id, err)
	}
	if qerr := d.quarantine(id, info); qerr != nil {
		err = errors.Join(err, qerr)
	}
	return nil, fmt.Errorf("disk get %s: %w", id, err)
}

// getPacked returns chunk id from the packs, and whether they hold it. A
// damaged record is dropped after the error is reported, as a damaged file
// is quarantined, so a later Put stores the chunk afresh.
func (d *Disk) getPacked(id ID) ([]byte, bool, error) {
	body, held, err := d.packs.get(id)
	if !held {
		return nil, false, nil
	}
	var plain []byte
	if err == nil {
		plain, err = readChunkFile(bytes.NewReader(body), int64(len(body)), nil)
	}
	if err == nil && !d.opts.VerifiedPuts {
		err = checkID(id, plain)
	}
	if err == nil {
		return plain, true, nil
	}
	if errors.Is(err, ErrCorrupt) {
		d.packs.remove(id, time.Time{})
	}
	return nil, true, fmt.Errorf("disk get %s: %w", id, err)
}

// readChunkFile reads a chunk file of size bytes from f and returns its
// plain bytes: for a chunk stored as it is, in a buffer from bufs. A
// malformed file gives an error wrapping ErrCorrupt.
func readChunkFile(f io.Reader, size int64, bufs *Buffers) ([]byte, error) {
	if err := checkFileSize(size); err != nil {
		return nil, err
	}
	var hb [headerSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil {
		return nil, err
	}
	h, err := fileHeader(hb[:], size)
	if err != nil {
		return nil, err
	}
	payload := bufs.Get(int(h.payloadLen))
	if _, err := io.ReadFull(f, payload); err != nil {
		return nil, err
	}
	return h.decodeOwned(payload, bufs)
}

// checkFileSize reports a chunk file of size bytes that no chunk can
// have made.
func checkFileSize(size int64) error {
	if size < headerSize || size > headerSize+MaxChunkSize+MaxChunkSize/8 {
		return fmt.Errorf("chunk file of %d bytes: %w", size, ErrCorrupt)
	}
	return nil
}

// fileHeader decodes the header hb of a chunk file of size bytes and
// checks that the file's length is the one it gives.
func fileHeader(hb []byte, size int64) (header, error) {
	h, err := decodeHeader(hb)
	if err != nil {
		return h, err
	}
	return h, h.checkLen(size)
}

// decodeOwned is decodeBody of a payload in a buffer from bufs, which it
// gives back unless the plain bytes returned are in it.
func (h header) decodeOwned(payload []byte, bufs *Buffers) ([]byte, error) {
	plain, err := h.decodeBody(payload)
	if err != nil || h.flags&flagZstd != 0 {
		bufs.Put(payload)
	}
	return plain, err
}

// minDirectRead is the smallest chunk file Get reads with O_DIRECT;
// smaller ones go through the page cache.
const minDirectRead = headerSize + minDirectWrite

// readFile reads the chunk file f of size bytes, as readChunkFile does.
// A large file is read around the page cache (readDirect): a node serves
// chunks to mounts, which cache them, and copying them through cache
// pages on the way (allocating, filling and later reclaiming the pages)
// cost more CPU than the read itself, for a second copy of bytes the
// mount already keeps.
func (d *Disk) readFile(f *os.File, size int64) ([]byte, error) {
	if size >= minDirectRead {
		if plain, done, err := d.readDirect(f, size); done {
			return plain, err
		}
	}
	return readChunkFile(f, size, d.opts.Buffers)
}

// readDirect reads the chunk file f of size bytes with O_DIRECT into one
// aligned buffer and decodes it there. It reports false, having consumed
// nothing of f, if f cannot be read so.
func (d *Disk) readDirect(f *os.File, size int64) ([]byte, bool, error) {
	if err := checkFileSize(size); err != nil {
		return nil, true, err
	}
	buf, ok := d.directBuffer(int(size))
	if !ok {
		return nil, false, nil
	}
	set, err := directIO(f, func(fd int) error {
		for n := 0; n < int(size); {
			m, err := unix.Pread(fd, buf[n:], int64(n))
			switch {
			case err != nil:
				return err
			case m == 0:
				return fmt.Errorf("chunk file of %d bytes ended at %d: %w", size, n, io.ErrUnexpectedEOF)
			}
			n += m
		}
		return nil
	})
	if err != nil || !set {
		d.opts.Buffers.Put(buf)
		if !set || errors.Is(err, unix.EINVAL) {
			return nil, false, nil // no O_DIRECT here: through the page cache
		}
		return nil, true, err
	}
	h, err := fileHeader(buf[:headerSize], size)
	if err != nil {
		d.opts.Buffers.Put(buf)
		return nil, true, err
	}
	// The payload moves to the buffer's start, so that the buffer returned
	// can go back to its free list.
	payload := buf[:copy(buf, buf[headerSize:size])]
	plain, err := h.decodeOwned(payload, d.opts.Buffers)
	return plain, true, err
}

// directBuffer returns a buffer from the free list for O_DIRECT transfers
// of size bytes: aligned, and padded to a whole number of blocks. It
// reports false if the buffer it got is not aligned.
func (d *Disk) directBuffer(size int) ([]byte, bool) {
	padded := (size + directAlign - 1) / directAlign * directAlign
	buf := d.opts.Buffers.Get(padded)
	if uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%directAlign != 0 {
		d.opts.Buffers.Put(buf)
		return nil, false // large Go allocations start on a page; be sure
	}
	return buf, true
}

// directIO calls op with f's descriptor in O_DIRECT mode, then puts f's
// mode back. It reports false, without calling op, if f's mode could not
// be set, and an error from op or else from putting the mode back.
func directIO(f *os.File, op func(fd int) error) (bool, error) {
	fd := int(f.Fd())
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return false, nil
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_DIRECT); err != nil {
		return false, nil
	}
	err = op(fd)
	if _, rerr := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags); err == nil {
		err = rerr
	}
	return true, err
}

// quarantine moves the corrupt chunk file described by info out of the
// store, unless it has been replaced meanwhile.
func (d *Disk) quarantine(id ID, info fs.FileInfo) error {
	mu := d.lockID(id)
	mu.Lock()
	defer mu.Unlock()
	path := d.Path(id)
	now, err := os.Lstat(path)
	if err != nil || !os.SameFile(info, now) {
		return nil // deleted or replaced meanwhile
	}
	qdir := filepath.Join(d.dir, quarantineDir)
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	dst := filepath.Join(qdir, fmt.Sprintf("%s.%d", id, time.Now().UnixNano()))
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	d.chunks.Add(-1)
	d.bytes.Add(-info.Size())
	return nil
}

// Has implements Store.
func (d *Disk) Has(ctx context.Context, id ID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("disk has %s: %w", id, err)
	}
	if d.packs.has(id) {
		return true, nil
	}
	_, err := os.Lstat(d.Path(id))
	return presence("has", id, err)
}

// Delete implements Deleter.
func (d *Disk) Delete(ctx context.Context, id ID, before time.Time) (bool, error) {
	unlock, err := d.lockLive(ctx, "delete", id)
	if err != nil {
		return false, err
	}
	defer unlock()
	packed, err := d.deletePacked(id, before)
	if err != nil {
		return false, err
	}
	path := d.Path(id)
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return packed, nil
	}
	if err != nil {
		return packed, fmt.Errorf("disk delete %s: %w", id, err)
	}
	if !info.ModTime().Before(before) {
		return packed, nil
	}
	if err := os.Remove(path); err != nil {
		return false, fmt.Errorf("disk delete %s: %w", id, err)
	}
	d.chunks.Add(-1)
	d.bytes.Add(-info.Size())
	d.lazyMu.Lock()
	delete(d.lazy, id)
	d.lazyMu.Unlock()
	// No directory fsync: a removal a crash undoes leaves a complete,
	// unreferenced chunk file, which the next collection removes again.
	return true, nil
}

// logger returns the store's logger.
func (d *Disk) logger() *slog.Logger {
	if d.opts.Log != nil {
		return d.opts.Log
	}
	return slog.Default()
}

// deletePacked deletes chunk id from the packs if they hold it and it was
// last written before before, and reports whether it did. A pack left
// mostly dead is then compacted. Called with id's stripe lock held.
func (d *Disk) deletePacked(id ID, before time.Time) (bool, error) {
	if before.IsZero() {
		return false, nil
	}
	if d.packs.remove(id, before) == 0 {
		return false, nil
	}
	if num := d.packs.compactable(); num != 0 {
		if err := d.packs.compact(num); err != nil {
			// The chunk is gone all the same; the pack waits for the
			// next delete to be compacted.
			d.logger().Warn("compact pack failed", "pack", num, "err", err)
		}
	}
	return true, nil
}

// List implements Lister. Chunks put or deleted while List runs may or may
// not be reported.
func (d *Disk) List(ctx context.Context, fn func(id ID, modTime time.Time) error) error {
	if err := d.packs.each(fn); err != nil {
		return err
	}
	top := filepath.Join(d.dir, chunksDir)
	for i := range fanout {
		sub := filepath.Join(top, fmt.Sprintf("%02x", i))
		ents, err := os.ReadDir(sub)
		if err != nil {
			return fmt.Errorf("disk list %s: %w", d.dir, err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("disk list %s: %w", d.dir, err)
			}
			id, err := ParseID(e.Name())
			if err != nil || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("disk list %s: %w", d.dir, err)
			}
			if err := fn(id, info.ModTime()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stat implements Stater. Bytes counts whole chunk files, headers included;
// Available is the space free to unprivileged users less ReserveBytes.
func (d *Disk) Stat(ctx context.Context) (Usage, error) {
	if err := ctx.Err(); err != nil {
		return Usage{}, fmt.Errorf("disk stat %s: %w", d.dir, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return Usage{}, fmt.Errorf("disk stat %s: %w", d.dir, err)
	}
	packedChunks, packedBytes := d.packs.counts()
	u := Usage{
		Chunks:   d.chunks.Load() + packedChunks,
		Bytes:    d.bytes.Load() + packedBytes,
		Capacity: st.Blocks * uint64(st.Bsize),
	}
	if avail := st.Bavail * uint64(st.Bsize); avail > d.opts.ReserveBytes {
		u.Available = avail - d.opts.ReserveBytes
	}
	return u, nil
}

// writeFileDurable writes name in dir by the temp+fsync+rename+dir fsync
// protocol.
func writeFileDurable(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDirs(dir)
}

// syncDirs fsyncs each directory.
func syncDirs(dirs ...string) error {
	for _, dir := range dirs {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
