package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
)

// casync protocol message types, the values of caprotocol.h.
const (
	CasyncMsgHello      uint64 = 0x3c71d0948ca5fbee
	CasyncMsgIndex      uint64 = 0xb32a91dd2b3e27f8
	CasyncMsgIndexEOF   uint64 = 0x4f0932f1043718f5
	CasyncMsgArchive    uint64 = 0x95d6428a69eddcc5
	CasyncMsgArchiveEOF uint64 = 0x450bef663f24cbad
	CasyncMsgRequest    uint64 = 0x8ab427e0f89d9210
	CasyncMsgChunk      uint64 = 0x5213dd180a84bc8c
	CasyncMsgMissing    uint64 = 0xd010f9fac82b7b6c
	CasyncMsgGoodbye    uint64 = 0xad205dbf1a3686c3
	CasyncMsgAbort      uint64 = 0xe7d9136b7efea352

	// CasyncMsgShards is SHARDS, a shoal extension: the answer to a
	// REQUEST with CasyncRequestDirect for an erasure-coded chunk.
	CasyncMsgShards uint64 = 0x9e4b27d1c06a53f8
	// CasyncMsgShardRequest is SHARD_REQUEST, a shoal extension: a
	// request for one shard of a chunk that carries a member's grant.
	CasyncMsgShardRequest uint64 = 0x5d1e7a0c3b96f248
)

// HELLO feature flags, as in caprotocol.h. The first six say what the
// sender provides, the rest what it wants to do.
const (
	CasyncReadableStore   uint64 = 0x1    // I provide chunks on request
	CasyncWritableStore   uint64 = 0x2    // I can store chunks for you
	CasyncReadableIndex   uint64 = 0x4    // I provide an index on request
	CasyncWritableIndex   uint64 = 0x8    // I can store an index for you
	CasyncReadableArchive uint64 = 0x10   // I provide an archive blob
	CasyncWritableArchive uint64 = 0x20   // I can store an archive blob
	CasyncPullChunks      uint64 = 0x40   // I'd like to pull chunks from you
	CasyncPullIndex       uint64 = 0x80   // I'd like to pull an index from you
	CasyncPullArchive     uint64 = 0x100  // I'd like to pull an archive from you
	CasyncPushChunks      uint64 = 0x200  // I'd like to push chunks to you
	CasyncPushIndex       uint64 = 0x400  // I'd like to push an index to you
	CasyncPushIndexChunks uint64 = 0x800  // pull the chunks of the index I pushed
	CasyncPushArchive     uint64 = 0x1000 // I'd like to push an archive to you
	CasyncFeatureFlagsMax uint64 = 0x1fff // all defined feature flags
)

// REQUEST and CHUNK flags: the first of each as in caprotocol.h, the
// second a shoal extension.
const (
	// CasyncRequestHighPrio asks the peer to serve a REQUEST first.
	CasyncRequestHighPrio uint64 = 0x1
	// CasyncRequestChecksum asks the peer to send each CHUNK answering the
	// REQUEST with CasyncChunkCRC32C (shoal extension).
	CasyncRequestChecksum uint64 = 0x2
	// CasyncRequestDirect says the requester can read shards from their
	// holders itself: the peer may answer a chunk it stores erasure-coded
	// with SHARDS instead of CHUNK (shoal extension).
	CasyncRequestDirect uint64 = 0x4
	// CasyncChunkCompressed marks CHUNK data as compressed.
	CasyncChunkCompressed uint64 = 0x1
	// CasyncChunkCRC32C marks a CHUNK whose id is followed by the le32
	// CRC-32C (Castagnoli) of its data as sent (shoal extension).
	// WriteCasync computes it; ReadCasync checks it, so a Chunk read with
	// this flag has arrived intact.
	CasyncChunkCRC32C uint64 = 0x2

	casyncRequestFlagsMax      uint64 = 0x7
	casyncShardRequestFlagsMax        = CasyncRequestHighPrio | CasyncRequestChecksum
	casyncChunkFlagsMax        uint64 = 0x3
	casyncCRCLen                      = 4
	casyncIDLen                       = 32
	casyncRequestFixedSize            = CasyncHeaderLen + 8
	casyncChunkFixedSize              = CasyncHeaderLen + 8 + casyncIDLen
	casyncGrantLen                    = 32
	// casyncShardRequestSize is SHARD_REQUEST's size: header, flags,
	// expiry, chunk id, k, m, index and five zero bytes, grant.
	casyncShardRequestSize = CasyncHeaderLen + 8 + 8 + casyncIDLen + 8 + casyncGrantLen
	// casyncShardsFixedSize is SHARDS' size before its holders: header,
	// chunk id, size, k, m and two zero bytes, expiry, grant.
	casyncShardsFixedSize = CasyncHeaderLen + casyncIDLen + 8 + 8 + casyncGrantLen
)

