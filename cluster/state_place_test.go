package cluster

import (
	"bytes"
	"slices"
	"syscall"
	"testing"

	"shoal/chunkstore"
	"shoal/wire"
)

func TestStatePlacements(t *testing.T) {
	h := newStH(t)
	h.s.requirePlaced = true
	f := h.create(1, "f")
	// A commit naming a chunk that is not placed (nor inline) must wait.
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Blocks: []Block{{ID: stID(1), Len: 10}}}, syscall.EAGAIN)
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 3, Blocks: []Block{{ID: sumOf("abc"), Len: 3, Data: []byte("abc")}}})

	p := Placement{ID: stID(1), Size: 10, Data: 2, Parity: 1, Nodes: []string{"a", "b", ""}}
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{p}, Now: 5})
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Blocks: []Block{{ID: stID(1), Len: 10}}})
	got, ok := h.s.Placed(stID(1))
	if !ok || !slices.Equal(got.Nodes, []string{"a", "b", ""}) {
		t.Fatalf("placed: %+v %v", got, ok)
	}
	// Repair fills a slot; a node taking a slot leaves its old one.
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(1), Size: 10, Data: 2, Parity: 1, Nodes: []string{"", "", "c"}}}})
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(1), Size: 10, Data: 2, Parity: 1, Nodes: []string{"c", "", ""}}}})
	if got, _ := h.s.Placed(stID(1)); !slices.Equal(got.Nodes, []string{"c", "b", ""}) {
		t.Fatalf("after moves: %v, want [c b \"\"]", got.Nodes)
	}
	// Displace clears only a slot the named node still holds.
	h.ok(MetaRequest{Op: wire.OpDisplace, Places: []Placement{{ID: stID(1), Size: 10, Data: 2, Parity: 1, Nodes: []string{"a", "b", ""}}}})
	if got, _ := h.s.Placed(stID(1)); !slices.Equal(got.Nodes, []string{"c", "", ""}) {
		t.Fatalf("after displace: %v, want [c \"\" \"\"]", got.Nodes)
	}
	// Another scheme does not replace a readable placement... but does
	// replace one too short of holders to be read.
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(1), Size: 10, Data: 1, Parity: 1, Nodes: []string{"x", "y"}}}})
	if got, _ := h.s.Placed(stID(1)); got.Data != 1 || !slices.Equal(got.Nodes, []string{"x", "y"}) {
		t.Fatalf("unreadable placement not replaced: %+v", got)
	}
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(1), Size: 10, Data: 2, Parity: 1, Nodes: []string{"a", "b", "c"}}}})
	if got, _ := h.s.Placed(stID(1)); got.Data != 1 {
		t.Fatalf("readable placement replaced: %+v", got)
	}
	// Malformed placements change nothing.
	for _, bad := range []Placement{
		{ID: stID(2), Data: 0, Parity: 1, Nodes: []string{"a"}},
		{ID: stID(2), Data: 2, Parity: 1, Nodes: []string{"a", "b"}},
		{ID: stID(2), Data: 2, Parity: 1, Nodes: []string{"a", "b", "a"}},
		{ID: stID(2), Data: 200, Parity: 100, Nodes: make([]string, 300)},
	} {
		h.fails(MetaRequest{Op: wire.OpPlace, Places: []Placement{p, bad}}, syscall.EINVAL)
	}
	if _, ok := h.s.Placed(stID(2)); ok {
		t.Fatal("a failed OpPlace placed a chunk")
	}
	// Locate answers for placed chunks only.
	r := h.ok(MetaRequest{Op: wire.OpLocate, Chunks: [][32]byte{stID(1), stID(2)}})
	if len(r.Places) != 1 || r.Places[0].ID != stID(1) {
		t.Fatalf("locate: %+v", r.Places)
	}

	// Pushed but never committed: garbage only once older than the grace.
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(3), Size: 10, Data: 1, Parity: 0, Nodes: []string{"a"}}}, Now: 100})
	if g := h.s.Garbage(100); slices.Contains(g, stID(3)) {
		t.Fatal("a chunk placed at the cutoff is garbage")
	}
	if g := h.s.Garbage(101); !slices.Contains(g, stID(3)) || slices.Contains(g, stID(1)) {
		t.Fatalf("garbage(101): %d chunks, want chunk 3 and not the referenced chunk 1", len(g))
	}
	// Collected: doomed (placing it again must wait), then forgotten.
	r = h.ok(MetaRequest{Op: wire.OpGCMark, Chunks: [][32]byte{stID(3), stID(1)}, Now: 200})
	if len(r.Chunks) != 1 || len(r.Places) != 1 || r.Places[0].ID != stID(3) {
		t.Fatalf("gc mark: chunks %d places %+v, want chunk 3 with its placement", len(r.Chunks), r.Places)
	}
	h.fails(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(3), Size: 10, Data: 1, Parity: 0, Nodes: []string{"a"}}}}, syscall.EAGAIN)
	if _, ok := h.s.Placed(stID(3)); ok {
		t.Fatal("a doomed chunk is reported placed")
	}
	h.ok(MetaRequest{Op: wire.OpGCDone, Chunks: [][32]byte{stID(3)}})
	if _, ok := h.s.placed[stID(3)]; ok {
		t.Fatal("a collected chunk is still placed")
	}
	h.fails(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Blocks: []Block{{ID: stID(3), Len: 10}}}, syscall.EAGAIN)
}

