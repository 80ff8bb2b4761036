package chunkstore

// This file holds the packs: append-only files that keep the small chunks
// PutLazy stores (a commit's inline chunks), many to a file. A file of its
// own costs a chunk an inode, a directory entry, a rename and a time
// stamp, several times the CPU of writing its bytes; a pack record costs
// one write. The package doc's "Packs" section gives the format.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	packsDir = "packs"
	// MaxPackedChunk is the largest chunk (plain bytes) PutLazy keeps in
	// a pack; larger ones get files of their own.
	MaxPackedChunk = 64 << 10
	packMagic      = 0x4b504853 // "SHPK", little-endian
	recHeaderSize  = 56
	packSuffix     = ".pack"
)

// packRollBytes is the size past which a pack is closed to appends and a
// new one started. A variable so that tests can roll small packs.
var packRollBytes int64 = 64 << 20

// Record kinds.
const (
	recPut    byte = 1 // body: the chunk, as a chunk file holds it
	recTouch  byte = 2 // no body: the chunk was written again at mtime
	recDelete byte = 3 // no body: the chunk is gone
)

// errCorruptRecord means a pack record failed its checks.
var errCorruptRecord = errors.New("corrupt pack record")

// packRecord is one decoded pack record header.
type packRecord struct {
	kind  byte
	id    ID
	mtime int64 // Unix nanoseconds
	n     uint32
}

// encodeRecordHeader writes r's header into h (recHeaderSize bytes), its
// CRC-32C covering the header and body.
func encodeRecordHeader(h []byte, r packRecord, body []byte) {
	binary.LittleEndian.PutUint32(h[0:], packMagic)
	h[4], h[5], h[6], h[7] = r.kind, 0, 0, 0
	copy(h[8:40], r.id[:])
	binary.LittleEndian.PutUint64(h[40:], uint64(r.mtime))
	binary.LittleEndian.PutUint32(h[48:], uint32(len(body)))
	crc := crc32.Update(crc32.Checksum(h[:52], castagnoli), castagnoli, body)
	binary.LittleEndian.PutUint32(h[52:], crc)
}

// decodeRecordHeader parses a record header. It checks the magic, the kind
// and the body length, not the CRC (checkRecord does, with the body).
func decodeRecordHeader(h []byte) (packRecord, error) {
	if len(h) < recHeaderSize || binary.LittleEndian.Uint32(h) != packMagic {
		return packRecord{}, fmt.Errorf("bad magic: %w", errCorruptRecord)
	}
	r := packRecord{kind: h[4], mtime: int64(binary.LittleEndian.Uint64(h[40:])), n: binary.LittleEndian.Uint32(h[48:])}
	copy(r.id[:], h[8:40])
	switch {
	case h[5] != 0 || h[6] != 0 || h[7] != 0:
		return packRecord{}, fmt.Errorf("reserved bytes set: %w", errCorruptRecord)
	case r.kind == recPut && (r.n < headerSize || r.n > headerSize+MaxPackedChunk+MaxPackedChunk/8):
		return packRecord{}, fmt.Errorf("put of %d bytes: %w", r.n, errCorruptRecord)
	case r.kind != recPut && (r.kind < recTouch || r.kind > recDelete || r.n != 0):
		return packRecord{}, fmt.Errorf("kind %d with %d bytes: %w", r.kind, r.n, errCorruptRecord)
	}
	return r, nil
}

// checkRecord verifies the CRC of a record's header h and body.
func checkRecord(h, body []byte) error {
	want := binary.LittleEndian.Uint32(h[52:])
	if crc32.Update(crc32.Checksum(h[:52], castagnoli), castagnoli, body) != want {
		return fmt.Errorf("checksum mismatch: %w", errCorruptRecord)
	}
	return nil
}

// packed is where a chunk's latest put record is, and when the chunk was
// last written.
type packed struct {
	pack  uint32
	off   int64 // of the record header
	n     uint32
	mtime int64
}