const (
	// CasyncHeaderLen is the size of a casync message header: le64 size of
	// the whole message including the header, le64 type.
	CasyncHeaderLen = 16

	// CasyncSizeMax is the largest casync message, header included
	// (CA_PROTOCOL_SIZE_MAX). Larger ones are refused on read and write.
	CasyncSizeMax = 16 << 20
)

// ErrCasync means a casync message was malformed: a bad size, an unknown
// type or flag. Errors from ReadCasync and WriteCasync about the message
// itself wrap it; I/O errors are passed through wrapped.
var ErrCasync = errors.New("malformed casync message")

// ErrChecksum means a CHUNK's data did not match the CRC-32C it was sent
// with: it was damaged on the way. The stream stays in step (the message's
// size was sound), but the data must not be used.
var ErrChecksum = errors.New("chunk data does not match its CRC-32C")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CasyncMessage is one casync protocol message: *Hello, *Index, *IndexEOF,
// *Archive, *ArchiveEOF, *Request, *Chunk, *Missing, *Goodbye, *Abort, or
// shoal's *Shards and *ShardRequest.
type CasyncMessage interface {
	// CasyncType returns the message's type value (CasyncMsg...).
	CasyncType() uint64
}

// Hello opens a casync conversation; both sides send one first.
type Hello struct {
	Features uint64 // Casync... feature flags, at most CasyncFeatureFlagsMax
}

// Index carries a piece of an index (see EncodeIndex); a sender may split
// an index over several Index messages, ended by IndexEOF.
type Index struct {
	Data []byte
}

// IndexEOF ends an index.
type IndexEOF struct{}

// Archive carries a piece of an archive blob. shoal does not use it.
type Archive struct {
	Data []byte
}

// ArchiveEOF ends an archive blob. shoal does not use it.
type ArchiveEOF struct{}

// Request asks for chunks by id; the peer answers each with Chunk or
// Missing.
type Request struct {
	Flags uint64 // CasyncRequestHighPrio or 0
	IDs   [][32]byte
}

// Chunk carries one chunk's data. With CasyncChunkCompressed in Flags,
// Data is compressed (zstd in shoal) and ID is still the SHA-256 of the
// plain data. With CasyncChunkCRC32C the message carries a checksum of
// Data, which WriteCasync computes and ReadCasync verifies.
type Chunk struct {
	Flags uint64
	ID    [32]byte
	Data  []byte
}

// Shards answers a REQUEST with CasyncRequestDirect for chunk ID, which
// the node stores erasure-coded (shoal extension): its Size bytes are in
// Data data shards and Parity parity shards, shard i on the node whose
// wire address is Holders[i] ("" if no node holds it now). Grant lets
// the requester read them (ShardRequest) until Expires, Unix nanoseconds.
type Shards struct {
	ID      [32]byte
	Size    uint32
	Data    uint8
	Parity  uint8
	Expires int64
	Grant   [32]byte
	Holders []string // Data+Parity addresses of at most 255 bytes each
}

// ShardRequest asks a node for its shard Index of chunk Chunk, which is
// erasure-coded into Data data and Parity parity shards (shoal
// extension). A client that is no member may read shards only so: Grant
// and Expires are those of the SHARDS a member answered for the chunk.
// The node answers with a CHUNK whose id is the shard's key
// (chunkstore.ShardKey), or MISSING of that key if it holds no such
// shard.
type ShardRequest struct {
	Flags   uint64 // as a Request's: CasyncRequestHighPrio, CasyncRequestChecksum
	Expires int64
	Chunk   [32]byte
	Data    uint8
	Parity  uint8
	Index   uint8
	Grant   [32]byte
}

// Missing says the sender does not have a requested chunk.
type Missing struct {
	ID [32]byte
}

// Goodbye ends a conversation in good order.
type Goodbye struct{}

// Abort ends a conversation on a fatal error: Errno is the closest Linux
// errno value, or 0; Reason is for humans and contains no NUL byte.
type Abort struct {
	Errno  uint64
	Reason string
}

