package chunkstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Chunk file header layout; see the package doc, "On-disk format".
const (
	headerSize    = 32
	formatVersion = 1
	flagZstd      = 1 << 0
	knownFlags    = flagZstd
)

var (
	chunkMagic = [4]byte{'S', 'H', 'C', 'K'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// header is the decoded fixed header of a chunk file.
type header struct {
	flags      byte
	plainLen   uint64
	payloadLen uint64
	payloadCRC uint32
}

// appendHeader appends the encoded header h to b.
func appendHeader(b []byte, h header) []byte {
	start := len(b)
	b = append(b, chunkMagic[:]...)
	b = append(b, formatVersion, h.flags, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, h.plainLen)
	b = binary.LittleEndian.AppendUint64(b, h.payloadLen)
	b = binary.LittleEndian.AppendUint32(b, h.payloadCRC)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// decodeHeader decodes and checks the first headerSize bytes of b. Every
// error wraps ErrCorrupt.
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize {
		return h, fmt.Errorf("chunk header: got %d bytes, want %d: %w", len(b), headerSize, ErrCorrupt)
	}
	if [4]byte(b[:4]) != chunkMagic {
		return h, fmt.Errorf("chunk header: bad magic %q: %w", b[:4], ErrCorrupt)
	}
	if got, want := binary.LittleEndian.Uint32(b[28:32]), crc32.Checksum(b[:28], castagnoli); got != want {
		return h, fmt.Errorf("chunk header: got crc %08x, want %08x: %w", got, want, ErrCorrupt)
	}
	if b[4] != formatVersion {
		return h, fmt.Errorf("chunk header: unsupported format version %d: %w", b[4], ErrCorrupt)
	}
	h.flags = b[5]
	if h.flags&^knownFlags != 0 {
		return h, fmt.Errorf("chunk header: unknown flags %#02x: %w", h.flags, ErrCorrupt)
	}
	if b[6] != 0 || b[7] != 0 {
		return h, fmt.Errorf("chunk header: reserved bytes not zero: %w", ErrCorrupt)
	}
	h.plainLen = binary.LittleEndian.Uint64(b[8:16])
	h.payloadLen = binary.LittleEndian.Uint64(b[16:24])
	h.payloadCRC = binary.LittleEndian.Uint32(b[24:28])
	if h.plainLen > MaxDecompressed {
		return h, fmt.Errorf("chunk header: plain length %d over %d: %w", h.plainLen, MaxDecompressed, ErrCorrupt)
	}
	if h.flags&flagZstd == 0 && h.payloadLen != h.plainLen {
		return h, fmt.Errorf("chunk header: stored length %d != plain length %d: %w", h.payloadLen, h.plainLen, ErrCorrupt)
	}
	return h, nil
}

// encodeChunk returns the header for data stored as payload; compressed says
// whether payload is the zstd frame of data.
func encodeChunk(plainLen int, payload []byte, compressed bool) []byte {
	h := header{
		plainLen:   uint64(plainLen),
		payloadLen: uint64(len(payload)),
		payloadCRC: crc32.Checksum(payload, castagnoli),
	}
	if compressed {
		h.flags |= flagZstd
	}
	return appendHeader(make([]byte, 0, headerSize), h)
}

// checkID checks that plain, a chunk file's contents, hashes to id. Its
// error wraps ErrCorrupt.
func checkID(id ID, plain []byte) error {
	if Sum(plain) != id {
		return fmt.Errorf("chunk file: content does not hash to id: %w", ErrCorrupt)
	}
	return nil
}

// checkLen checks that a chunk file of size bytes holds exactly the
// header and the payload h describes. Its error wraps ErrCorrupt.
func (h header) checkLen(size int64) error {
	if got := uint64(size - headerSize); got != h.payloadLen {
		return fmt.Errorf("chunk file: got %d payload bytes, want %d: %w", got, h.payloadLen, ErrCorrupt)
	}
	return nil
}

// decodeBody checks payload, the bytes after header h, against h's CRC
// and returns the plain bytes: payload itself, or its decompression.
// Errors wrap ErrCorrupt.
func (h header) decodeBody(payload []byte) ([]byte, error) {
	if got := crc32.Checksum(payload, castagnoli); got != h.payloadCRC {
		return nil, fmt.Errorf("chunk file: got payload crc %08x, want %08x: %w", got, h.payloadCRC, ErrCorrupt)
	}
	if h.flags&flagZstd == 0 {
		return payload, nil
	}
	plain, err := Decompress(nil, payload, int(h.plainLen))
	if err != nil {
		return nil, fmt.Errorf("chunk file: %w", err)
	}
	return plain, nil
}