// packs is the set of pack files of a Disk and the index of the chunks
// they hold. Appends go to the newest pack, under mu; reads share mu.
type packs struct {
	dir string

	mu    sync.RWMutex
	index map[ID]packed
	files map[uint32]*os.File
	size  map[uint32]int64 // bytes of each pack
	live  map[uint32]int64 // bytes of each pack's put records still indexed
	cur   uint32           // the pack appended to
	dirty map[uint32]bool  // packs written since the last sync
	// touched holds the chunks whose mtime changed in the index only:
	// sync writes their touch records.
	touched map[ID]struct{}
	newFile bool // a pack was created since the last sync
}

// openPacks opens (creating if need be) the packs under dir and rebuilds
// the index by reading them in order. A record cut short at the end of
// the newest pack (a crash during an append) is cut off; a damaged record
// elsewhere is skipped up to the next intact one.
func openPacks(dir string) (*packs, error) {
	p := &packs{dir: dir, index: map[ID]packed{}, files: map[uint32]*os.File{}, size: map[uint32]int64{},
		live: map[uint32]int64{}, dirty: map[uint32]bool{}, touched: map[ID]struct{}{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []uint32
	for _, e := range ents {
		num, ok := strings.CutSuffix(e.Name(), packSuffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(num, 16, 32)
		if err != nil {
			continue
		}
		nums = append(nums, uint32(v))
	}
	slices.Sort(nums)
	for i, num := range nums {
		if err := p.load(num, i == len(nums)-1); err != nil {
			p.close()
			return nil, err
		}
	}
	if len(nums) == 0 {
		if err := p.create(1); err != nil {
			p.close()
			return nil, err
		}
	} else {
		p.cur = nums[len(nums)-1]
	}
	return p, nil
}

func (p *packs) path(num uint32) string {
	return filepath.Join(p.dir, fmt.Sprintf("%08x%s", num, packSuffix))
}

// create starts pack num and makes it the one appended to.
func (p *packs) create(num uint32) error {
	f, err := os.OpenFile(p.path(num), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create pack: %w", err)
	}
	p.files[num], p.size[num], p.cur, p.newFile = f, 0, num, true
	return nil
}

// load reads pack num into the index. last says it is the newest pack, in
// which a damaged tail is cut off.
func (p *packs) load(num uint32, last bool) error {
	path := p.path(num)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open pack: %w", err)
	}
	p.files[num] = f
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read pack %s: %w", path, err)
	}
	end := scanRecords(data, func(r packRecord, off int64) { p.apply(r, num, off) })
	p.size[num] = int64(len(data))
	if last && end < int64(len(data)) {
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("cut damaged tail of pack %s: %w", path, err)
		}
		p.size[num] = end
	}
	return nil
}

// scanRecords calls fn for each intact record of a pack's bytes, in order,
// and returns the end of the last intact one. A damaged record is skipped
// by looking for the next intact one from the byte after its start.
func scanRecords(data []byte, fn func(r packRecord, off int64)) int64 {
	var end int64
	for off := 0; off+recHeaderSize <= len(data); {
		h := data[off : off+recHeaderSize]
		r, err := decodeRecordHeader(h)
		bodyEnd := off + recHeaderSize + int(r.n)
		if err == nil && bodyEnd <= len(data) {
			err = checkRecord(h, data[off+recHeaderSize:bodyEnd])
		} else if err == nil {
			err = errCorruptRecord
		}
		if err != nil {
			off++
			continue
		}
		fn(r, int64(off))
		off = bodyEnd
		end = int64(bodyEnd)
	}
	return end
}

// apply updates the index with record r found at off in pack num.
func (p *packs) apply(r packRecord, num uint32, off int64) {
	old, had := p.index[r.id]
	switch r.kind {
	case recPut:
		if had {
			p.live[old.pack] -= recHeaderSize + int64(old.n)
		}
		p.index[r.id] = packed{pack: num, off: off, n: r.n, mtime: r.mtime}
		p.live[num] += recHeaderSize + int64(r.n)
	case recTouch:
		if had {
			old.mtime = max(old.mtime, r.mtime)
			p.index[r.id] = old
		}
	case recDelete:
		if had {
			p.live[old.pack] -= recHeaderSize + int64(old.n)
			delete(p.index, r.id)
		}
	}
}

