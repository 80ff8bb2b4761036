package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"reflect"
	"testing"
	"time"
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
		{"shard request", &ShardRequest{Flags: 3, Expires: 1 << 60, Chunk: i1, Data: 4, Parity: 2, Index: 5, Grant: i2},
			casyncMsg(CasyncMsgShardRequest, le64(3), le64(1<<60), i1[:], []byte{4, 2, 5, 0, 0, 0, 0, 0}, i2[:])},
		{"request direct", &Request{Flags: CasyncRequestDirect, IDs: [][32]byte{i1}}, casyncMsg(CasyncMsgRequest, le64(4), i1[:])},
		{"shards", &Shards{ID: i1, Size: 5 << 20, Data: 2, Parity: 1, Expires: 77, Grant: i2, Holders: []string{"10.0.0.1:7420", "", "b:1"}},
			casyncMsg(CasyncMsgShards, i1[:], le32(5<<20), []byte{2, 1, 0, 0}, le64(77), i2[:], []byte("\x0d10.0.0.1:7420\x00\x03b:1"))},
		{"shards none", &Shards{ID: i2}, casyncMsg(CasyncMsgShards, i2[:], make([]byte, 16), make([]byte, 32))},
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
		{"shard request short", casyncMsg(CasyncMsgShardRequest, le64(0), le64(1), make([]byte, 32+8+31)), ErrCasync},
		{"shard request long", casyncMsg(CasyncMsgShardRequest, le64(0), le64(1), make([]byte, 32+8+33)), ErrCasync},
		{"shard request unknown flag", casyncMsg(CasyncMsgShardRequest, le64(4), le64(1), make([]byte, 32+8+32)), ErrCasync},
		{"shard request reserved byte", casyncMsg(CasyncMsgShardRequest, le64(0), le64(1), make([]byte, 32), []byte{2, 1, 0, 0, 0, 0, 0, 1}, make([]byte, 32)), ErrCasync},
		{"request unknown flag 8", casyncMsg(CasyncMsgRequest, le64(8), make([]byte, 32)), ErrCasync},
		{"shards short", casyncMsg(CasyncMsgShards, make([]byte, 32+16+31)), ErrCasync},
		{"shards reserved byte", casyncMsg(CasyncMsgShards, make([]byte, 32), le32(1), []byte{0, 0, 1, 0}, make([]byte, 40)), ErrCasync},
		{"shards too few holders", casyncMsg(CasyncMsgShards, make([]byte, 32), le32(1), []byte{2, 1, 0, 0}, make([]byte, 40), []byte("\x01a\x00")), ErrCasync},
		{"shards holder cut short", casyncMsg(CasyncMsgShards, make([]byte, 32), le32(1), []byte{1, 0, 0, 0}, make([]byte, 40), []byte("\x05ab")), ErrCasync},
		{"shards bytes after holders", casyncMsg(CasyncMsgShards, make([]byte, 32), le32(1), []byte{1, 0, 0, 0}, make([]byte, 40), []byte("\x01ab")), ErrCasync},
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
		{"request unknown flag", &Request{Flags: 8}},
		{"shard request unknown flag", &ShardRequest{Flags: 8}},
		{"shards holders not k+m", &Shards{Data: 2, Parity: 1, Holders: []string{"a"}}},
		{"shards long address", &Shards{Data: 1, Holders: []string{string(make([]byte, 256))}}},
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
		casyncMsg(CasyncMsgShardRequest, le64(1), le64(99), i1[:], []byte{2, 1, 1, 0, 0, 0, 0, 0}, i1[:]),
		casyncMsg(CasyncMsgShards, i1[:], le32(9), []byte{2, 1, 0, 0}, le64(99), i1[:], []byte("\x01a\x00\x03b:1")),
	} {

		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadCasync(bytes.NewReader(in))
		checkChunkHead(t, in, m, err)
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

type replyResult struct {
	m      CasyncMessage
	inBody bool
	err    error
}

// readReply runs ReadCasyncReply on st in the background and waits until
// it has offered its head to the read loop.
func readReply(t *testing.T, st *Stream, body []byte) <-chan replyResult {
	t.Helper()
	done := make(chan replyResult, 1)
	go func() {
		m, inBody, err := ReadCasyncReply(st, body, nil)
		done <- replyResult{m, inBody, err}
	}()
	awaitOffer(t, st)
	return done
}

// TestReadCasyncReplyTakesChunkStraight has the requester wait for a
// reply before the peer sends a 4 MiB CHUNK: its data must land in the
// body offered, and no byte of it go through the stream's buffer.
func TestReadCasyncReplyTakesChunkStraight(t *testing.T) {
	st, peer := streamPair(t)
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i*5/3 + i>>12)
	}
	body := make([]byte, 8<<20)
	done := readReply(t, st, body)
	sent := &Chunk{Flags: CasyncChunkCRC32C, ID: id(7), Data: data}
	if err := WriteCasync(peer, sent); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	c, ok := r.m.(*Chunk)
	if !ok || c.ID != sent.ID || c.Flags != sent.Flags || !bytes.Equal(c.Data, data) {
		t.Fatalf("read %T, want the CHUNK sent", r.m)
	}
	if !r.inBody || &c.Data[0] != &body[0] {
		t.Error("the CHUNK's data is not in the body offered")
	}
	checkNothingBuffered(t, st, "the body")
}

