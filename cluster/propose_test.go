package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"shoal/chunkstore"
	"shoal/wire"
)

// appliedFuture is a raft.ApplyFuture already resolved.
type appliedFuture struct {
	resp any
	err  error
}

func (f appliedFuture) Error() error  { return f.err }
func (f appliedFuture) Index() uint64 { return 0 }
func (f appliedFuture) Response() any { return f.resp }

// logRecorder stands in for Raft under a proposer: it applies every entry
// to a real fsm, in order, records the entries, and can hold an entry
// until the test lets it through.
type logRecorder struct {
	fsm *fsm

	mu      sync.Mutex
	entries [][]byte
	hold    chan struct{} // if set, the next entry waits for it to close
	held    chan struct{} // closed once an entry is waiting on hold
	fail    error         // if set, entries fail with it instead
}

func newLogRecorder() *logRecorder {
	return &logRecorder{fsm: newFSM(StateConfig{}, chunkstore.NewMemory(), slog.Default())}
}

func (r *logRecorder) apply(data []byte, _ time.Duration) raft.ApplyFuture {
	r.mu.Lock()
	hold, held, fail := r.hold, r.held, r.fail
	r.hold = nil
	r.entries = append(r.entries, data)
	index := uint64(len(r.entries))
	r.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	}
	if fail != nil {
		return appliedFuture{err: fail}
	}
	return appliedFuture{resp: r.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: index, Data: data})}
}

func (r *logRecorder) proposer() *proposer {
	return newProposer(r.apply, func(f raft.Future) error { return f.Error() })
}