// appendRecord appends a record to the newest pack, starting a new pack
// first if that one is full. On a failed write the pack is cut back to
// its old end. Called with mu held.
func (p *packs) appendRecord(r packRecord, body []byte) (int64, error) {
	if p.size[p.cur] >= packRollBytes {
		if err := p.create(p.cur + 1); err != nil {
			return 0, err
		}
	}
	r.n = uint32(len(body))
	buf := make([]byte, recHeaderSize+len(body))
	encodeRecordHeader(buf, r, body)
	copy(buf[recHeaderSize:], body)
	f, off := p.files[p.cur], p.size[p.cur]
	if _, err := f.WriteAt(buf, off); err != nil {
		if terr := f.Truncate(off); terr != nil {
			err = errors.Join(err, terr)
		}
		return 0, fmt.Errorf("append to pack %s: %w", f.Name(), err)
	}
	p.size[p.cur] = off + int64(len(buf))
	p.dirty[p.cur] = true
	p.apply(r, p.cur, off)
	return off, nil
}

// put stores chunk id, encoded as a chunk file holds it (body), written
// at mtime, unless the packs hold it already, in which case it is touched.
// It reports whether it added the chunk.
func (p *packs) put(id ID, body []byte, mtime time.Time) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.touchLocked(id, mtime) {
		return false, nil
	}
	_, err := p.appendRecord(packRecord{kind: recPut, id: id, mtime: mtime.UnixNano()}, body)
	return err == nil, err
}

// touch notes that chunk id was written again at mtime, in the index; the
// next sync writes it down. It reports whether the packs hold the chunk.
func (p *packs) touch(id ID, mtime time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.touchLocked(id, mtime)
}

func (p *packs) touchLocked(id ID, mtime time.Time) bool {
	loc, ok := p.index[id]
	if !ok {
		return false
	}
	loc.mtime = max(loc.mtime, mtime.UnixNano())
	p.index[id] = loc
	p.touched[id] = struct{}{}
	return true
}

// has reports whether the packs hold chunk id.
func (p *packs) has(id ID) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.index[id]
	return ok
}

// get returns the body of chunk id's put record (its chunk file bytes) and
// whether the packs hold it. A record that fails its checks gives an error
// wrapping ErrCorrupt.
func (p *packs) get(id ID) ([]byte, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	loc, ok := p.index[id]
	if !ok {
		return nil, false, nil
	}
	buf := make([]byte, recHeaderSize+int(loc.n))
	if _, err := p.files[loc.pack].ReadAt(buf, loc.off); err != nil {
		return nil, true, fmt.Errorf("read pack %08x at %d: %w", loc.pack, loc.off, err)
	}
	r, err := decodeRecordHeader(buf)
	if err == nil && (r.id != id || r.kind != recPut || r.n != loc.n) {
		err = fmt.Errorf("record of %s where %s was: %w", r.id, id, errCorruptRecord)
	}
	if err == nil {
		err = checkRecord(buf, buf[recHeaderSize:])
	}
	if err != nil {
		return nil, true, fmt.Errorf("pack %08x at %d: %w (%w)", loc.pack, loc.off, ErrCorrupt, err)
	}
	return buf[recHeaderSize:], true, nil
}

// remove deletes chunk id if the packs hold it and it was last written
// before before (or always, if before is zero). It reports the bytes of
// its record if it did.
func (p *packs) remove(id ID, before time.Time) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	loc, ok := p.index[id]
	if !ok || (!before.IsZero() && loc.mtime >= before.UnixNano()) {
		return 0
	}
	if _, err := p.appendRecord(packRecord{kind: recDelete, id: id}, nil); err != nil {
		// No room for the tombstone (a full disk is when deletes matter
		// most): the chunk goes from the index all the same. A restart
		// may bring it back, which costs space until the next sweep,
		// never data.
		p.live[loc.pack] -= recHeaderSize + int64(loc.n)
		delete(p.index, id)
	}
	delete(p.touched, id)
	return recHeaderSize + int64(loc.n)
}

