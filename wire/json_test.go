package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestJSONRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		out  any // pointer to a zero value of in's type
	}{
		{"request", &MetaRequest{Op: OpCreate, Ino: RootIno, Name: "a\x00b ü", Mode: 0o100644, Flags: CreateExcl, Value: []byte{0, 1, 2}, Chunks: [][32]byte{id(1)}}, &MetaRequest{}},
		{"request blocks", &MetaRequest{Op: OpCommit, Ino: 7, Blocks: []Block{{Index: 3, ID: id(2), Len: 4096}}, Now: -1}, &MetaRequest{}},
		{"response", &MetaResponse{Errno: 2, Reason: "no such file"}, &MetaResponse{}},
		{"response attr", &MetaResponse{Attr: Attr{Ino: 9, Mode: 0o40755, Nlink: 2, Size: 1 << 40, Mtime: 1234567890123456789}, Entries: []DirEntry{{Name: "x", Ino: 3, Mode: 0o100600}}}, &MetaResponse{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteJSON(&buf, tc.in); err != nil {
				t.Fatalf("WriteJSON: %v", err)
			}
			if n := binary.LittleEndian.Uint32(buf.Bytes()); int(n) != buf.Len()-4 {
				t.Fatalf("length prefix %d, want %d", n, buf.Len()-4)
			}
			if err := ReadJSON(&buf, tc.out); err != nil {
				t.Fatalf("ReadJSON: %v", err)
			}
			if !reflect.DeepEqual(tc.out, tc.in) {
				t.Errorf("got %+v, want %+v", tc.out, tc.in)
			}
			if err := ReadJSON(&buf, tc.out); err != io.EOF {
				t.Errorf("ReadJSON at end: got %v, want io.EOF", err)
			}
		})
	}
}

func TestReadJSONRejects(t *testing.T) {
	msg := func(n uint32, body string) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, n), body...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"zero length", msg(0, ""), ErrJSON},
		{"oversize", msg(MaxJSON+1, "{}"), ErrJSON},
		{"malformed", msg(3, "{x}"), ErrJSON},
		{"wrong type", msg(10, `{"op":"x"}`), ErrJSON},
		{"trailing data", msg(4, "{}{}"), ErrJSON},
		{"short length", []byte{1, 0}, io.ErrUnexpectedEOF},
		{"short body", msg(10, "{}"), io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req MetaRequest
			if err := ReadJSON(bytes.NewReader(tc.in), &req); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWriteJSONRejects(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, make(chan int)); !errors.Is(err, ErrJSON) {
		t.Errorf("unmarshalable value: got %v, want ErrJSON", err)
	}
	old := maxJSON
	maxJSON = 10
	t.Cleanup(func() { maxJSON = old })
	if err := WriteJSON(&buf, "0123456789"); !errors.Is(err, ErrJSON) { // 12 bytes of JSON
		t.Errorf("oversize value: got %v, want ErrJSON", err)
	}
	if err := WriteJSON(io.Discard, "01234567"); err != nil { // exactly 10
		t.Errorf("value at the limit: got %v, want nil", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes, want 0", buf.Len())
	}
}

func FuzzReadJSON(f *testing.F) {
	var buf bytes.Buffer
	WriteJSON(&buf, &MetaRequest{Op: OpLookup, Ino: 1, Name: "x"})
	f.Add(buf.Bytes())
	buf.Reset()
	WriteJSON(&buf, &MetaRequest{Op: OpCommit, Ino: 9, Blocks: []Block{{Index: 1, ID: ChunkID(id(3)), Len: 2, Data: []byte("hi")}}})
	f.Add(buf.Bytes())
	old := `{"op":19,"ino":9,"blocks":[{"i":0,"id":[` + strings.Repeat("1,", 31) + `1],"len":5}]}`
	f.Add(append(binary.LittleEndian.AppendUint32(nil, uint32(len(old))), old...))
	f.Add([]byte{2, 0, 0, 0, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		var req MetaRequest
		if err := ReadJSON(bytes.NewReader(in), &req); err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same request.
		var out bytes.Buffer
		if err := WriteJSON(&out, &req); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again MetaRequest
		if err := ReadJSON(&out, &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("got %+v, want %+v", again, req)
		}
	})
}

// TestMetaOpValues pins the MetaOp numbers PROTOCOL.md lists: they cross
// versions and may only be appended to.
func TestMetaOpValues(t *testing.T) {
	for op := OpInvalid; op <= OpRepair; op++ {
		if name := op.String(); name == "" || name == fmt.Sprintf("op %d", op) {
			t.Errorf("op %d has no name", uint8(op))
		}
	}
	if got := (OpRepair + 1).String(); got != fmt.Sprintf("op %d", uint8(OpRepair+1)) {
		t.Errorf("unknown op's name = %q", got)
	}
	ops := []MetaOp{OpInvalid, OpLookup, OpGetAttr, OpSetAttr, OpCreate, OpMkdir, OpSymlink, OpLink,
		OpUnlink, OpRmdir, OpRename, OpReadDir, OpReadlink, OpSetXattr, OpGetXattr, OpListXattr,
		OpRemoveXattr, OpStatfs, OpLayout, OpCommit, OpDrop, OpGCMark, OpGCDone}
	for want, op := range ops {
		if int(op) != want {
			t.Errorf("op #%d has value %d, want %d", want, op, want)
		}
	}
}