func mkdirJSON(t *testing.T, name string, mode uint32) []byte {
	t.Helper()
	data, err := json.Marshal(&MetaRequest{Op: wire.OpMkdir, Ino: wire.RootIno, Name: Name(name), Mode: mode, Now: 1})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// waitQueued waits until n proposals wait for the next batch of p.
func waitQueued(t *testing.T, p *proposer, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		p.mu.Lock()
		got := len(p.waiting)
		p.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d proposals waiting, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// queueProposals starts n proposers of directories prefix0, prefix1…
// and waits until all of them wait for the next batch of p.
func queueProposals(t *testing.T, p *proposer, wg *sync.WaitGroup, prefix string, n int) {
	t.Helper()
	for i := range n {
		wg.Go(func() {
			if _, err := p.propose(mkdirJSON(t, fmt.Sprintf("%s%d", prefix, i), 0o700), time.Second); err != nil {
				t.Errorf("propose %s%d: %v", prefix, i, err)
			}
		})
	}
	waitQueued(t, p, n)
}

// TestProposerGathersProposersComingBack: a proposer whose batch was
// answered and that proposes again at once goes in the next batch with
// those that waited, instead of waiting for the one after it (every
// commit counts as slow here, and a gather waits as long as it takes).
// It comes back late (50 ms) so that, were there no gathering, the
// others' batch would surely go without it.
func TestProposerGathersProposersComingBack(t *testing.T) {
	r := newLogRecorder()
	p := r.proposer()
	p.slowCommit, p.gatherWait = 0, time.Hour
	r.hold, r.held = make(chan struct{}), make(chan struct{})
	release := r.hold

	var wg sync.WaitGroup
	wg.Go(func() {
		for i, name := range []string{"a0", "a1"} {
			if i > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := p.propose(mkdirJSON(t, name, 0o700), time.Second); err != nil {
				t.Errorf("propose %s: %v", name, err)
			}
		}
	})
	<-r.held
	queueProposals(t, p, &wg, "b", 3)
	close(release)
	wg.Wait()

	r.mu.Lock()
	entries := r.entries
	r.mu.Unlock()
	if len(entries) != 2 {
		t.Fatalf("got %d log entries, want 2: a0 alone, then b0, b1, b2 and a1 together", len(entries))
	}
	reqs, err := decodeBatch(entries[1])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, req := range reqs {
		names = append(names, string(req.Name))
	}
	got := strings.Join(names, " ")
	if len(names) == 4 {
		slices.Sort(names[:3]) // the b's queued in any order
	}
	if strings.Join(names, " ") != "b0 b1 b2 a1" {
		t.Errorf("second entry holds %q, want the three b's, then a1", got)
	}
}

// TestProposerLoneProposerDoesNotGather: one proposer alone, however slow
// the commits, never waits for others: no gather of its runs out of time.
func TestProposerLoneProposerDoesNotGather(t *testing.T) {
	r := newLogRecorder()
	p := r.proposer()
	p.slowCommit, p.gatherWait = 0, 50*time.Millisecond
	for i := range 5 {
		if _, err := p.propose(mkdirJSON(t, fmt.Sprintf("d%d", i), 0o700), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.entries) != 5 || p.backoff != 0 {
		t.Errorf("got %d entries and gathering backed off %d times, want 5 entries and no gather that ran out of time", len(r.entries), p.backoff)
	}
}

// TestProposerGatherRunsOutOfTime: proposers expected back that do not
// come hold the batch of those waiting only until gatherWait, and make
// the next batches skip gathering.
func TestProposerGatherRunsOutOfTime(t *testing.T) {
	r := newLogRecorder()
	p := r.proposer()
	p.slowCommit, p.gatherWait = 0, 20*time.Millisecond
	r.hold, r.held = make(chan struct{}), make(chan struct{})
	release := r.hold
	first := make(chan error, 1)
	go func() {
		_, err := p.propose(mkdirJSON(t, "first", 0o700), time.Second)
		first <- err // and proposes nothing more
	}()
	<-r.held
	var wg sync.WaitGroup
	queueProposals(t, p, &wg, "d", 3)
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	r.mu.Lock()
	entries := len(r.entries)
	r.mu.Unlock()
	p.mu.Lock()
	backoff, skip := p.backoff, p.skip
	p.mu.Unlock()
	if entries != 2 || backoff != 1 || skip != 1 {
		t.Errorf("got %d entries, backoff %d, skip %d; want 2 entries (first, then the three that waited) and the next batch skipping its gather", entries, backoff, skip)
	}
}

// TestProposerBatchesWaitingProposals holds one proposal in "Raft" while
// five more arrive: they must go as one batch entry, and each proposer
// must get the answer to its own request.
func TestProposerBatchesWaitingProposals(t *testing.T) {
	r := newLogRecorder()
	p := r.proposer()
	r.hold, r.held = make(chan struct{}), make(chan struct{})
	release := r.hold

	first := make(chan any, 1)
	go func() {
		resp, err := p.propose(mkdirJSON(t, "first", 0o700), time.Second)
		if err != nil {
			t.Error(err)
		}
		first <- resp
	}()
	<-r.held

	const waiters = 5
	var wg sync.WaitGroup
	answers := make([]*MetaResponse, waiters)
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.propose(mkdirJSON(t, fmt.Sprintf("d%d", i), 0o701+uint32(i)), time.Second)
			if err != nil {
				t.Errorf("proposal %d: %v", i, err)
				return
			}
			answers[i] = resp.(*MetaResponse)
		}()
	}
	waitQueued(t, p, waiters)
	close(release)
	wg.Wait()
	if resp := (<-first).(*MetaResponse); resp.Errno != 0 || resp.Attr.Mode&0o777 != 0o700 {
		t.Errorf("first proposal: got errno %d mode %o, want a directory of mode 700", resp.Errno, resp.Attr.Mode&0o777)
	}

	r.mu.Lock()
	entries := r.entries
	r.mu.Unlock()
	if len(entries) != 2 {
		t.Fatalf("got %d log entries, want 2 (the first proposal, then one batch)", len(entries))
	}
	if isBatch(entries[0]) || !isBatch(entries[1]) {
		t.Errorf("entries: first is a batch %v, second %v; want a plain entry, then a batch", isBatch(entries[0]), isBatch(entries[1]))
	}
	for i, resp := range answers {
		if resp == nil {
			continue
		}
		if want := 0o701 + uint32(i); resp.Errno != 0 || resp.Attr.Mode&0o777 != want {
			t.Errorf("proposal %d: got errno %d mode %o, want mode %o", i, resp.Errno, resp.Attr.Mode&0o777, want)
		}
	}
	// Every directory exists once, with its own mode.
	for i := range waiters {
		resp := r.fsm.state.Read(&MetaRequest{Op: wire.OpLookup, Ino: wire.RootIno, Name: Name(fmt.Sprintf("d%d", i))})
		if want := 0o701 + uint32(i); resp.Errno != 0 || resp.Attr.Mode&0o777 != want {
			t.Errorf("lookup d%d: got errno %d mode %o, want mode %o", i, resp.Errno, resp.Attr.Mode&0o777, want)
		}
	}
}

// TestProposerBatchFailure: a batch that Raft does not commit fails every
// proposal in it, and the proposer goes on with the next.
func TestProposerBatchFailure(t *testing.T) {
	r := newLogRecorder()
	p := r.proposer()
	r.hold, r.held, r.fail = make(chan struct{}), make(chan struct{}), raft.ErrNotLeader
	release := r.hold
	go p.propose(mkdirJSON(t, "first", 0o700), time.Second)
	<-r.held
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := p.propose(mkdirJSON(t, fmt.Sprintf("d%d", i), 0o700), time.Second)
			errs <- err
		}()
	}
	waitQueued(t, p, 3)
	close(release)
	for range 3 {
		if err := <-errs; !errors.Is(err, raft.ErrNotLeader) {
			t.Errorf("proposal in a failed batch: got %v, want %v", err, raft.ErrNotLeader)
		}
	}
	r.mu.Lock()
	r.fail = nil
	r.mu.Unlock()
	resp, err := p.propose(mkdirJSON(t, "after", 0o700), time.Second)
	if err != nil || resp.(*MetaResponse).Errno != 0 {
		t.Fatalf("proposal after a failed batch: %v %+v", err, resp)
	}
}

