package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"testing"
)

func id(b byte) [32]byte {
	var x [32]byte
	for i := range x {
		x[i] = b + byte(i)
	}
	return x
}

// casyncMsg builds raw message bytes: le64 size, le64 type, body.
func casyncMsg(typ uint64, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	out := binary.LittleEndian.AppendUint64(nil, uint64(CasyncHeaderLen+len(b)))
	out = binary.LittleEndian.AppendUint64(out, typ)
	return append(out, b...)
}

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func TestCasyncRoundTrip(t *testing.T) {
	i1, i2 := id(1), id(2)
	for _, tc := range []struct {
		name string
		msg  CasyncMessage
		wire []byte // exact encoding
	}{
		{"hello", &Hello{Features: CasyncReadableStore | CasyncPushChunks}, casyncMsg(CasyncMsgHello, le64(0x201))},
		{"index", &Index{Data: []byte("idx")}, casyncMsg(CasyncMsgIndex, []byte("idx"))},
		{"index empty", &Index{Data: []byte{}}, casyncMsg(CasyncMsgIndex)},
		{"index eof", &IndexEOF{}, casyncMsg(CasyncMsgIndexEOF)},
		{"archive", &Archive{Data: []byte("a")}, casyncMsg(CasyncMsgArchive, []byte("a"))},
		{"archive eof", &ArchiveEOF{}, casyncMsg(CasyncMsgArchiveEOF)},
		{"request", &Request{Flags: CasyncRequestHighPrio, IDs: [][32]byte{i1, i2}}, casyncMsg(CasyncMsgRequest, le64(1), i1[:], i2[:])},
		{"request empty", &Request{IDs: [][32]byte{}}, casyncMsg(CasyncMsgRequest, le64(0))},
		{"chunk", &Chunk{Flags: CasyncChunkCompressed, ID: i1, Data: []byte("data")}, casyncMsg(CasyncMsgChunk, le64(1), i1[:], []byte("data"))},
		{"chunk crc", &Chunk{Flags: CasyncChunkCRC32C, ID: i1, Data: []byte("data")}, casyncMsg(CasyncMsgChunk, le64(2), i1[:], le32(crc32.Checksum([]byte("data"), crc32.MakeTable(crc32.Castagnoli))), []byte("data"))},
		{"chunk crc empty", &Chunk{Flags: CasyncChunkCRC32C, ID: i2, Data: []byte{}}, casyncMsg(CasyncMsgChunk, le64(2), i2[:], le32(0))},
		{"chunk big", &Chunk{ID: i2, Data: bytes.Repeat([]byte{7}, 200<<10)}, casyncMsg(CasyncMsgChunk, le64(0), i2[:], bytes.Repeat([]byte{7}, 200<<10))},
		{"missing", &Missing{ID: i2}, casyncMsg(CasyncMsgMissing, i2[:])},
		{"goodbye", &Goodbye{}, casyncMsg(CasyncMsgGoodbye)},
		{"abort", &Abort{Errno: 5, Reason: "disk on fire"}, casyncMsg(CasyncMsgAbort, le64(5), []byte("disk on fire\x00"))},
		{"abort empty reason", &Abort{}, casyncMsg(CasyncMsgAbort, le64(0), []byte{0})},
		{"abort long reason", &Abort{Errno: 1, Reason: string(bytes.Repeat([]byte("r"), 70<<10))}, casyncMsg(CasyncMsgAbort, le64(1), bytes.Repeat([]byte("r"), 70<<10), []byte{0})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteCasync(&buf, tc.msg); err != nil {
				t.Fatalf("WriteCasync: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), tc.wire) {
				t.Fatalf("encoded %x..., want %x...", head(buf.Bytes()), head(tc.wire))
			}
			got, err := ReadCasync(&buf)
			if err != nil {
				t.Fatalf("ReadCasync: %v", err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Errorf("got %#v, want %#v", got, tc.msg)
			}
			if _, err := ReadCasync(&buf); err != io.EOF {
				t.Errorf("ReadCasync at end: got %v, want io.EOF", err)
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }

func TestReadCasyncRejects(t *testing.T) {
	sized := func(size, typ uint64, body []byte) []byte {
		return append(append(le64(size), le64(typ)...), body...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown type", casyncMsg(0x1234), ErrCasync},
		{"size below header", sized(8, CasyncMsgGoodbye, nil), ErrCasync},
		{"size zero", sized(0, CasyncMsgIndex, nil), ErrCasync},
		{"size above max", sized(CasyncSizeMax+1, CasyncMsgIndex, nil), ErrCasync},
		{"huge size", sized(^uint64(0), CasyncMsgChunk, nil), ErrCasync},
		{"hello short", casyncMsg(CasyncMsgHello, []byte{1, 2, 3}), ErrCasync},
		{"hello long", casyncMsg(CasyncMsgHello, le64(1), le64(1)), ErrCasync},
		{"hello unknown flag", casyncMsg(CasyncMsgHello, le64(0x2000)), ErrCasync},
		{"goodbye with body", casyncMsg(CasyncMsgGoodbye, []byte{0}), ErrCasync},
		{"index eof with body", casyncMsg(CasyncMsgIndexEOF, []byte{0}), ErrCasync},
		{"request no flags", casyncMsg(CasyncMsgRequest), ErrCasync},
		{"request partial id", casyncMsg(CasyncMsgRequest, le64(0), make([]byte, 31)), ErrCasync},
		{"request unknown flag", casyncMsg(CasyncMsgRequest, le64(4), make([]byte, 32)), ErrCasync},
		{"chunk short", casyncMsg(CasyncMsgChunk, le64(0), make([]byte, 31)), ErrCasync},
		{"chunk unknown flag", casyncMsg(CasyncMsgChunk, le64(4), make([]byte, 32)), ErrCasync},
		{"chunk crc short", casyncMsg(CasyncMsgChunk, le64(2), make([]byte, 32+3)), ErrCasync},
		{"chunk crc mismatch", casyncMsg(CasyncMsgChunk, le64(2), make([]byte, 32), le32(1), []byte("data")), ErrChecksum},
		{"chunk crc of other data", casyncMsg(CasyncMsgChunk, le64(2), make([]byte, 32), le32(crc32.Checksum([]byte("data"), crc32.MakeTable(crc32.Castagnoli))), []byte("date")), ErrChecksum},
		{"missing short", casyncMsg(CasyncMsgMissing, make([]byte, 31)), ErrCasync},
		{"missing long", casyncMsg(CasyncMsgMissing, make([]byte, 33)), ErrCasync},
		{"abort no reason", casyncMsg(CasyncMsgAbort, le64(1)), ErrCasync},
		{"abort no NUL", casyncMsg(CasyncMsgAbort, le64(1), []byte("x")), ErrCasync},
		{"abort inner NUL", casyncMsg(CasyncMsgAbort, le64(1), []byte("a\x00b\x00")), ErrCasync},
		{"truncated header", []byte{1, 2, 3}, io.ErrUnexpectedEOF},
		{"truncated body", casyncMsg(CasyncMsgMissing, make([]byte, 32))[:40], io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ReadCasync(bytes.NewReader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %#v, %v, want error wrapping %v", m, err, tc.want)
			}
		})
	}
}

func TestWriteCasyncRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  CasyncMessage
	}{
		{"nil", nil},
		{"hello unknown flag", &Hello{Features: 1 << 13}},
		{"request unknown flag", &Request{Flags: 4}},
		{"chunk unknown flag", &Chunk{Flags: 4}},
		{"chunk too big", &Chunk{Data: make([]byte, CasyncSizeMax-casyncChunkFixedSize+1)}},
		{"request too big", &Request{IDs: make([][32]byte, (CasyncSizeMax-casyncRequestFixedSize)/32+1)}},
		{"abort NUL in reason", &Abort{Reason: "a\x00b"}},
		{"abort too big", &Abort{Reason: string(make([]byte, CasyncSizeMax-24))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteCasync(&buf, tc.msg)
			if !errors.Is(err, ErrCasync) {
				t.Errorf("got %v, want ErrCasync", err)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes, want 0", buf.Len())
			}
		})
	}
}

func TestCasyncLargestChunk(t *testing.T) {
	m := &Chunk{ID: id(3), Data: make([]byte, CasyncSizeMax-casyncChunkFixedSize)}
	var buf bytes.Buffer
	if err := WriteCasync(&buf, m); err != nil {
		t.Fatalf("WriteCasync of a %d-byte message: %v", CasyncSizeMax, err)
	}
	if buf.Len() != CasyncSizeMax {
		t.Fatalf("wrote %d bytes, want %d", buf.Len(), CasyncSizeMax)
	}
	got, err := ReadCasync(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.(*Chunk); len(c.Data) != len(m.Data) || c.ID != m.ID {
		t.Errorf("got chunk %x of %d bytes, want %x of %d", c.ID, len(c.Data), m.ID, len(m.Data))
	}
}

// TestCasyncPushOverStream runs the push flow over a mux stream.
func TestCasyncPushOverStream(t *testing.T) {
	a, b := sessionPair(t, SessionConfig{}, SessionConfig{Services: []string{ServiceChunks}})
	have := id(1)
	stored := make(chan [][32]byte, 1)
	serve(b, func(st *Stream) {
		var got [][32]byte
		defer func() { stored <- got }()
		if m, err := ReadCasync(st); err != nil || m.CasyncType() != CasyncMsgHello {
			t.Errorf("server: first message %v, %v, want HELLO", m, err)
			return
		}
		WriteCasync(st, &Hello{Features: CasyncWritableStore})
		var idx []byte
		for {
			m, err := ReadCasync(st)
			if err != nil {
				t.Errorf("server: %v", err)
				return
			}
			if i, ok := m.(*Index); ok {
				idx = append(idx, i.Data...)
				continue
			}
			if _, ok := m.(*IndexEOF); !ok {
				t.Errorf("server: got %T, want INDEX or INDEX_EOF", m)
				return
			}
			break
		}
		entries, err := DecodeIndex(idx)
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		var want [][32]byte
		for _, e := range entries {
			if e.ID != have {
				want = append(want, e.ID)
			}
		}
		WriteCasync(st, &Request{IDs: want})
		for range want {
			m, err := ReadCasync(st)
			if err != nil {
				t.Errorf("server: %v", err)
				return
			}
			if c, ok := m.(*Chunk); ok {
				got = append(got, c.ID)
			}
		}
		WriteCasync(st, &Goodbye{})
	})
	st, err := a.Open(t.Context(), ServiceChunks)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	chunks := map[[32]byte][]byte{id(1): []byte("one"), id(2): bytes.Repeat([]byte("two"), 100_000), id(3): []byte("three")}
	entries := []IndexEntry{{id(1), 3}, {id(2), 300_000}, {id(3), 5}}
	enc := EncodeIndex(entries)
	for _, m := range []CasyncMessage{&Hello{Features: CasyncPushChunks}, &Index{Data: enc[:50]}, &Index{Data: enc[50:]}, &IndexEOF{}} {
		if err := WriteCasync(st, m); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := ReadCasync(st); err != nil || m.CasyncType() != CasyncMsgHello {
		t.Fatalf("got %v, %v, want HELLO", m, err)
	}
	m, err := ReadCasync(st)
	if err != nil {
		t.Fatal(err)
	}
	req, ok := m.(*Request)
	if !ok || len(req.IDs) != 2 {
		t.Fatalf("got %#v, want a REQUEST for 2 chunks", m)
	}
	for _, rid := range req.IDs {
		WriteCasync(st, &Chunk{ID: rid, Data: chunks[rid]})
	}
	if m, err := ReadCasync(st); err != nil || m.CasyncType() != CasyncMsgGoodbye {
		t.Fatalf("got %v, %v, want GOODBYE", m, err)
	}
	if got := <-stored; !reflect.DeepEqual(got, [][32]byte{id(2), id(3)}) {
		t.Errorf("server stored %x, want ids 2 and 3", got)
	}
}

func FuzzReadCasync(f *testing.F) {
	i1 := id(9)
	for _, seed := range [][]byte{
		casyncMsg(CasyncMsgHello, le64(3)),
		casyncMsg(CasyncMsgRequest, le64(1), i1[:]),
		casyncMsg(CasyncMsgChunk, le64(1), i1[:], []byte("zz")),
		casyncMsg(CasyncMsgChunk, le64(2), i1[:], le32(crc32.Checksum([]byte("zz"), crc32.MakeTable(crc32.Castagnoli))), []byte("zz")),
		casyncMsg(CasyncMsgAbort, le64(5), []byte("why\x00")),
		casyncMsg(CasyncMsgMissing, i1[:]),
		casyncMsg(CasyncMsgIndexEOF),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadCasync(bytes.NewReader(in))
		if err != nil {
			if m != nil {
				t.Fatalf("got message %#v with error %v", m, err)
			}
			return
		}
		// A message that decodes re-encodes to the same bytes.
		var buf bytes.Buffer
		if err := WriteCasync(&buf, m); err != nil {
			t.Fatalf("re-encode %#v: %v", m, err)
		}
		size := binary.LittleEndian.Uint64(in)
		if !bytes.Equal(buf.Bytes(), in[:size]) {
			t.Fatalf("re-encoded %x, want %x", buf.Bytes(), in[:size])
		}
	})
}

func TestReadCasyncAllocTakesChunkMemory(t *testing.T) {
	var buf bytes.Buffer
	chunk := &Chunk{Flags: CasyncChunkCRC32C, ID: id(3), Data: []byte("payload")}
	for _, m := range []CasyncMessage{&Index{Data: []byte("idx")}, chunk, &Missing{ID: id(4)}} {
		if err := WriteCasync(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	var given [][]byte
	alloc := func(n int) []byte {
		b := make([]byte, n)
		given = append(given, b)
		return b
	}
	var got []CasyncMessage
	for range 3 {
		m, err := ReadCasyncAlloc(&buf, alloc)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	// Only the CHUNK's data came from alloc, and Data is that very slice.
	if len(given) != 1 || len(given[0]) != len(chunk.Data) {
		t.Fatalf("alloc gave %d buffers, want one of %d bytes for the CHUNK's data", len(given), len(chunk.Data))
	}
	c, ok := got[1].(*Chunk)
	if !ok || !reflect.DeepEqual(c, chunk) {
		t.Fatalf("second message %#v, want %#v", got[1], chunk)
	}
	if &c.Data[0] != &given[0][0] || cap(c.Data) != cap(given[0]) {
		t.Error("CHUNK data is not the buffer alloc returned")
	}
}
