package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// casync index file (.caibx/.caidx) object types and flags, from caformat.h.
const (
	caFormatIndex           uint64 = 0x96824d9c7b129ff9
	caFormatTable           uint64 = 0xe75b9e112f17417d
	caFormatTableTailMarker uint64 = 0x4b4f050e5549ecd1
	caFormatSHA512_256      uint64 = 0x2000000000000000

	caIndexLen       = 48 // CaFormatIndex: header, flags, min, avg, max
	caTableHeaderLen = 16 // CaFormatTable header, size UINT64_MAX
	caTableItemLen   = 40 // le64 end offset, 32-byte id
	caTableTailLen   = 40 // zero, zero, index offset, table size, marker
)

// ErrIndex means an index payload is malformed.
var ErrIndex = errors.New("malformed chunk index")

// IndexEntry is one chunk of an index: its id (SHA-256 of the plain data)
// and its plain size in bytes.
type IndexEntry struct {
	ID   [32]byte
	Size uint64
}

// EncodeIndex encodes entries, in order, as a casync blob index (the
// .caibx layout: CA_FORMAT_INDEX with SHA-256 digests, then a
// CA_FORMAT_TABLE of end offsets and ids, then the table tail). The
// chunk size limits in the header are the smallest, average and largest
// entry sizes. Entries of size zero name no bytes and are left out.
func EncodeIndex(entries []IndexEntry) []byte {
	var n, total uint64
	minSize, maxSize := ^uint64(0), uint64(0)
	for _, e := range entries {
		if e.Size == 0 {
			continue
		}
		n++
		total += e.Size
		minSize = min(minSize, e.Size)
		maxSize = max(maxSize, e.Size)
	}
	avg := uint64(1)
	if n == 0 {
		minSize, maxSize = 1, 1
	} else {
		avg = min(max(total/n, minSize), maxSize)
	}
	tableSize := caTableHeaderLen + n*caTableItemLen + caTableTailLen
	b := make([]byte, 0, caIndexLen+tableSize)
	le := binary.LittleEndian
	b = le.AppendUint64(b, caIndexLen)
	b = le.AppendUint64(b, caFormatIndex)
	b = le.AppendUint64(b, 0) // feature flags: no SHA512_256, so SHA-256
	b = le.AppendUint64(b, minSize)
	b = le.AppendUint64(b, avg)
	b = le.AppendUint64(b, maxSize)
	b = le.AppendUint64(b, ^uint64(0))
	b = le.AppendUint64(b, caFormatTable)
	var off uint64
	for _, e := range entries {
		if e.Size == 0 {
			continue
		}
		off += e.Size
		b = le.AppendUint64(b, off)
		b = append(b, e.ID[:]...)
	}
	b = le.AppendUint64(b, 0)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint64(b, caIndexLen)
	b = le.AppendUint64(b, tableSize)
	b = le.AppendUint64(b, caFormatTableTailMarker)
	return b
}

// DecodeIndex decodes one or more casync index documents laid end to end
// (as EncodeIndex makes them, or a real casync's .caibx with SHA-256
// digests) and returns their entries in order. It fails with an error
// wrapping ErrIndex on any deviation: wrong object sizes or types,
// SHA-512/256 digests, offsets not strictly increasing, a bad tail, or
// trailing bytes.
func DecodeIndex(b []byte) ([]IndexEntry, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("decode index: empty: %w", ErrIndex)
	}
	var out []IndexEntry
	for doc := 0; len(b) > 0; doc++ {
		var err error
		out, b, err = decodeIndexDoc(out, b)
		if err != nil {
			return nil, fmt.Errorf("decode index document %d: %w", doc, err)
		}
	}
	return out, nil
}

// decodeIndexDoc appends the entries of the index document at the start
// of b to out and returns the bytes after it.
func decodeIndexDoc(out []IndexEntry, b []byte) ([]IndexEntry, []byte, error) {
	le := binary.LittleEndian
	if len(b) < caIndexLen+caTableHeaderLen+caTableTailLen {
		return nil, nil, fmt.Errorf("%d bytes, shorter than an empty index: %w", len(b), ErrIndex)
	}
	if size, typ := le.Uint64(b), le.Uint64(b[8:]); size != caIndexLen || typ != caFormatIndex {
		return nil, nil, fmt.Errorf("index header size %d type %#x, want %d %#x: %w", size, typ, caIndexLen, caFormatIndex, ErrIndex)
	}
	flags, minSize, avg, maxSize := le.Uint64(b[16:]), le.Uint64(b[24:]), le.Uint64(b[32:]), le.Uint64(b[40:])
	if flags&caFormatSHA512_256 != 0 {
		return nil, nil, fmt.Errorf("index uses SHA-512/256 chunk ids, want SHA-256: %w", ErrIndex)
	}
	if minSize > avg || avg > maxSize {
		return nil, nil, fmt.Errorf("index chunk sizes min %d avg %d max %d out of order: %w", minSize, avg, maxSize, ErrIndex)
	}
	t := b[caIndexLen:]
	if size, typ := le.Uint64(t), le.Uint64(t[8:]); size != ^uint64(0) || typ != caFormatTable {
		return nil, nil, fmt.Errorf("table header size %#x type %#x, want %#x %#x: %w", size, typ, ^uint64(0), caFormatTable, ErrIndex)
	}
	items := t[caTableHeaderLen:]
	var prev uint64
	for n := uint64(0); ; n++ {
		if len(items) < caTableItemLen {
			return nil, nil, fmt.Errorf("table ends without its tail: %w", ErrIndex)
		}
		it := items[:caTableItemLen]
		items = items[caTableItemLen:]
		off := le.Uint64(it)
		if off == 0 && le.Uint64(it[8:]) == 0 {
			// The tail: zero, zero, index offset, table size, marker.
			idx, size, marker := le.Uint64(it[16:]), le.Uint64(it[24:]), le.Uint64(it[32:])
			want := caTableHeaderLen + n*caTableItemLen + caTableTailLen
			if idx != caIndexLen || size != want || marker != caFormatTableTailMarker {
				return nil, nil, fmt.Errorf("table tail index offset %d size %d marker %#x, want %d %d %#x: %w",
					idx, size, marker, caIndexLen, want, caFormatTableTailMarker, ErrIndex)
			}
			return out, items, nil
		}
		if off <= prev {
			return nil, nil, fmt.Errorf("table item %d ends at offset %d, not after %d: %w", n, off, prev, ErrIndex)
		}
		var e IndexEntry
		copy(e.ID[:], it[8:])
		e.Size = off - prev
		prev = off
		out = append(out, e)
	}
}