// TestFSMAppliesBatchInOrder: a batch entry's requests apply one after
// another, each answered as if alone; an entry that does not decode is
// answered EINVAL as a whole and changes nothing.
func TestFSMAppliesBatchInOrder(t *testing.T) {
	f := newFSM(StateConfig{}, chunkstore.NewMemory(), slog.Default())
	entry := encodeBatch([][]byte{mkdirJSON(t, "a", 0o700), mkdirJSON(t, "a", 0o755), mkdirJSON(t, "b", 0o750)})
	got, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 1, Data: entry}).(batchResponse)
	if !ok || len(got) != 3 {
		t.Fatalf("batch of 3: got %#v, want 3 answers", got)
	}
	if got[0].Errno != 0 || got[1].Errno != uint32(syscall.EEXIST) || got[2].Errno != 0 {
		t.Errorf("errnos: got %d %d %d, want 0 %d 0", got[0].Errno, got[1].Errno, got[2].Errno, syscall.EEXIST)
	}
	for _, bad := range []string{"[", "[{}", `[{"op":1},`, "[1]", `[{"op":"x"}]`} {
		resp, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 2, Data: []byte(bad)}).(*MetaResponse)
		if !ok || resp.Errno != uint32(syscall.EINVAL) {
			t.Errorf("entry %q: got %#v, want one EINVAL answer", bad, resp)
		}
	}
	if resp := f.state.Read(&MetaRequest{Op: wire.OpLookup, Ino: wire.RootIno, Name: "b"}); resp.Errno != 0 || resp.Attr.Mode&0o777 != 0o750 {
		t.Errorf("lookup b: got errno %d mode %o, want mode 750", resp.Errno, resp.Attr.Mode&0o777)
	}
}

// TestTakeBatchBounds: a batch stops at maxBatchRequests requests or
// maxBatchBytes, but always takes its first request, however large.
func TestTakeBatchBounds(t *testing.T) {
	mk := func(sizes ...int) []*proposal {
		var q []*proposal
		for _, n := range sizes {
			q = append(q, &proposal{data: make([]byte, n)})
		}
		return q
	}
	many := make([]int, maxBatchRequests+6)
	for i := range many {
		many[i] = 100
	}
	for _, c := range []struct {
		name  string
		sizes []int
		want  []int // batch lengths, in turn
	}{
		{"many small", many, []int{maxBatchRequests, 6}},
		{"one huge first", []int{2 * maxBatchBytes, 10, 10}, []int{1, 2}},
		{"huge later", []int{10, maxBatchBytes, 10}, []int{1, 1, 1}},
	} {
		q := mk(c.sizes...)
		var got []int
		for len(q) > 0 && len(got) < 10 {
			got = append(got, len(takeBatch(&q)))
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: batches of %v, want %v", c.name, got, c.want)
		}
	}
}

