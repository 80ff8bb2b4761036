package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestMetaRequestRoundTrip: a request with inline bytes becomes an
// envelope, one without stays plain JSON, and both come back whole through
// the framed stream functions; plain JSON from WriteJSON reads as well.
func TestMetaRequestRoundTrip(t *testing.T) {
	inline := &MetaRequest{Op: OpCommit, Ino: 9, Size: 70000, Blocks: []Block{
		{Index: 0, ID: ChunkID(id(1)), Len: 3, Data: []byte("abc")},
		{Index: 1, ID: ChunkID(id(2)), Len: 4096},
		{Index: 2, ID: ChunkID(id(3)), Len: 5, Data: bytes.Repeat([]byte{0, '"', '\\', 0xff, 'x'}, 1)},
	}}
	plain := &MetaRequest{Op: OpLookup, Ino: 1, Name: "x"}
	for _, req := range []*MetaRequest{inline, plain} {
		enc, err := EncodeMetaRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if envelope := enc[0] == metaEnvelope; envelope != (req == inline) {
			t.Errorf("op %v: envelope %v, want %v", req.Op, envelope, req == inline)
		}
		var buf bytes.Buffer
		if err := WriteMetaRequest(&buf, req); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(&buf, req); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			var got MetaRequest
			if err := ReadMetaRequest(&buf, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, req) {
				t.Errorf("got %+v, want %+v", got, *req)
			}
		}
	}
}

// TestMetaEnvelopeMalformed: every kind of damage to an envelope is an
// ErrJSON, never a panic or a request with bytes in the wrong block.
func TestMetaEnvelopeMalformed(t *testing.T) {
	good, err := EncodeMetaRequest(&MetaRequest{Op: OpCommit, Ino: 9, Blocks: []Block{
		{Index: 0, ID: ChunkID(id(1)), Len: 3, Data: []byte("abc")},
		{Index: 1, ID: ChunkID(id(2)), Len: 2, Data: []byte("de")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	head, n := binary.Uvarint(good[1:])
	trailer := 1 + n + int(head) // offset of the block count
	withTrailer := func(b ...byte) []byte { return append(bytes.Clone(good[:trailer]), b...) }
	dataHeader := `{"op":19,"blocks":[{"i":0,"len":1,"data":"YQ=="}]}`
	// Each case, and what its error must say.
	cases := map[string]struct {
		in   []byte
		want string
	}{
		"truncated":          {good[:len(good)-1], "inline block of 2 bytes (1 left)"},
		"trailing byte":      {append(bytes.Clone(good), 0), "1 bytes after the last block"},
		"header past end":    {append([]byte{metaEnvelope, 0xff, 0x7f}, good[3:]...), "header of 16383 bytes"},
		"no blocks":          {withTrailer(0), "0 inline blocks of 2"},
		"count above blocks": {withTrailer(3, 0, 1, 'a', 1, 1, 'b', 1, 1, 'c'), "3 inline blocks of 2"},
		"position repeated":  {withTrailer(2, 0, 1, 'a', 0, 1, 'b'), "block position 0 out of order"},
		"position too big":   {withTrailer(1, 2, 1, 'a'), "block position 2 out of order or range"},
		"empty data":         {withTrailer(1, 0, 0), "inline block of 0 bytes"},
		"bad varint":         {withTrailer(0xff), "bad block count"},
		"data in header":     {append(append([]byte{metaEnvelope, byte(len(dataHeader))}, dataHeader...), 1, 0, 1, 'a'), "inline bytes in the header"},
		"header not json":    {[]byte{metaEnvelope, 1, '{', 1, 0, 1, 'a'}, "decode meta envelope header"},
	}
	for name, c := range cases {
		var req MetaRequest
		err := DecodeMetaRequest(c.in, &req)
		if !errors.Is(err, ErrJSON) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrJSON saying %q", name, err, c.want)
		}
	}
}

func FuzzDecodeMetaRequest(f *testing.F) {
	for _, req := range []*MetaRequest{
		{Op: OpCommit, Ino: 9, Blocks: []Block{{Index: 1, ID: ChunkID(id(3)), Len: 2, Data: []byte("hi")}, {Index: 2, Len: 1}}},
		{Op: OpLookup, Ino: 1, Name: "x"},
	} {
		enc, err := EncodeMetaRequest(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{metaEnvelope})
	f.Fuzz(func(t *testing.T, in []byte) {
		var req MetaRequest
		if err := DecodeMetaRequest(in, &req); err != nil {
			return
		}
		// What decodes re-encodes, and that decodes to a request that
		// encodes the same (JSON drops the difference between an empty
		// and a nil list).
		enc, err := EncodeMetaRequest(&req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again MetaRequest
		if err := DecodeMetaRequest(enc, &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if enc2, err := EncodeMetaRequest(&again); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("encoded again: %q, %v; want %q", enc2, err, enc)
		}
	})
}
