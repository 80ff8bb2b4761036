package chunkstore

import (
	"bytes"
	"errors"
	"testing"
)

func chunkFile(t testing.TB, data []byte, compress bool) []byte {
	payload, ok := data, false
	if compress {
		if payload, ok = Compress(nil, data); !ok {
			payload = data
		}
	}
	return append(encodeChunk(len(data), payload, ok), payload...)
}

// decodePayload decodes a whole chunk file as Disk.Get reads one.
func decodePayload(file []byte) ([]byte, error) {
	return readChunkFile(bytes.NewReader(file), int64(len(file)), nil)
}

// decodeChunkFile is decodePayload with the plain bytes checked against id,
// as Disk.Get does without DiskOptions.VerifiedPuts.
func decodeChunkFile(id ID, file []byte) ([]byte, error) {
	plain, err := decodePayload(file)
	if err != nil {
		return nil, err
	}
	if err := checkID(id, plain); err != nil {
		return nil, err
	}
	return plain, nil
}

func TestChunkFileRoundTrip(t *testing.T) {
	for _, data := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte("abc"), 10000)} {
		for _, compress := range []bool{false, true} {
			file := chunkFile(t, data, compress)
			got, err := decodeChunkFile(Sum(data), file)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("decodeChunkFile(%d bytes, compress=%v): got %d bytes, %v; want %d bytes", len(data), compress, len(got), err, len(data))
			}
			if _, err := decodeChunkFile(Sum([]byte("other")), file); !errors.Is(err, ErrCorrupt) {
				t.Errorf("decodeChunkFile with wrong id: got error %v, want ErrCorrupt", err)
			}
		}
	}
}

func TestHeaderLayout(t *testing.T) {
	h := appendHeader(nil, header{flags: flagZstd, plainLen: 0x0102, payloadLen: 0x0304, payloadCRC: 0xaabbccdd})
	want := []byte{'S', 'H', 'C', 'K', 1, 1, 0, 0,
		0x02, 0x01, 0, 0, 0, 0, 0, 0,
		0x04, 0x03, 0, 0, 0, 0, 0, 0,
		0xdd, 0xcc, 0xbb, 0xaa}
	if len(h) != headerSize || !bytes.Equal(h[:28], want) {
		t.Fatalf("header: got % x, want % x + crc", h, want)
	}
}

func FuzzDecodeChunkFile(f *testing.F) {
	f.Add(chunkFile(f, []byte("hello"), false))
	f.Add(chunkFile(f, bytes.Repeat([]byte("hello "), 1000), true))
	f.Add(chunkFile(f, nil, false))
	f.Add([]byte("SHCK"))
	f.Fuzz(func(t *testing.T, file []byte) {
		plain, err := decodePayload(file)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodePayload: got error %v, want one wrapping ErrCorrupt", err)
			}
			if _, err := decodeChunkFile(ID{}, file); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeChunkFile of bad file: got error %v, want ErrCorrupt", err)
			}
			return
		}
		h, _ := decodeHeader(file)
		if uint64(len(plain)) != h.plainLen {
			t.Fatalf("decodePayload: got %d bytes, header says %d", len(plain), h.plainLen)
		}
		// A file that decodes re-encodes to the same bytes.
		re := append(encodeChunk(len(plain), file[headerSize:], h.flags&flagZstd != 0), file[headerSize:]...)
		if !bytes.Equal(re, file) {
			t.Fatalf("re-encoded file differs")
		}
		if got, err := decodeChunkFile(Sum(plain), file); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("decodeChunkFile with the right id: %v", err)
		}
	})
}
