package cluster

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"shoal/wire"
)

// stGen decodes a stream of bytes into metadata requests that mostly hit
// existing names and inodes of a small tree, so random sequences exercise
// the interesting paths.
type stGen struct {
	b    []byte
	now  int64
	inos []uint64 // inode numbers seen in responses
}

// note records the inode a response names, for later requests to use.
func (g *stGen) note(resp *MetaResponse) {
	if resp.Errno == 0 && resp.Attr.Ino != 0 && len(g.inos) < 64 {
		g.inos = append(g.inos, resp.Attr.Ino)
	}
}

func (g *stGen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *stGen) more() bool { return len(g.b) > 0 }

var stGenNames = []Name{"\xff", "a", "b", "c", "d", "a", "b", "c", "d", "e", "f", "", ".", "x/y"}

func (g *stGen) name() Name { return stGenNames[int(g.byte())%len(stGenNames)] }
func (g *stGen) ino() uint64 {
	c := int(g.byte())
	switch {
	case c < 16:
		return uint64(c) // often missing, sometimes 0
	case c < 96 || len(g.inos) == 0:
		return 1
	}
	return g.inos[c%len(g.inos)]
}
func (g *stGen) chunk() [32]byte {
	c := g.byte() % 6
	if c == 0 {
		return [32]byte{}
	}
	return stID(c)
}

// req decodes one request.
func (g *stGen) req() MetaRequest {
	g.now++
	r := MetaRequest{Op: MetaOp(g.byte() % 34), Now: g.now}
	if c := g.byte(); c < 64 {
		// Named requests, often replayed: applied once.
		r.Client, r.Seq = string(rune('a'+c%3)), uint64(c/3%8)
	}
	switch r.Op {
	case wire.OpLookup, wire.OpUnlink, wire.OpRmdir, wire.OpGetXattr, wire.OpRemoveXattr:
		r.Ino, r.Name = g.ino(), g.name()
	case wire.OpCreate, wire.OpMkdir:
		r.Ino, r.Name = g.ino(), g.name()
		modes := []uint32{0o644, 0o755, stIFREG | 0o600, 0o600, stIFIFO | 0o600, stIFCHR | 0o600, stIFDIR | 0o755, stIFLNK}
		r.Mode = modes[int(g.byte())%len(modes)]
		r.Flags = uint32(g.byte() % 2)
	case wire.OpSymlink:
		r.Ino, r.Name, r.Target = g.ino(), g.name(), g.name()
	case wire.OpLink:
		r.Ino, r.NewParent, r.NewName = g.ino(), g.ino(), g.name()
	case wire.OpRename:
		r.Ino, r.Name, r.NewParent, r.NewName = g.ino(), g.name(), g.ino(), g.name()
		r.Flags = uint32(g.byte() % 4)
	case wire.OpSetAttr:
		r.Ino, r.Valid = g.ino(), uint32(g.byte())
		r.Mode, r.Uid, r.Size = uint32(g.byte())<<8, uint32(g.byte()), uint64(g.byte())*7
		r.Atime, r.Mtime = int64(g.byte()), int64(g.byte())
	case wire.OpSetXattr:
		r.Ino, r.Name, r.Flags = g.ino(), g.name(), uint32(g.byte()%4)
		r.Value = bytes.Repeat([]byte{g.byte()}, int(g.byte()%4))
	case wire.OpCommit:
		r.Ino, r.Size, r.Mtime = g.ino(), uint64(g.byte())*4, int64(g.byte()%2)*55
		for range g.byte() % 4 {
			r.Blocks = append(r.Blocks, Block{Index: uint64(g.byte() % 5), ID: g.chunk(), Len: uint32(g.byte() % 104)})
		}
	case wire.OpGCMark, wire.OpGCDone, wire.OpLocate:
		for range g.byte() % 4 {
			r.Chunks = append(r.Chunks, g.chunk())
		}
	case wire.OpPlace, wire.OpDisplace:
		nodes := []string{"", "a", "b", "c"}
		for range g.byte() % 3 {
			p := Placement{ID: g.chunk(), Size: uint32(g.byte()) * 1000, Data: 1 + g.byte()%3, Parity: g.byte() % 3}
			for range int(p.Data + p.Parity) {
				p.Nodes = append(p.Nodes, nodes[int(g.byte())%len(nodes)])
			}
			r.Places = append(r.Places, p)
		}
	default:
		r.Ino = g.ino()
	}
	return r
}

// stRun applies the requests decoded from data to a new state, checking
// the invariants after each, and returns the state.
func stRun(t *testing.T, data []byte) *State {
	t.Helper()
	s := NewState(StateConfig{BlockSize: 100})
	g := &stGen{b: data}
	for g.more() {
		req := g.req()
		resp := s.Apply(&req)
		if resp == nil {
			t.Fatalf("op %+v: nil response", req)
		}
		g.note(resp)
		if err := s.check(); err != nil {
			t.Fatalf("after %+v (errno %d): %v", req, resp.Errno, err)
		}
	}
	return s
}

func stSave(t *testing.T, s *State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Save(&buf); err != nil {
		t.Fatalf("save: %v", err)
	}
	return buf.Bytes()
}

func FuzzStateApply(f *testing.F) {
	f.Add([]byte{4, 1, 0, 0, 0, 5, 1, 1, 0, 0, 19, 2, 100, 1, 0, 1, 100, 8, 1, 0})
	f.Add(stRandBytes(1, 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := stRun(t, data)
		img := stSave(t, s)
		back, err := LoadState(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("load own snapshot: %v", err)
		}
		if !bytes.Equal(stSave(t, back), img) {
			t.Fatal("snapshot changed over save and load")
		}
	})
}

func stRandBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestStateDeterminism(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		data := stRandBytes(seed, 10000)
		a, b := stRun(t, data), stRun(t, data)
		ia, ib := stSave(t, a), stSave(t, b)
		if !bytes.Equal(ia, ib) {
			t.Fatalf("seed %d: two states given the same ops save differently", seed)
		}
		back, err := LoadState(bytes.NewReader(ia))
		if err != nil {
			t.Fatalf("seed %d: load: %v", seed, err)
		}
		if !bytes.Equal(stSave(t, back), ia) {
			t.Fatalf("seed %d: save after load differs", seed)
		}
		// The loaded state keeps behaving like the original.
		more := stRandBytes(seed+1000, 5000)
		g1, g2 := &stGen{b: more, now: 1 << 40}, &stGen{b: more, now: 1 << 40}
		for g1.more() {
			r1, r2 := g1.req(), g2.req()
			x, y := a.Apply(&r1), back.Apply(&r2)
			g1.note(x)
			g2.note(y)
			if x.Errno != y.Errno || x.Attr != y.Attr || x.Removed != y.Removed {
				t.Fatalf("seed %d: original and loaded answer %+v differently: %+v vs %+v", seed, r1, x, y)
			}
		}
		if !bytes.Equal(stSave(t, a), stSave(t, back)) {
			t.Fatalf("seed %d: original and loaded states diverged", seed)
		}
	}
}