// each calls fn for every chunk the packs hold, with the time it was last
// written, from a copy of the index taken first.
func (p *packs) each(fn func(id ID, mtime time.Time) error) error {
	p.mu.RLock()
	type ent struct {
		id ID
		t  int64
	}
	ents := make([]ent, 0, len(p.index))
	for id, loc := range p.index {
		ents = append(ents, ent{id, loc.mtime})
	}
	p.mu.RUnlock()
	for _, e := range ents {
		if err := fn(e.id, time.Unix(0, e.t)); err != nil {
			return err
		}
	}
	return nil
}

// counts returns how many chunks the packs hold and the bytes of their
// put records.
func (p *packs) counts() (chunks, bytes int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, b := range p.live {
		bytes += b
	}
	return int64(len(p.index)), bytes
}

// sync writes the touches noted in the index and makes every record
// appended so far durable.
func (p *packs) sync() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.syncLocked()
}

func (p *packs) syncLocked() error {
	for id := range p.touched {
		if loc, ok := p.index[id]; ok {
			if _, err := p.appendRecord(packRecord{kind: recTouch, id: id, mtime: loc.mtime}, nil); err != nil {
				return err
			}
		}
		delete(p.touched, id)
	}
	for num := range p.dirty {
		if err := p.files[num].Sync(); err != nil {
			return fmt.Errorf("sync pack %s: %w", p.files[num].Name(), err)
		}
		delete(p.dirty, num)
	}
	if p.newFile {
		if err := syncDirs(p.dir); err != nil {
			return fmt.Errorf("sync packs directory: %w", err)
		}
		p.newFile = false
	}
	return nil
}

// compactable returns the oldest pack if it is time to compact it, or 0:
// when it is not the pack appended to and the put records still indexed
// take less than half of the packs' bytes, or of its own. Only the oldest
// pack is ever compacted, so the delete records it drops can have no
// older put behind them to bring back.
func (p *packs) compactable() uint32 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	oldest := p.cur
	var live, size int64
	for num, n := range p.size {
		oldest = min(oldest, num)
		live, size = live+p.live[num], size+n
	}
	if oldest == p.cur {
		return 0
	}
	if live*2 < size || p.live[oldest]*2 < p.size[oldest] {
		return oldest
	}
	return 0
}

// compact copies the chunks pack num still holds to the newest pack, makes
// them durable there and removes pack num.
func (p *packs) compact(num uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.files[num]
	if f == nil || num == p.cur || num != slices.Min(slices.Collect(maps.Keys(p.files))) {
		return nil // not the oldest pack any more
	}
	for id, loc := range p.index {
		if loc.pack != num {
			continue
		}
		buf := make([]byte, recHeaderSize+int(loc.n))
		if _, err := f.ReadAt(buf, loc.off); err != nil {
			return fmt.Errorf("compact pack %s: %w", f.Name(), err)
		}
		if err := checkRecord(buf, buf[recHeaderSize:]); err != nil {
			// Damaged: not worth moving; Get would fail on it too.
			p.live[num] -= recHeaderSize + int64(loc.n)
			delete(p.index, id)
			continue
		}
		if _, err := p.appendRecord(packRecord{kind: recPut, id: id, mtime: loc.mtime}, buf[recHeaderSize:]); err != nil {
			return fmt.Errorf("compact pack %s: %w", f.Name(), err)
		}
	}
	// What was durable in the old pack must be in the newer ones before
	// the old one goes.
	if err := p.syncLocked(); err != nil {
		return fmt.Errorf("compact pack %s: %w", f.Name(), err)
	}
	f.Close()
	delete(p.files, num)
	delete(p.size, num)
	delete(p.live, num)
	delete(p.dirty, num)
	if err := os.Remove(p.path(num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("compact pack: %w", err)
	}
	return nil
}

// close closes the pack files.
func (p *packs) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for num, f := range p.files {
		errs = append(errs, f.Close())
		delete(p.files, num)
	}
	return errors.Join(errs...)
}
