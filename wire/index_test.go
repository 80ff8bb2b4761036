package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []IndexEntry
		want    []IndexEntry // nil: same as entries
	}{
		{"empty", nil, nil},
		{"one", []IndexEntry{{id(1), 4 << 20}}, nil},
		{"several", []IndexEntry{{id(1), 10}, {id(2), 1}, {id(1), 1 << 40}}, nil},
		{"zero sizes left out", []IndexEntry{{id(1), 0}, {id(2), 5}, {id(3), 0}}, []IndexEntry{{id(2), 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := EncodeIndex(tc.entries)
			got, err := DecodeIndex(b)
			if err != nil {
				t.Fatalf("DecodeIndex: %v", err)
			}
			want := tc.want
			if want == nil {
				want = tc.entries
			}
			if len(got) != 0 || len(want) != 0 {
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
			}
		})
	}
}

// TestIndexLayout checks the bytes against casync's caformat.h layout.
func TestIndexLayout(t *testing.T) {
	b := EncodeIndex([]IndexEntry{{id(1), 100}, {id(2), 300}})
	le := binary.LittleEndian
	want := []uint64{48, 0x96824d9c7b129ff9, 0, 100, 200, 300, ^uint64(0), 0xe75b9e112f17417d}
	for i, w := range want {
		if got := le.Uint64(b[8*i:]); got != w {
			t.Errorf("header word %d: got %#x, want %#x", i, got, w)
		}
	}
	items := b[64:]
	if got := le.Uint64(items); got != 100 {
		t.Errorf("item 0 end offset: got %d, want 100", got)
	}
	if got := le.Uint64(items[40:]); got != 400 {
		t.Errorf("item 1 end offset: got %d, want 400", got)
	}
	if i1 := id(1); !bytes.Equal(items[8:40], i1[:]) {
		t.Errorf("item 0 id: got %x, want %x", items[8:40], i1)
	}
	tail := items[80:]
	for i, w := range []uint64{0, 0, 48, 16 + 2*40 + 40, 0x4b4f050e5549ecd1} {
		if got := le.Uint64(tail[8*i:]); got != w {
			t.Errorf("tail word %d: got %#x, want %#x", i, got, w)
		}
	}
	if len(b) != 48+16+2*40+40 {
		t.Errorf("length %d, want %d", len(b), 48+16+2*40+40)
	}
}

func TestDecodeIndexConcatenated(t *testing.T) {
	a := []IndexEntry{{id(1), 7}}
	b := []IndexEntry{{id(2), 8}, {id(3), 9}}
	got, err := DecodeIndex(append(EncodeIndex(a), EncodeIndex(b)...))
	if err != nil {
		t.Fatal(err)
	}
	if want := append(a, b...); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDecodeIndexRejects(t *testing.T) {
	good := EncodeIndex([]IndexEntry{{id(1), 10}, {id(2), 20}})
	mod := func(off int, v uint64) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint64(b[off:], v)
		return b
	}
	const items, tail = 64, 64 + 80
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short", good[:60]},
		{"header size", mod(0, 40)},
		{"header type", mod(8, 1)},
		{"sha512/256", mod(16, 0x2000000000000000)},
		{"min above avg", mod(24, 1000)},
		{"table size", mod(48, 100)},
		{"table type", mod(56, 1)},
		{"offsets not increasing", mod(items+40, 10)},
		{"tail index offset", mod(tail+16, 47)},
		{"tail size", mod(tail+24, 1)},
		{"tail marker", mod(tail+32, 1)},
		{"no tail", good[:tail]},
		{"trailing garbage", append(bytes.Clone(good), 1, 2, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeIndex(tc.in)
			if !errors.Is(err, ErrIndex) {
				t.Errorf("got %v, %v, want ErrIndex", got, err)
			}
		})
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(EncodeIndex(nil))
	f.Add(EncodeIndex([]IndexEntry{{id(1), 10}, {id(2), 20}}))
	f.Add(append(EncodeIndex([]IndexEntry{{id(1), 1}}), EncodeIndex(nil)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := DecodeIndex(in)
		if err != nil {
			return
		}
		// Whatever decodes re-decodes to the same entries.
		again, err := DecodeIndex(EncodeIndex(entries))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(again) != len(entries) || (len(entries) > 0 && !reflect.DeepEqual(again, entries)) {
			t.Fatalf("got %v after re-encoding, want %v", again, entries)
		}
	})
}