// CasyncType implements CasyncMessage.
func (*Hello) CasyncType() uint64 { return CasyncMsgHello }

// CasyncType implements CasyncMessage.
func (*Index) CasyncType() uint64 { return CasyncMsgIndex }

// CasyncType implements CasyncMessage.
func (*IndexEOF) CasyncType() uint64 { return CasyncMsgIndexEOF }

// CasyncType implements CasyncMessage.
func (*Archive) CasyncType() uint64 { return CasyncMsgArchive }

// CasyncType implements CasyncMessage.
func (*ArchiveEOF) CasyncType() uint64 { return CasyncMsgArchiveEOF }

// CasyncType implements CasyncMessage.
func (*Request) CasyncType() uint64 { return CasyncMsgRequest }

// CasyncType implements CasyncMessage.
func (*Chunk) CasyncType() uint64 { return CasyncMsgChunk }

// CasyncType implements CasyncMessage.
func (*Missing) CasyncType() uint64 { return CasyncMsgMissing }

// CasyncType implements CasyncMessage.
func (*Goodbye) CasyncType() uint64 { return CasyncMsgGoodbye }

// CasyncType implements CasyncMessage.
func (*Abort) CasyncType() uint64 { return CasyncMsgAbort }

// CasyncType implements CasyncMessage.
func (*ShardRequest) CasyncType() uint64 { return CasyncMsgShardRequest }

// CasyncType implements CasyncMessage.
func (*Shards) CasyncType() uint64 { return CasyncMsgShards }

// casyncName names a message type for errors.
func casyncName(t uint64) string {
	switch t {
	case CasyncMsgHello:
		return "HELLO"
	case CasyncMsgIndex:
		return "INDEX"
	case CasyncMsgIndexEOF:
		return "INDEX_EOF"
	case CasyncMsgArchive:
		return "ARCHIVE"
	case CasyncMsgArchiveEOF:
		return "ARCHIVE_EOF"
	case CasyncMsgRequest:
		return "REQUEST"
	case CasyncMsgChunk:
		return "CHUNK"
	case CasyncMsgMissing:
		return "MISSING"
	case CasyncMsgGoodbye:
		return "GOODBYE"
	case CasyncMsgAbort:
		return "ABORT"
	case CasyncMsgShardRequest:
		return "SHARD_REQUEST"
	case CasyncMsgShards:
		return "SHARDS"
	}
	return fmt.Sprintf("type %#016x", t)
}

// casyncBufPool holds buffers for assembling messages, so each message
// goes out in one Write.
var casyncBufPool = sync.Pool{New: func() any { return new([]byte) }}

// casyncInline is the largest trailing payload WriteCasync copies into
// the message buffer; larger ones are written by a second Write call.
const casyncInline = 64 << 10