// FuzzFSMApply feeds arbitrary log entries, batches included, to the
// FSM: it must answer each without panicking.
func FuzzFSMApply(f *testing.F) {
	f.Add([]byte(`{"op":3,"ino":1,"name":"a","mode":493}`))
	f.Add(encodeBatch([][]byte{[]byte(`{"op":3,"ino":1,"name":"a","mode":493}`), []byte(`{"op":9}`)}))
	f.Add([]byte("[]"))
	inline, err := wire.EncodeMetaRequest(&MetaRequest{Op: wire.OpCommit, Ino: 2, Size: 2, Blocks: []Block{{Len: 2, Data: []byte("hi")}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(inline)
	f.Add(encodeBatch([][]byte{[]byte(`{"op":9}`), inline}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newFSM(StateConfig{}, chunkstore.NewMemory(), slog.New(slog.DiscardHandler))
		switch resp := m.Apply(&raft.Log{Type: raft.LogCommand, Index: 1, Data: data}).(type) {
		case *MetaResponse:
			if resp == nil {
				t.Fatal("nil answer")
			}
		case batchResponse:
			for i, r := range resp {
				if r == nil {
					t.Fatalf("nil answer %d of a batch", i)
				}
			}
		default:
			t.Fatalf("answer of type %T", resp)
		}
	})
}

// TestFSMAppliesEnvelopes: a commit whose inline chunk travels as a meta
// envelope, alone or in a batch envelope beside plain JSON requests, is
// applied like its JSON form (the chunk is stored, the size recorded), in
// order; a damaged batch envelope is answered EINVAL as a whole.
func TestFSMAppliesEnvelopes(t *testing.T) {
	store := chunkstore.NewMemory()
	f := newFSM(StateConfig{}, store, slog.Default())
	created, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 1, Data: []byte(`{"op":4,"ino":1,"name":"f","mode":33188,"now":1}`)}).(*MetaResponse)
	if !ok || created.Errno != 0 {
		t.Fatalf("create: %#v", created)
	}
	commit := func(data string) []byte {
		enc, err := wire.EncodeMetaRequest(&MetaRequest{Op: wire.OpCommit, Ino: created.Attr.Ino, Size: uint64(len(data)), Now: 2,
			Blocks: []Block{{Index: 0, ID: wire.ChunkID(chunkstore.Sum([]byte(data))), Len: uint32(len(data)), Data: []byte(data)}}})
		if err != nil {
			t.Fatal(err)
		}
		if enc[0] == '{' {
			t.Fatal("a commit with inline bytes encoded as plain JSON")
		}
		return enc
	}
	if resp, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 2, Data: commit("hello")}).(*MetaResponse); !ok || resp.Errno != 0 || resp.Attr.Size != 5 {
		t.Fatalf("commit alone: %#v", resp)
	}
	entry := encodeBatch([][]byte{mkdirJSON(t, "a", 0o700), commit("hello, world"), mkdirJSON(t, "a", 0o755)})
	if entry[0] != batchEnvelope {
		t.Fatalf("batch with an envelope starts with %q", entry[0])
	}
	got, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 3, Data: entry}).(batchResponse)
	if !ok || len(got) != 3 {
		t.Fatalf("batch of 3: got %#v", got)
	}
	if got[0].Errno != 0 || got[1].Errno != 0 || got[1].Attr.Size != 12 || got[2].Errno != uint32(syscall.EEXIST) {
		t.Errorf("batch answers: %+v %+v %+v", *got[0], *got[1], *got[2])
	}
	for _, data := range []string{"hello", "hello, world"} {
		if b, err := store.Get(context.Background(), chunkstore.Sum([]byte(data))); err != nil || string(b) != data {
			t.Errorf("inline chunk %q: got %q, %v", data, b, err)
		}
	}
	for name, bad := range map[string][]byte{
		"truncated":     entry[:len(entry)-1],
		"trailing byte": append(bytes.Clone(entry), 0),
		"no count":      {batchEnvelope},
		"count too big": {batchEnvelope, maxBatchRequests + 1},
		"bad request":   {batchEnvelope, 1, 1, '{'},
	} {
		resp, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 4, Data: bad}).(*MetaResponse)
		if !ok || resp.Errno != uint32(syscall.EINVAL) {
			t.Errorf("%s: got %#v, want one EINVAL answer", name, resp)
		}
	}
}
