package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"shoal/chunkstore"
	"shoal/wire"
)

// applyJSON applies req to f as a Raft log entry would.
func applyJSON(t *testing.T, f *fsm, req *MetaRequest) *MetaResponse {
	t.Helper()
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&raft.Log{Type: raft.LogCommand, Data: data}).(*MetaResponse)
}

func TestNodeRecordsSurviveSnapshots(t *testing.T) {
	f := newFSM(StateConfig{}, chunkstore.NewMemory(), slog.Default())
	applyJSON(t, f, &MetaRequest{Op: wire.OpJoin, Node: &NodeInfo{ID: "b", Addr: "127.0.0.1:2", RaftAddr: "127.0.0.1:3"}, Now: 7})
	applyJSON(t, f, &MetaRequest{Op: wire.OpJoin, Node: &NodeInfo{ID: "a", Addr: "127.0.0.1:4", RaftAddr: "127.0.0.1:5"}, Now: 8})
	applyJSON(t, f, &MetaRequest{Op: wire.OpJoin, Node: &NodeInfo{ID: "c", Addr: "127.0.0.1:6", RaftAddr: "127.0.0.1:7"}, Now: 9})
	applyJSON(t, f, &MetaRequest{Op: wire.OpLeave, Name: "c", Now: 10})
	if resp := applyJSON(t, f, &MetaRequest{Op: wire.OpJoin, Node: &NodeInfo{ID: "d"}}); resp.Errno == 0 {
		t.Errorf("join without addresses: got success, want EINVAL")
	}
	want := []NodeInfo{{ID: "a", Addr: "127.0.0.1:4", RaftAddr: "127.0.0.1:5", Added: 8}, {ID: "b", Addr: "127.0.0.1:2", RaftAddr: "127.0.0.1:3", Added: 7}}
	if got := f.nodes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("records: got %+v, want %+v", got, want)
	}
	var buf bytes.Buffer
	if err := saveMembers(&buf, f.members); err != nil {
		t.Fatal(err)
	}
	if err := f.state.Save(&buf); err != nil {
		t.Fatal(err)
	}
	g := newFSM(StateConfig{}, chunkstore.NewMemory(), slog.Default())
	if err := g.Restore(nopCloser{bytes.NewReader(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if got := g.nodes(); !reflect.DeepEqual(got, want) {
		t.Errorf("records after restore: got %+v, want %+v", got, want)
	}
	// A snapshot from before node records (the bare State) still loads.
	var old bytes.Buffer
	if err := NewState(StateConfig{}).Save(&old); err != nil {
		t.Fatal(err)
	}
	if err := g.Restore(nopCloser{bytes.NewReader(old.Bytes())}); err != nil {
		t.Fatalf("restore an old snapshot: %v", err)
	}
	if got := g.nodes(); len(got) != 0 {
		t.Errorf("records after restoring an old snapshot: got %v, want none", got)
	}
	// Damaged node records are refused.
	bad := append([]byte{}, buf.Bytes()...)
	bad[len(membersMagic)] = 9 // version
	if err := g.Restore(nopCloser{bytes.NewReader(bad)}); !errors.Is(err, ErrStateFormat) {
		t.Errorf("restore with a bad records version: got %v, want ErrStateFormat", err)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
