package chunkstore

import (
	"bytes"
	"testing"
)

// packBytes encodes records as a pack holds them.
func packBytes(recs ...[]byte) []byte {
	var out []byte
	for _, body := range recs {
		r := packRecord{kind: recPut, id: Sum(body)}
		if len(body) == 0 {
			r.kind = recDelete
		}
		h := make([]byte, recHeaderSize)
		encodeRecordHeader(h, r, body)
		out = append(append(out, h...), body...)
	}
	return out
}

// FuzzScanRecords feeds arbitrary bytes to the pack scanner: it must not
// panic, must report records in order without overlap, and every record it
// reports must re-encode to exactly the bytes it was read from.
func FuzzScanRecords(f *testing.F) {
	body := append(encodeChunk(5, []byte("hello"), false), "hello"...)
	f.Add(packBytes(body, nil, body))
	f.Add(packBytes(body)[:recHeaderSize+10])
	f.Add(append([]byte("garbage"), packBytes(nil, body)...))
	f.Add([]byte("SHPK"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var last int64
		end := scanRecords(data, func(r packRecord, off int64) {
			if off < last {
				t.Fatalf("record at %d overlaps the one ending at %d", off, last)
			}
			stop := off + recHeaderSize + int64(r.n)
			if stop > int64(len(data)) {
				t.Fatalf("record at %d of %d bytes runs past the end (%d)", off, r.n, len(data))
			}
			h := make([]byte, recHeaderSize)
			encodeRecordHeader(h, r, data[off+recHeaderSize:stop])
			if !bytes.Equal(h, data[off:off+recHeaderSize]) {
				t.Fatalf("record at %d re-encodes differently", off)
			}
			last = stop
		})
		if end != last {
			t.Fatalf("scan ends at %d, last record at %d", end, last)
		}
	})
}