// WriteCasync writes m to w in casync framing. It fails with an error
// wrapping ErrCasync, writing nothing, if m is invalid (unknown flags, a
// NUL in an Abort reason, more than CasyncSizeMax bytes, a nil message).
func WriteCasync(w io.Writer, m CasyncMessage) error {
	var fixed [casyncShardRequestSize]byte // header and fixed fields, at most SHARD_REQUEST's
	nfixed := CasyncHeaderLen
	var tail []byte // variable payload after the fixed part
	var ids [][32]byte
	var tailNUL bool
	switch m := m.(type) {
	case *Hello:
		if m.Features&^CasyncFeatureFlagsMax != 0 {
			return fmt.Errorf("write casync HELLO: unknown feature flags %#x: %w", m.Features&^CasyncFeatureFlagsMax, ErrCasync)
		}
		binary.LittleEndian.PutUint64(fixed[16:], m.Features)
		nfixed += 8
	case *Index:
		tail = m.Data
	case *Archive:
		tail = m.Data
	case *IndexEOF, *ArchiveEOF, *Goodbye:
	case *Request:
		if m.Flags&^casyncRequestFlagsMax != 0 {
			return fmt.Errorf("write casync REQUEST: unknown flags %#x: %w", m.Flags&^casyncRequestFlagsMax, ErrCasync)
		}
		binary.LittleEndian.PutUint64(fixed[16:], m.Flags)
		nfixed += 8
		ids = m.IDs
	case *Chunk:
		if m.Flags&^casyncChunkFlagsMax != 0 {
			return fmt.Errorf("write casync CHUNK: unknown flags %#x: %w", m.Flags&^casyncChunkFlagsMax, ErrCasync)
		}
		binary.LittleEndian.PutUint64(fixed[16:], m.Flags)
		copy(fixed[24:], m.ID[:])
		nfixed += 8 + casyncIDLen
		if m.Flags&CasyncChunkCRC32C != 0 {
			binary.LittleEndian.PutUint32(fixed[nfixed:], crc32.Checksum(m.Data, castagnoli))
			nfixed += casyncCRCLen
		}
		tail = m.Data
	case *Missing:
		copy(fixed[16:], m.ID[:])
		nfixed += casyncIDLen
	case *Abort:
		if bytes.IndexByte([]byte(m.Reason), 0) >= 0 {
			return fmt.Errorf("write casync ABORT: reason contains a NUL byte: %w", ErrCasync)
		}
		binary.LittleEndian.PutUint64(fixed[16:], m.Errno)
		nfixed += 8
		tail = []byte(m.Reason)
		tailNUL = true
	case *ShardRequest:
		if m.Flags&^casyncShardRequestFlagsMax != 0 {
			return fmt.Errorf("write casync SHARD_REQUEST: unknown flags %#x: %w", m.Flags&^casyncShardRequestFlagsMax, ErrCasync)
		}
		binary.LittleEndian.PutUint64(fixed[16:], m.Flags)
		binary.LittleEndian.PutUint64(fixed[24:], uint64(m.Expires))
		copy(fixed[32:], m.Chunk[:])
		fixed[64], fixed[65], fixed[66] = m.Data, m.Parity, m.Index
		copy(fixed[72:], m.Grant[:])
		nfixed = casyncShardRequestSize
	case *Shards:
		if len(m.Holders) != int(m.Data)+int(m.Parity) {
			return fmt.Errorf("write casync SHARDS: %d holders for %d+%d shards: %w", len(m.Holders), m.Data, m.Parity, ErrCasync)
		}
		copy(fixed[16:], m.ID[:])
		binary.LittleEndian.PutUint32(fixed[48:], m.Size)
		fixed[52], fixed[53] = m.Data, m.Parity
		binary.LittleEndian.PutUint64(fixed[56:], uint64(m.Expires))
		copy(fixed[64:], m.Grant[:])
		nfixed = casyncShardsFixedSize
		for _, h := range m.Holders {
			if len(h) > 255 {
				return fmt.Errorf("write casync SHARDS: holder address of %d bytes: %w", len(h), ErrCasync)
			}
			tail = append(append(tail, byte(len(h))), h...)
		}
	case nil:
		return fmt.Errorf("write casync: nil message: %w", ErrCasync)
	default:
		return fmt.Errorf("write casync: unknown message %T: %w", m, ErrCasync)
	}
	size := uint64(nfixed) + uint64(len(tail)) + uint64(len(ids))*casyncIDLen
	if tailNUL {
		size++
	}
	if size > CasyncSizeMax {
		return fmt.Errorf("write casync %s: %d bytes, more than %d: %w", casyncName(m.CasyncType()), size, CasyncSizeMax, ErrCasync)
	}
	binary.LittleEndian.PutUint64(fixed[0:], size)
	binary.LittleEndian.PutUint64(fixed[8:], m.CasyncType())

	bp := casyncBufPool.Get().(*[]byte)
	defer casyncBufPool.Put(bp)
	buf := append((*bp)[:0], fixed[:nfixed]...)
	for i := range ids {
		buf = append(buf, ids[i][:]...)
	}
	split := len(tail) > casyncInline
	if !split {
		buf = append(buf, tail...)
		if tailNUL {
			buf = append(buf, 0)
		}
	}
	if cap(buf) <= 1<<20 {
		*bp = buf
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write casync %s: %w", casyncName(m.CasyncType()), err)
	}
	if split {
		if _, err := w.Write(tail); err != nil {
			return fmt.Errorf("write casync %s: %w", casyncName(m.CasyncType()), err)
		}
		if tailNUL {
			if _, err := w.Write([]byte{0}); err != nil {
				return fmt.Errorf("write casync %s: %w", casyncName(m.CasyncType()), err)
			}
		}
	}
	return nil
}

