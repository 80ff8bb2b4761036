package cluster

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"shoal/wire"
)

// stRich builds a state using every kind of record a snapshot holds.
func stRich(t *testing.T) *stH {
	t.Helper()
	h := newStH(t)
	x := newStFixture(h)
	h.ok(MetaRequest{Op: wire.OpCreate, Ino: x.d, Name: "dev", Mode: stIFBLK | 0o600, Rdev: 0x801, Uid: 5, Gid: 6})
	h.ok(MetaRequest{Op: wire.OpSetXattr, Ino: x.f, Name: "user.k", Value: []byte("v")})
	h.ok(MetaRequest{Op: wire.OpSetXattr, Ino: x.d, Name: "user.empty"})
	h.ok(MetaRequest{Op: wire.OpLink, Ino: x.f, NewParent: x.e, NewName: "hard"})
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: x.f, Size: 1000, Mtime: -3, Blocks: []Block{{Index: 0, ID: stID(1), Len: 100}, {Index: 7, ID: stID(2), Len: 99}}})
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: x.f2, Size: 100, Blocks: []Block{{Index: 0, ID: stID(3), Len: 100}}})
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: x.f2, Size: 100, Blocks: []Block{{Index: 0, ID: stID(4), Len: 100}}})
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: x.f2, Size: 100, Blocks: []Block{{Index: 0, ID: stID(5), Len: 100}}})
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(5), Size: 100, Data: 2, Parity: 1, Nodes: []string{"a", "", "c"}}, {ID: stID(7), Size: 9, Data: 1, Parity: 1, Nodes: []string{"b", "a"}}}})
	h.ok(MetaRequest{Op: wire.OpGCMark, Chunks: [][32]byte{stID(3)}}) // 3 doomed, 4 garbage
	orphan := h.create(1, "orphan")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: orphan, Size: 5, Blocks: []Block{{ID: stID(6), Len: 5}}})
	h.ok(MetaRequest{Op: wire.OpUnlink, Ino: 1, Name: "orphan"})
	return h
}

func TestStateSaveLoad(t *testing.T) {
	h := stRich(t)
	img := stSave(t, h.s)
	s, err := LoadState(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if got := stSave(t, s); !bytes.Equal(got, img) {
		t.Fatal("save after load: bytes differ")
	}
	if s.BlockSize() != 100 || s.next != h.s.next {
		t.Fatalf("config: got bs %d next %d, want 100, %d", s.BlockSize(), s.next, h.s.next)
	}
	ai, ab := h.s.Counts()
	bi, bb := s.Counts()
	if ai != bi || ab != bb {
		t.Fatalf("counts: got %d/%d, want %d/%d", bi, bb, ai, ab)
	}
	if g := s.Garbage(0); len(g) != 1 || g[0] != stID(4) {
		t.Fatalf("garbage: got %d chunks, want chunk 4", len(g))
	}
	if _, ok := s.doomed[stID(3)]; !ok || len(s.doomed) != 1 {
		t.Fatalf("doomed: got %d chunks, want chunk 3", len(s.doomed))
	}
	// Every read-only answer is the same for every inode.
	for ino := uint64(0); ino < h.s.next+1; ino++ {
		for _, op := range []MetaOp{wire.OpGetAttr, wire.OpReadDir, wire.OpReadlink, wire.OpListXattr, wire.OpLayout} {
			req := &MetaRequest{Op: op, Ino: ino}
			x, y := h.s.Read(req), s.Read(req)
			if x.Errno != y.Errno || x.Attr != y.Attr || x.Target != y.Target ||
				len(x.Entries) != len(y.Entries) || len(x.Names) != len(y.Names) ||
				x.Layout.Size != y.Layout.Size || !stBlocksEqual(x.Layout.Blocks, y.Layout.Blocks) {
				t.Fatalf("op %d ino %d: got %+v, want %+v", op, ino, y, x)
			}
		}
	}
	// Creating after load continues the inode counter.
	r := s.Apply(&MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "new"})
	if r.Errno != 0 || r.Attr.Ino != h.s.next {
		t.Fatalf("create after load: got ino %d errno %d, want %d", r.Attr.Ino, r.Errno, h.s.next)
	}
	// The doomed chunk still blocks commits after load.
	f, _ := h.lookup(1, "f")
	if r := s.Apply(&MetaRequest{Op: wire.OpCommit, Ino: f, Size: 100, Blocks: []Block{{ID: stID(3), Len: 1}}}); r.Errno != uint32(11) {
		t.Fatalf("commit doomed after load: got errno %d, want EAGAIN", r.Errno)
	}
}