// TestStateLoadVersion1 loads a snapshot of the format before placements.
func TestStateLoadVersion1(t *testing.T) {
	h := newStH(t)
	f := h.create(1, "f")
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Blocks: []Block{{ID: stID(1), Len: 10}}})
	img := stSave(t, h.s)
	// Version 2 with no placements and no remembered answers is version 1
	// with two zero counts before the end marker.
	v1 := append([]byte{}, img[:len(img)-len(stEnd)-2]...)
	v1 = append(v1, stEnd...)
	v1[len(stMagic)] = 1
	s, err := LoadState(bytes.NewReader(v1))
	if err != nil {
		t.Fatalf("load version 1: %v", err)
	}
	if got := stSave(t, s); !bytes.Equal(got, img) {
		t.Fatal("version 1 loaded and saved differs from the state")
	}
}

func sumOf(s string) [32]byte { return chunkstore.Sum([]byte(s)) }

func TestStateSchemeXattr(t *testing.T) {
	h := newStH(t)
	h.s.requirePlaced = true
	d := h.mkdir(1, "d")
	sub := h.mkdir(d, "sub")
	f := h.create(sub, "f")
	set := func(ino uint64, v string) *MetaRequest {
		return &MetaRequest{Op: wire.OpSetXattr, Ino: ino, Name: SchemeXattr, Value: []byte(v)}
	}
	h.fails(*set(f, "2+1"), syscall.EINVAL)
	for _, bad := range []string{"", "x", "0+1", "2", "2+1 ", "200+100"} {
		h.fails(*set(d, bad), syscall.EINVAL)
	}
	if _, ok := h.s.SchemeOf(sub); ok {
		t.Fatal("scheme with no xattr set")
	}
	h.ok(*set(d, "4+2"))
	if sc, ok := h.s.SchemeOf(sub); !ok || sc.Data != 4 || sc.Parity != 2 {
		t.Fatalf("inherited scheme: %v %v, want 4+2", sc, ok)
	}
	h.ok(*set(1, "1+2"))
	if sc, _ := h.s.SchemeOf(1); sc.Data != 1 || sc.Parity != 2 {
		t.Fatalf("root scheme: %v", sc)
	}
	// A commit records what its directory wants on the chunks it names.
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(1), Size: 1 << 20, Data: 2, Parity: 1, Nodes: []string{"a", "b", "c"}}}})
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, NewParent: sub, Size: 10, Blocks: []Block{{ID: stID(1), Len: 10}}})
	if p, _ := h.s.Placed(stID(1)); p.WantData != 4 || p.WantParity != 2 {
		t.Fatalf("wanted scheme after commit in sub: %d+%d, want 4+2", p.WantData, p.WantParity)
	}
	// ...and the chunks it leaves to re-encode: not an unplaced one, not
	// an inline one, each once.
	blocks := []Block{{ID: stID(1), Len: 10}, {Index: 1, ID: stID(1), Len: 10}, {Index: 2, ID: stID(2), Len: 10}, {Index: 3, ID: sumOf("x"), Data: []byte("x"), Len: 1}}
	if got := h.s.Recodable(blocks); len(got) != 1 || got[0] != stID(1) {
		t.Fatalf("recodable after commit in sub: %x, want only the 2+1 chunk", got)
	}
	h.ok(MetaRequest{Op: wire.OpCommit, Ino: f, Size: 10, Blocks: []Block{{ID: stID(1), Len: 10}}})
	if p, _ := h.s.Placed(stID(1)); p.WantData != 0 {
		t.Fatalf("a commit naming no directory keeps %d+%d", p.WantData, p.WantParity)
	}
	if got := h.s.Recodable(blocks); len(got) != 0 {
		t.Fatalf("recodable with no directory scheme: %x, want none (repair sees to the cluster's)", got)
	}
	// Re-encoding replaces the placement only when asked to.
	h.ok(MetaRequest{Op: wire.OpPlace, Places: []Placement{{ID: stID(1), Size: 1 << 20, Data: 4, Parity: 2, Nodes: []string{"a", "b", "c", "d", "e", "f"}}}})
	if p, _ := h.s.Placed(stID(1)); p.Data != 2 {
		t.Fatal("a readable placement was replaced without PlaceReplace")
	}
	h.ok(MetaRequest{Op: wire.OpPlace, Flags: wire.PlaceReplace, Places: []Placement{{ID: stID(1), Size: 1 << 20, Data: 4, Parity: 2, Nodes: []string{"a", "b", "c", "d", "e", "f"}}}})
	if p, _ := h.s.Placed(stID(1)); p.Data != 4 || holders(p.Nodes) != 6 {
		t.Fatalf("after PlaceReplace: %+v", p)
	}
	img := stSave(t, h.s)
	s, err := LoadState(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stSave(t, s), img) {
		t.Fatal("placements do not survive a snapshot")
	}
}