// ReadCasync reads one casync message from r. It returns io.EOF if r ends
// before the first byte, an error wrapping io.ErrUnexpectedEOF if it ends
// inside a message, and one wrapping ErrCasync if the message is malformed:
// size below the type's minimum or above CasyncSizeMax, unknown type or
// flags, an Abort reason not ending in its single NUL. The payload is read
// into one new buffer; Chunk.Data, Index.Data and Archive.Data point into
// it and belong to the caller.
func ReadCasync(r io.Reader) (CasyncMessage, error) {
	return ReadCasyncAlloc(r, nil)
}

// ReadCasyncAlloc is ReadCasync with the memory of a CHUNK's data taken
// from alloc, which must return a slice of exactly n bytes: Chunk.Data is
// that slice, so the receiver chooses where chunk contents land and may
// reuse the memory once done with them. A nil alloc means a new buffer.
func ReadCasyncAlloc(r io.Reader, alloc func(n int) []byte) (CasyncMessage, error) {
	var h [CasyncHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read casync header: %w", err)
	}
	size := binary.LittleEndian.Uint64(h[0:])
	typ := binary.LittleEndian.Uint64(h[8:])
	name := casyncName(typ)
	var minSize, exact uint64
	switch typ {
	case CasyncMsgHello:
		exact = CasyncHeaderLen + 8
	case CasyncMsgIndex, CasyncMsgArchive:
		minSize = CasyncHeaderLen
	case CasyncMsgIndexEOF, CasyncMsgArchiveEOF, CasyncMsgGoodbye:
		exact = CasyncHeaderLen
	case CasyncMsgRequest:
		minSize = casyncRequestFixedSize
	case CasyncMsgChunk:
		minSize = casyncChunkFixedSize
	case CasyncMsgMissing:
		exact = CasyncHeaderLen + casyncIDLen
	case CasyncMsgAbort:
		minSize = CasyncHeaderLen + 8 + 1
	case CasyncMsgShardRequest:
		exact = casyncShardRequestSize
	case CasyncMsgShards:
		minSize = casyncShardsFixedSize
	default:
		return nil, fmt.Errorf("read casync message: unknown %s (size %d): %w", name, size, ErrCasync)
	}
	switch {
	case size > CasyncSizeMax:
		return nil, fmt.Errorf("read casync %s: size %d exceeds %d: %w", name, size, CasyncSizeMax, ErrCasync)
	case exact != 0 && size != exact:
		return nil, fmt.Errorf("read casync %s: size %d, want %d: %w", name, size, exact, ErrCasync)
	case size < minSize:
		return nil, fmt.Errorf("read casync %s: size %d below minimum %d: %w", name, size, minSize, ErrCasync)
	case typ == CasyncMsgRequest && (size-casyncRequestFixedSize)%casyncIDLen != 0:
		return nil, fmt.Errorf("read casync REQUEST: size %d is not %d plus a multiple of %d: %w", size, casyncRequestFixedSize, casyncIDLen, ErrCasync)
	}
	if typ == CasyncMsgChunk {
		m, err := readChunk(r, size, alloc)
		if err != nil {
			return nil, err // not a nil *Chunk in the interface
		}
		return m, nil
	}
	p := make([]byte, size-CasyncHeaderLen)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, fmt.Errorf("read casync %s body: %w", name, noEOF(err))
	}
	switch typ {
	case CasyncMsgHello:
		f := binary.LittleEndian.Uint64(p)
		if f&^CasyncFeatureFlagsMax != 0 {
			return nil, fmt.Errorf("read casync HELLO: unknown feature flags %#x: %w", f&^CasyncFeatureFlagsMax, ErrCasync)
		}
		return &Hello{Features: f}, nil
	case CasyncMsgIndex:
		return &Index{Data: p}, nil
	case CasyncMsgArchive:
		return &Archive{Data: p}, nil
	case CasyncMsgIndexEOF:
		return &IndexEOF{}, nil
	case CasyncMsgArchiveEOF:
		return &ArchiveEOF{}, nil
	case CasyncMsgGoodbye:
		return &Goodbye{}, nil
	case CasyncMsgRequest:
		f := binary.LittleEndian.Uint64(p)
		if f&^casyncRequestFlagsMax != 0 {
			return nil, fmt.Errorf("read casync REQUEST: unknown flags %#x: %w", f&^casyncRequestFlagsMax, ErrCasync)
		}
		p = p[8:]
		m := &Request{Flags: f, IDs: make([][32]byte, len(p)/casyncIDLen)}
		for i := range m.IDs {
			copy(m.IDs[i][:], p[i*casyncIDLen:])
		}
		return m, nil
	case CasyncMsgMissing:
		m := &Missing{}
		copy(m.ID[:], p)
		return m, nil
	case CasyncMsgShardRequest:
		f := binary.LittleEndian.Uint64(p)
		if f&^casyncShardRequestFlagsMax != 0 {
			return nil, fmt.Errorf("read casync SHARD_REQUEST: unknown flags %#x: %w", f&^casyncShardRequestFlagsMax, ErrCasync)
		}
		if !bytes.Equal(p[51:56], make([]byte, 5)) {
			return nil, fmt.Errorf("read casync SHARD_REQUEST: reserved bytes %x are not zero: %w", p[51:56], ErrCasync)
		}
		return &ShardRequest{Flags: f, Expires: int64(binary.LittleEndian.Uint64(p[8:])), Chunk: [32]byte(p[16:48]),
			Data: p[48], Parity: p[49], Index: p[50], Grant: [32]byte(p[56:])}, nil
	case CasyncMsgShards:
		m, err := readShards(p)
		if err != nil {
			return nil, err // not a nil *Shards in the interface
		}
		return m, nil

	default: // CasyncMsgAbort

		reason := p[8:]
		if i := bytes.IndexByte(reason, 0); i != len(reason)-1 {
			return nil, fmt.Errorf("read casync ABORT: reason is not a NUL-terminated string: %w", ErrCasync)
		}
		return &Abort{Errno: binary.LittleEndian.Uint64(p), Reason: string(reason[:len(reason)-1])}, nil
	}
}