func TestStateLoadRejects(t *testing.T) {
	img := stSave(t, stRich(t).s)
	version := append([]byte{}, img...)
	version[len(stMagic)] = 3
	magic := append([]byte{}, img...)
	magic[0] = 'X'
	tail := append([]byte{}, img[:len(img)-1]...)
	tail = append(tail, 'X')
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"magic only", []byte(stMagic)},
		{"other version", version},
		{"bad magic", magic},
		{"bad end", tail},
		{"truncated", img[:len(img)/2]},
		{"no end", img[:len(img)-3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadState(bytes.NewReader(tt.in))
			if !errors.Is(err, ErrStateFormat) || s != nil {
				t.Fatalf("got %v, %v; want nil and an error wrapping ErrStateFormat", s, err)
			}
		})
	}
}

// TestStateLoadInconsistent flips single bytes of a valid snapshot: every
// result either fails to load or loads into a state that passes check.
func TestStateLoadInconsistent(t *testing.T) {
	img := stSave(t, stRich(t).s)
	rejected := 0
	for i := range img {
		for _, delta := range []byte{1, 0x80} {
			b := append([]byte{}, img...)
			b[i] += delta
			s, err := LoadState(bytes.NewReader(b))
			if err != nil {
				rejected++
				continue
			}
			if err := s.check(); err != nil {
				t.Fatalf("byte %d+%d: loaded a state breaking invariants: %v", i, delta, err)
			}
		}
	}
	// Many flips only change a time or an owner, which is a valid state.
	t.Logf("rejected %d of %d corruptions", rejected, 2*len(img))
	if rejected == 0 {
		t.Fatal("no corruption rejected")
	}
}

type stErrWriter struct{ n int }

func (w *stErrWriter) Write(p []byte) (int, error) { return 0, io.ErrShortWrite }

func TestStateSaveError(t *testing.T) {
	if err := NewState(StateConfig{}).Save(&stErrWriter{}); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("got %v, want an error wrapping io.ErrShortWrite", err)
	}
}

func FuzzLoadState(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte(stMagic + "\x01"))
	f.Add(stSaveF(f, NewState(StateConfig{})))
	h := &stH{t: &testing.T{}, s: NewState(StateConfig{BlockSize: 100})}
	g := &stGen{b: stRandBytes(9, 400)}
	for g.more() {
		r := g.req()
		g.note(h.s.Apply(&r))
	}
	f.Add(stSaveF(f, h.s))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadState(bytes.NewReader(data))
		if err != nil {
			if s != nil {
				t.Fatal("error with a non-nil state")
			}
			return
		}
		if err := s.check(); err != nil {
			t.Fatalf("loaded state breaks invariants: %v", err)
		}
		// A loaded state saves to the canonical form, which loads again.
		img := stSave(t, s)
		back, err := LoadState(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if !bytes.Equal(stSave(t, back), img) {
			t.Fatal("canonical snapshot changed over a reload")
		}
	})
}

func stSaveF(f *testing.F, s *State) []byte {
	var buf bytes.Buffer
	if err := s.Save(&buf); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkStateSave(b *testing.B) {
	s := NewState(StateConfig{})
	const n = 100000
	for i := range n {
		r := s.Apply(&MetaRequest{Op: wire.OpCreate, Ino: 1, Name: stName(i)})
		s.Apply(&MetaRequest{Op: wire.OpCommit, Ino: r.Attr.Ino, Size: 10, Blocks: []Block{{ID: stID(byte(i)), Len: 10}}})
	}
	var buf bytes.Buffer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := s.Save(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/n, "bytes/file")
}

func BenchmarkStateLoad(b *testing.B) {
	s := NewState(StateConfig{})
	const n = 100000
	for i := range n {
		r := s.Apply(&MetaRequest{Op: wire.OpCreate, Ino: 1, Name: stName(i)})
		s.Apply(&MetaRequest{Op: wire.OpCommit, Ino: r.Attr.Ino, Size: 10, Blocks: []Block{{ID: stID(byte(i)), Len: 10}}})
	}
	var buf bytes.Buffer
	if err := s.Save(&buf); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := LoadState(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
