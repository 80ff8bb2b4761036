package chunkstore_test

import (
	"bytes"
	"errors"
	"testing"

	"shoal/chunkstore"
	"shoal/chunkstore/storetest"
)

func TestCompressRoundTrip(t *testing.T) {
	random, _ := storetest.Chunk(1, 1<<20)
	tests := []struct {
		name string
		data []byte
		want bool // worth compressing
	}{
		{"empty", nil, false},
		{"tiny", []byte("abc"), false},
		{"text", bytes.Repeat([]byte("the quick brown fox "), 1000), true},
		{"zeros 4MiB", make([]byte, 4<<20), true},
		{"random", random, false},
		{"random with compressible middle", append(append(bytes.Clone(random[:100<<10]), make([]byte, 1<<20)...), random[:100<<10]...), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			out, ok := chunkstore.Compress(bytes.Clone(prefix), tt.data)
			if ok != tt.want {
				t.Fatalf("Compress(%d bytes): got ok=%v, want %v", len(tt.data), ok, tt.want)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("Compress: dst prefix lost")
			}
			if !ok {
				if len(out) != len(prefix) {
					t.Fatalf("Compress not worth it: got %d bytes appended, want 0", len(out)-len(prefix))
				}
				return
			}
			frame := out[len(prefix):]
			if n := len(tt.data); len(frame) > n-n/8 {
				t.Errorf("Compress: got %d bytes from %d, want at most 7/8", len(frame), n)
			}
			plain, err := chunkstore.Decompress([]byte("x"), frame, len(tt.data))
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			if !bytes.Equal(plain[1:], tt.data) || plain[0] != 'x' {
				t.Fatalf("Decompress: got %d bytes, want %q + %d bytes", len(plain), "x", len(tt.data))
			}
		})
	}
}

func TestDecompressErrors(t *testing.T) {
	text := bytes.Repeat([]byte("hello shoal "), 1000)
	frame, ok := chunkstore.Compress(nil, text)
	if !ok {
		t.Fatal("text did not compress")
	}
	bomb, ok := chunkstore.Compress(nil, make([]byte, 32<<20))
	if !ok {
		t.Fatal("zeros did not compress")
	}
	tests := []struct {
		name     string
		src      []byte
		plainLen int
		want     error
	}{
		{"length too short", frame, len(text) - 1, chunkstore.ErrCorrupt},
		{"length too long", frame, len(text) + 1, chunkstore.ErrCorrupt},
		{"garbage", []byte("this is not zstd at all"), 10, chunkstore.ErrCorrupt},
		{"truncated", frame[:len(frame)/2], len(text), chunkstore.ErrCorrupt},
		{"bomb with small length", bomb, 4096, chunkstore.ErrCorrupt},
		{"length over cap", frame, chunkstore.MaxDecompressed + 1, chunkstore.ErrTooLarge},
		{"negative length", frame, -1, chunkstore.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := chunkstore.Decompress(nil, tt.src, tt.plainLen)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decompress: got error %v, want %v", err, tt.want)
			}
			if len(out) != 0 {
				t.Fatalf("Decompress error: got %d bytes, want 0", len(out))
			}
		})
	}
}

func FuzzDecompress(f *testing.F) {
	frame, _ := chunkstore.Compress(nil, bytes.Repeat([]byte("fuzz "), 100))
	f.Add(frame, 500)
	f.Add([]byte{}, 0)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, 10)
	f.Fuzz(func(t *testing.T, src []byte, plainLen int) {
		if plainLen > 1<<20 {
			plainLen %= 1 << 20
		}
		out, err := chunkstore.Decompress(nil, src, plainLen)
		if err == nil && len(out) != plainLen {
			t.Fatalf("Decompress: got %d bytes, want %d", len(out), plainLen)
		}
	})
}