// TestReadCasyncReplyOthers checks that other replies are read as
// ReadCasync reads them: a CHUNK sent without a CRC-32C into the body
// too, the rest with the body untouched.
func TestReadCasyncReplyOthers(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 128<<10) // 2 MiB
	for _, tc := range []struct {
		name string
		m    CasyncMessage
		body int
		in   bool // the data lands in the body
	}{
		{"missing", &Missing{ID: id(1)}, 4 << 20, false},
		{"abort", &Abort{Errno: 28, Reason: string(bytes.Repeat([]byte("no space "), 40))}, 4 << 20, false},
		{"small chunk", &Chunk{Flags: CasyncChunkCRC32C, ID: id(2), Data: []byte("small")}, 4 << 20, false},
		{"chunk without CRC", &Chunk{ID: id(3), Data: big}, 4 << 20, true},
		{"chunk larger than body", &Chunk{Flags: CasyncChunkCRC32C, ID: id(4), Data: big}, 1 << 20, false},
		{"no body", &Chunk{Flags: CasyncChunkCRC32C, ID: id(5), Data: big}, 0, false},
		{"goodbye", &Goodbye{}, 4 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, peer := streamPair(t)
			body := make([]byte, tc.body)
			done := readReply(t, st, body)
			if err := WriteCasync(peer, tc.m); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !reflect.DeepEqual(r.m, tc.m) {
				t.Fatalf("read %#v, want %#v", r.m, tc.m)
			}
			if tc.in {
				if !r.inBody || &r.m.(*Chunk).Data[0] != &body[0] {
					t.Error("the CHUNK's data is not in the body offered")
				}
			} else if r.inBody || bytes.ContainsFunc(body, func(r rune) bool { return r != 0 }) {
				t.Error("the body was written to")
			}
		})
	}
}

// TestReadCasyncReplyBad checks the errors of replies that go wrong
// while the body is being filled, and of a reply followed by more.
func TestReadCasyncReplyBad(t *testing.T) {
	data := bytes.Repeat([]byte("shoal"), 200<<10) // 1000 KiB
	i6, i1 := id(6), id(1)
	header := func(crc uint32) []byte {
		h := casyncMsg(CasyncMsgChunk, le64(CasyncChunkCRC32C), i6[:], le32(crc))
		binary.LittleEndian.PutUint64(h, uint64(len(h)+len(data)))
		return h
	}
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for _, tc := range []struct {
		name string
		send func(peer *Stream)
		want error
	}{
		{"bad CRC", func(peer *Stream) {
			peer.Write(header(crc32.Checksum(data, castagnoli) + 1))
			peer.Write(data)
		}, ErrChecksum},
		{"peer closes inside the data", func(peer *Stream) {
			peer.Write(header(crc32.Checksum(data, castagnoli)))
			peer.Write(data[:300<<10])
			peer.Close()
		}, io.ErrUnexpectedEOF},
		{"more after the reply", func(peer *Stream) {
			m := casyncMsg(CasyncMsgMissing, i1[:])
			peer.Write(append(m, casyncMsg(CasyncMsgGoodbye)...))
		}, ErrCasync},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, peer := streamPair(t)
			done := readReply(t, st, make([]byte, 4<<20))
			tc.send(peer)
			if r := <-done; !errors.Is(r.err, tc.want) {
				t.Fatalf("got %v, %v; want an error wrapping %v", r.m, r.err, tc.want)
			}
		})
	}
}

// TestReadCasyncReplyDeadline checks that a reader waiting for the rest
// of a CHUNK's data gives up at the stream's deadline.
func TestReadCasyncReplyDeadline(t *testing.T) {
	st, peer := streamPair(t)
	done := readReply(t, st, make([]byte, 4<<20))
	data := make([]byte, 2<<20)
	i8 := id(8)
	h := casyncMsg(CasyncMsgChunk, le64(0), i8[:])
	binary.LittleEndian.PutUint64(h, uint64(len(h)+len(data)))
	peer.Write(h)
	peer.Write(data[:100<<10])
	st.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if r := <-done; !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, %v; want a deadline error", r.m, r.err)
	}
}

// checkChunkHead checks that chunkHead, which ReadCasyncReply decodes a
// CHUNK's header with, agrees with ReadCasync's reading m, err of in:
// for either header length, it names a CHUNK exactly when ReadCasync
// reads one of that header length (or fails only on its CRC-32C), with
// the same flags, id and data length.
func checkChunkHead(t *testing.T, in []byte, m CasyncMessage, err error) {
	t.Helper()
	for _, hl := range []int{casyncChunkFixedSize, casyncChunkFixedSize + casyncCRCLen} {
		if len(in) < hl {
			continue
		}
		c, n := chunkHead(in[:hl])
		if c == nil {
			if got, ok := m.(*Chunk); ok && uint64(hl+len(got.Data)) == binary.LittleEndian.Uint64(in) {
				t.Fatalf("chunkHead refused the %d-byte header of a CHUNK ReadCasync read", hl)
			}
			continue
		}
		if hl+n > len(in) {
			continue // ReadCasync runs out of bytes
		}
		got, ok := m.(*Chunk)
		if !ok {
			if errors.Is(err, ErrChecksum) {
				continue
			}
			t.Fatalf("chunkHead read a CHUNK with %d bytes of data where ReadCasync read %T, %v", n, m, err)
		}
		if got.Flags != c.Flags || got.ID != c.ID || len(got.Data) != n {
			t.Fatalf("chunkHead read flags %#x, %d bytes; ReadCasync %#x, %d bytes", c.Flags, n, got.Flags, len(got.Data))
		}
	}
}