// readShards decodes the body p of a SHARDS message.
func readShards(p []byte) (*Shards, error) {
	if p[38] != 0 || p[39] != 0 {
		return nil, fmt.Errorf("read casync SHARDS: reserved bytes %x are not zero: %w", p[38:40], ErrCasync)
	}
	m := &Shards{ID: [32]byte(p), Size: binary.LittleEndian.Uint32(p[32:]), Data: p[36], Parity: p[37],
		Expires: int64(binary.LittleEndian.Uint64(p[40:])), Grant: [32]byte(p[48:80])}
	rest := p[casyncShardsFixedSize-CasyncHeaderLen:]
	for range int(m.Data) + int(m.Parity) {
		if len(rest) == 0 || len(rest) < 1+int(rest[0]) {
			return nil, fmt.Errorf("read casync SHARDS: %d holders for %d+%d shards: %w", len(m.Holders), m.Data, m.Parity, ErrCasync)
		}
		m.Holders = append(m.Holders, string(rest[1:1+rest[0]]))
		rest = rest[1+rest[0]:]
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("read casync SHARDS: %d bytes after the holders: %w", len(rest), ErrCasync)
	}
	return m, nil
}

// fullReader is a reader with a cheaper way than Read to fill a buffer

// whole (Stream.ReadFull).
type fullReader interface {
	ReadFull(p []byte) (int, error)
}

// readFull is io.ReadFull, by r's own ReadFull if it has one.
func readFull(r io.Reader, p []byte) (int, error) {
	if fr, ok := r.(fullReader); ok {
		return fr.ReadFull(p)
	}
	return io.ReadFull(r, p)
}

// readChunk reads the body of a CHUNK message of size bytes (its header
// read already): the fixed fields, then the data into memory from alloc.
func readChunk(r io.Reader, size uint64, alloc func(n int) []byte) (*Chunk, error) {
	var fixed [8 + casyncIDLen + casyncCRCLen]byte
	if _, err := io.ReadFull(r, fixed[:8+casyncIDLen]); err != nil {
		return nil, fmt.Errorf("read casync CHUNK body: %w", noEOF(err))
	}
	m, n, err := chunkFixed(fixed[:8+casyncIDLen], size)
	if err != nil {
		return nil, err
	}
	if m.Flags&CasyncChunkCRC32C != 0 {
		if _, err := io.ReadFull(r, fixed[8+casyncIDLen:]); err != nil {
			return nil, fmt.Errorf("read casync CHUNK body: %w", noEOF(err))
		}
	}
	if alloc == nil {
		alloc = func(n int) []byte { return make([]byte, n) }
	}
	m.Data = alloc(n)
	if _, err := readFull(r, m.Data); err != nil {
		return nil, fmt.Errorf("read casync CHUNK body: %w", noEOF(err))
	}
	return m, checkChunkCRC(m, fixed[8+casyncIDLen:])
}