// TestStateAppliesOnce replays requests that name their client and
// sequence number: the first answer comes back and nothing changes again;
// answers are forgotten after wire.ReplyMemory and survive snapshots.
func TestStateAppliesOnce(t *testing.T) {
	h := newStH(t)
	mk := MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "d", Mode: 0o755, Client: "c1", Seq: 1, Now: 10}
	first := h.ok(mk)
	again := h.apply(mk)
	if again.Errno != 0 || again.Attr != first.Attr {
		t.Fatalf("mkdir retried: errno %d attr %+v, want the first answer %+v", again.Errno, again.Attr, first.Attr)
	}
	// Another sequence number is another request.
	h.fails(MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "d", Mode: 0o755, Client: "c1", Seq: 2, Now: 11}, syscall.EEXIST)
	h.fails(MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "d", Mode: 0o755, Client: "c1", Seq: 2, Now: 12}, syscall.EEXIST)
	un := MetaRequest{Op: wire.OpRmdir, Ino: 1, Name: "d", Client: "c2", Seq: 1, Now: 13}
	h.ok(un)
	if r := h.apply(un); r.Errno != 0 {
		t.Fatalf("rmdir retried: errno %d, want the first answer (success)", r.Errno)
	}
	img := stSave(t, h.s)
	s, err := LoadState(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stSave(t, s), img) {
		t.Fatal("remembered answers do not survive a snapshot")
	}
	if r := s.Apply(&un); r.Errno != 0 {
		t.Fatalf("rmdir retried after a snapshot: errno %d", r.Errno)
	}
	// Long after, the answer is forgotten: the retry is a new request.
	h.ok(MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: "e", Mode: 0o755, Client: "c2", Seq: 2, Now: 14 + wire.ReplyMemory})
	h.fails(un, syscall.ENOENT)
}

// TestStateForgetsAcknowledgedAnswers checks that answers below a
// request's Acked are forgotten (a replay is applied afresh), that those
// at or above it are kept even when they arrived out of order, and that a
// snapshot keeps exactly the remembered ones.
func TestStateForgetsAcknowledgedAnswers(t *testing.T) {
	h := newStH(t)
	mk := func(name string, seq, acked uint64) MetaRequest {
		return MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: Name(name), Mode: 0o755, Client: "c", Seq: seq, Acked: acked, Now: int64(seq)}
	}
	h.ok(mk("a", 1, 1))
	h.ok(mk("c", 3, 1)) // 2 is still in flight
	h.ok(mk("b", 2, 1))
	if got := len(h.s.replies["c"].bySeq); got != 3 {
		t.Fatalf("remembered %d answers, want 3", got)
	}
	// The client now has the answers to 1 and 2.
	h.ok(mk("d", 4, 3))
	if r := h.apply(mk("c", 3, 3)); r.Errno != 0 {
		t.Fatalf("replay of unacknowledged seq 3: errno %d, want its first answer", r.Errno)
	}
	if r := h.apply(mk("a", 1, 3)); r.Errno != uint32(syscall.EEXIST) {
		t.Fatalf("replay of acknowledged seq 1: errno %d, want EEXIST (applied afresh)", r.Errno)
	}
	img := stSave(t, h.s)
	s, err := LoadState(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.replies["c"].seqs[s.replies["c"].head:], []uint64{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("after a snapshot: remembered seqs %v, want %v", got, want)
	}
	if !bytes.Equal(stSave(t, s), img) {
		t.Fatal("remembered answers do not survive a snapshot")
	}
}