// chunkFixed decodes a CHUNK's flags and id from p and returns the
// Chunk without its data, and the data's length in a message of size
// bytes.
func chunkFixed(p []byte, size uint64) (*Chunk, int, error) {
	f := binary.LittleEndian.Uint64(p)
	if f&^casyncChunkFlagsMax != 0 {
		return nil, 0, fmt.Errorf("read casync CHUNK: unknown flags %#x: %w", f&^casyncChunkFlagsMax, ErrCasync)
	}
	n := size - casyncChunkFixedSize
	if f&CasyncChunkCRC32C != 0 {
		if n < casyncCRCLen {
			return nil, 0, fmt.Errorf("read casync CHUNK: size %d leaves no room for its CRC-32C: %w", size, ErrCasync)
		}
		n -= casyncCRCLen
	}
	return &Chunk{Flags: f, ID: [32]byte(p[8:])}, int(n), nil
}

// checkChunkCRC checks m.Data against the le32 CRC-32C in crc, if m was
// sent with one.
func checkChunkCRC(m *Chunk, crc []byte) error {
	if m.Flags&CasyncChunkCRC32C == 0 {
		return nil
	}
	want := binary.LittleEndian.Uint32(crc)
	if got := crc32.Checksum(m.Data, castagnoli); got != want {
		return fmt.Errorf("read casync CHUNK %x: data has CRC-32C %08x, sent with %08x: %w", m.ID[:8], got, want, ErrChecksum)
	}
	return nil
}

// ReadCasyncReply reads from st the one casync message a peer answers
// with (it sends nothing more until this side writes again), as
// ReadCasyncAlloc does, with body, memory for the data the reply is
// expected to carry, offered to the connection before the reply arrives.
// A CHUNK whose header comes in a DATA payload of its own (WriteCasync
// sends those of more than 64 KiB so) has its data go from the connection
// straight into body: none of it waits in the stream's buffer, to be
// copied, while the reader wakes up to the header. inBody reports that
// Chunk.Data is body[:len(Data)]; otherwise the data is in memory from
// alloc (or the message is no CHUNK) and body is the caller's again.
func ReadCasyncReply(st *Stream, body []byte, alloc func(n int) []byte) (m CasyncMessage, inBody bool, err error) {
	var head [casyncChunkFixedSize + casyncCRCLen]byte
	hn, bn, err := st.readSplit(head[:], body, func(h []byte) int {
		if c, n := chunkHead(h); c != nil && n >= minDirectRead {
			return n
		}
		return 0
	})
	if err != nil {
		if err == io.EOF {
			return nil, false, io.EOF
		}
		return nil, false, fmt.Errorf("read casync header: %w", err)
	}
	if c, n := chunkHead(head[:hn]); c != nil && n <= len(body) && (bn > 0 || n >= minDirectRead) {
		c.Data = body[:n]
		if _, err := readFull(st, c.Data[bn:]); err != nil {
			return nil, false, fmt.Errorf("read casync CHUNK body: %w", noEOF(err))
		}
		if err := checkChunkCRC(c, head[casyncChunkFixedSize:]); err != nil {
			return nil, false, err
		}
		return c, true, nil
	}
	// Anything else is read from the bytes in hand (body took none), then
	// from st.
	hr := bytes.NewReader(head[:hn])
	if m, err = ReadCasyncAlloc(io.MultiReader(hr, st), alloc); err != nil {
		return nil, false, err
	}
	if left := hr.Len(); left > 0 {
		return nil, false, fmt.Errorf("read casync %s reply: %d more bytes follow it: %w", casyncName(m.CasyncType()), left, ErrCasync)
	}
	return m, false, nil
}

// chunkHead returns the Chunk, without data, and the data's length of a
// valid CHUNK message whose header and fixed fields are exactly p; nil if
// p is anything else.
func chunkHead(p []byte) (*Chunk, int) {
	if len(p) < casyncChunkFixedSize || binary.LittleEndian.Uint64(p[8:]) != CasyncMsgChunk {
		return nil, 0
	}
	size := binary.LittleEndian.Uint64(p)
	if size > CasyncSizeMax || size < uint64(len(p)) {
		return nil, 0
	}
	m, n, err := chunkFixed(p[CasyncHeaderLen:casyncChunkFixedSize], size)
	if err != nil || uint64(n) != size-uint64(len(p)) {
		return nil, 0
	}
	return m, n
}
